"""The documentation stays true to the code: README.md and docs/*.md are checked without running anything.

- README.md is an entry point: at most 300 lines.
- Every relative link (and image) resolves to a file of the repository, and a ``#anchor`` to a
  heading of the page it names (GitHub's heading slugs).
- Every ``climate-optics COMMAND [SUBCOMMAND]`` in inline code or a code block is a command of the
  real command line (asked of its parser, found through the installed entry point, so the test
  follows the command line wherever it lives), and every ``--option`` on such a line is one of
  that command's options (or a root option).
- Every repository path in inline code (``benchmarks/bench_ingest.py``, ``tests/...``, globs
  included) exists, and every dotted public name of the four packages
  (``data_catalog.regrid.conservative_weights``) names a module that exists and a name it defines.
- The manual builds as a static site with ``mkdocs build --strict`` (offline; every page in the nav,
  every link and anchor valid).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = ("data_catalog", "climate_optics", "optical_backend", "flows")
PATH_ROOTS = (*PACKAGES, "benchmarks", "tests", "notebooks", "docs")
README_MAX_LINES = 300

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
# The program at the start of a command (after VAR=value assignments), or run as ``-m flows.cli``.
COMMAND = re.compile(
    r"(?:(?:^|&&|;|\$\()\s*(?:\w+=\S+\s+)*climate-optics|\s-m flows\.cli)((?:[ \t]+[^\s#;&|`][^\s;&`]*)+)"
)
PATH = re.compile(rf"^(?:{'|'.join(PATH_ROOTS)})/[\w./*-]+$")
DOTTED = re.compile(rf"^(?:{'|'.join(PACKAGES)})(?:\.\w+)+")
PLACEHOLDER = re.compile(r"[A-Z]{3,}|<|\.\.\.")  # NAME, <UTC time>, ...: not a literal path


def split_code(text: str) -> tuple[list[str], list[str]]:
    """(prose lines, code-block lines) of a Markdown page."""
    prose, code, in_code = [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        (code if in_code else prose).append(line)
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\*|_(?=\W)|(?<=\W)_", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@functools.cache
def anchors(page: Path) -> frozenset[str]:
    prose, _ = split_code(page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for line in prose:
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def code_spans(text: str) -> list[str]:
    """Inline code of the prose and every line of the code blocks, continuation lines joined."""
    prose, code = split_code(text)
    spans = [m.group(1) for line in prose for m in INLINE_CODE.finditer(line)]
    spans += re.sub(r"\\\n\s*", " ", "\n".join(code)).splitlines()
    return spans


@functools.cache
def cli() -> Any:
    """The real command line's parser (a click group, as typer builds it), found through the entry point."""
    import typer.main

    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="climate-optics")
    module = importlib.import_module(entry.value.split(":")[0])
    return typer.main.get_command(module.app)


def option_names(command: Any) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


def is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def check_command(words: list[str]) -> list[str]:
    """Problems with one ``climate-optics ...`` invocation (its words after the program name)."""
    words = [w for w in (w.strip("[](),") for w in words) if w]
    line = " ".join(words)
    command = cli()
    allowed = option_names(command) | {"--help"}
    rest = words
    while rest and rest[0] in allowed:
        rest = rest[1:]
    # Descend through command groups; a word may list alternatives (``list|show``).
    while is_group(command) and rest and re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", rest[0]):
        chosen = [command.commands.get(name) for name in rest[0].split("|")]
        if None in chosen:
            return [f"'{line}': {rest[0]!r} is not a command (known: {', '.join(sorted(command.commands))})"]
        allowed = allowed.union(*(option_names(c) for c in chosen))
        command, rest = chosen[0], rest[1:]
    if is_group(command) and rest and rest[0] == "...":  # any subcommand: any of their options
        allowed = allowed.union(*(option_names(c) for c in command.commands.values()))
    if is_group(command) and rest and not rest[0].startswith("-") and not PLACEHOLDER.search(rest[0]):
        return [f"'{line}': {rest[0]!r} is not a command (known: {', '.join(sorted(command.commands))})"]
    return [
        f"'{line}': no option {word.split('=', 1)[0]}"
        for word in rest
        if word.startswith("--") and word.split("=", 1)[0] not in allowed
    ]


def module_file(dotted: str) -> Path | None:
    """The source file of a module of this repository, or None."""
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def definition(name: str) -> str:
    """A pattern for a line that defines or imports ``name`` (not one that merely mentions it)."""
    n = re.escape(name)
    return (
        rf"^\s*(?:async\s+)?(?:def|class)\s+{n}\b|^\s*{n}\s*[:=]|^\s*(?:from\s+\S+\s+)?import\b.*\b{n}\b"
        rf"|^\s+{n},?\s*(?:#.*)?$|^\s*[\"']{n}[\"'],?"
    )


def check_dotted(name: str) -> list[str]:
    """A dotted name must be a module, or a module and a name its source mentions."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        source = module_file(".".join(parts[:cut]))
        if source is None:
            continue
        if cut == len(parts) or re.search(definition(parts[cut]), source.read_text(encoding="utf-8"), re.MULTILINE):
            return []
        reexports = "import *" in source.read_text(encoding="utf-8")  # then ask the module itself
        if reexports and hasattr(importlib.import_module(".".join(parts[:cut])), parts[cut]):
            return []
        return [f"{name}: {source.relative_to(ROOT)} does not define {parts[cut]!r}"]
    return [f"{name}: no such module"]


def test_readme_is_an_entry_point():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    assert "## Optical backend" in lines, "README.md needs its 'Optical backend' section"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    prose, _ = split_code(page.read_text(encoding="utf-8"))
    text = "\n".join(re.sub(r"`[^`]*`", "", line) for line in prose)
    problems = []
    for target in (m.group(1) for m in LINK.finditer(text)):
        if re.match(r"^[a-z][a-z+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            problems.append(f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    assert not problems, f"{page.name}: " + "; ".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_commands_and_options_exist(page):
    problems = []
    for span in code_spans(page.read_text(encoding="utf-8")):
        for match in COMMAND.finditer(span.replace("\\|", "|")):
            problems += check_command(match.group(1).split())
    assert not problems, f"{page.name}: " + "; ".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_paths_and_modules_exist(page):
    problems = []
    for span in code_spans(page.read_text(encoding="utf-8")):
        for token in re.findall(r"[\w./*-]+", span):
            token = token.rstrip(".")
            if PATH.match(token) and not PLACEHOLDER.search(token) and not token.startswith("benchmarks/results/"):
                if not list(ROOT.glob(token)):
                    problems.append(f"{token}: no such file")
            elif DOTTED.match(token) and not token.endswith((".py", ".yaml", ".md", ".zarr", ".json")):
                problems += check_dotted(DOTTED.match(token).group(0))
    assert not problems, f"{page.name}: " + "; ".join(problems)


def test_every_command_is_documented():
    """The other direction: every command is in the README's table, every subcommand somewhere in the docs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("\\|", "|")
    named: dict[str, set[str]] = {}  # command -> subcommands named in README or docs
    for page in PAGES:
        for span in code_spans(page.read_text(encoding="utf-8")):
            for match in COMMAND.finditer(span.replace("\\|", "|")):
                words = [w for w in match.group(1).split() if not w.startswith("-")]
                if words:
                    named.setdefault(words[0], set()).update(words[1].split("|") if len(words) > 1 else ())
    problems = []
    for name, command in cli().commands.items():
        if f"climate-optics {name}" not in readme:
            problems.append(f"README.md does not name 'climate-optics {name}'")
        problems += [
            f"no page names 'climate-optics {name} {sub}'"
            for sub in getattr(command, "commands", {})
            if sub not in named.get(name, set())
        ]
    assert not problems, "; ".join(problems)


def test_manual_builds_as_a_site(tmp_path):
    """``mkdocs build --strict`` with the repository's mkdocs.yml: no warning, every docs page in the nav."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pages = sorted(p.stem for p in (ROOT / "docs").glob("*.md") if p.stem != "index")
    missing = [page for page in pages if not (tmp_path / "site" / page / "index.html").is_file()]
    assert not missing, f"pages not built: {missing}"


def test_the_checks_catch_mistakes():
    """The checkers themselves: each accepts a true statement and refuses a false one."""
    assert check_command(["ingest", "SOURCE", "--out", "x.zarr", "--overwrite"]) == []
    assert check_command(["--wait", "models", "list|show", "--registry", "r"]) == []
    assert check_command(["ingest", "--no-such-option"])
    assert check_command(["no-such-command"])
    assert check_command(["models", "list|frobnicate"])
    assert check_command(["train", "...", "--resume"]) == []
    assert COMMAND.search("prefect work-pool create climate-optics --type process") is None
    assert COMMAND.search("OMP_NUM_THREADS=1 climate-optics demo").group(1).split() == ["demo"]
    assert check_dotted("data_catalog.regrid.conservative_weights") == []
    assert check_dotted("data_catalog.regrid.no_such_function")
    assert check_dotted("data_catalog.no_such_module")
    assert check_dotted("optical_backend.DFA") == []  # re-exported by the package
    assert check_dotted("optical_backend.torch_sampler_of_nothing")
    assert slug("The device: `OPUConfig`") == "the-device-opuconfig"
    assert slug("Scheduled retraining and the model registry") == "scheduled-retraining-and-the-model-registry"
