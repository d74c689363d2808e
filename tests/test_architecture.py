"""The import rules of the layering (docs/architecture.md), checked on the source, plus module size.

optical_backend <- climate_optics -> data_catalog, with flows (and the command line, flows/cli) on top:
nothing below imports what sits above it. (``import climate_optics`` etc. staying free of Prefect
is checked by running the imports: tests/climate_optics/test_cli.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("climate_optics", "data_catalog", "optical_backend", "flows")
MAX_LINES = 500

# package (or module prefix) -> top-level names or module prefixes it must not import
FORBIDDEN = {
    "optical_backend": ("climate_optics", "data_catalog", "flows"),
    "data_catalog": ("torch", "climate_optics", "optical_backend", "flows"),
    "climate_optics": ("flows",),
    "climate_optics.inference": ("climate_optics.training",),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` names, at any depth (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(files: list[Path]) -> list[str]:
    out = []
    for path in files:
        module = module_name(path)
        for scope, banned in FORBIDDEN.items():
            if not matches(module, scope):
                continue
            for name in sorted(imported_modules(path)):
                hit = next((b for b in banned if matches(name, b)), None)
                if hit is not None:
                    out.append(f"{path.relative_to(ROOT)}: {scope} must not import {hit} (imports {name})")
    return out


def test_the_layers_import_only_downwards():
    assert violations(source_files()) == []


def test_no_library_module_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in source_files() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize(
    "where, code, expected",
    [
        (
            "optical_backend/x.py",
            "from data_catalog.schema import LEVEL",
            "optical_backend must not import data_catalog",
        ),
        ("data_catalog/x.py", "def f():\n    import torch\n", "data_catalog must not import torch"),
        ("climate_optics/x.py", "from flows.cli import main", "climate_optics must not import flows"),
        (
            "climate_optics/inference/x.py",
            "from ..training import loop",
            "climate_optics.inference must not import climate_optics.training",
        ),
        (
            "climate_optics/inference/x.py",
            "from climate_optics import training",
            "climate_optics.inference must not import climate_optics.training",
        ),
    ],
)
def test_the_rule_check_finds_a_planted_violation(tmp_path, monkeypatch, where, code, expected):
    path = tmp_path / where
    path.parent.mkdir(parents=True)
    path.write_text(code)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert any(expected in line for line in violations([path]))
    path.write_text("import numpy\n")
    assert violations([path]) == []


def test_docs_architecture_names_only_places_that_exist():
    """docs/architecture.md tells a newcomer which files to touch: every path it names is there."""
    import re

    text = (ROOT / "docs" / "architecture.md").read_text()
    top = "|".join(PACKAGES + ("benchmarks", "tests", "docs"))
    named = set(re.findall(rf"`((?:{top})/(?:[a-z_]+/)*[a-z_]*(?:\.py|\.yaml)?)`", text))
    assert {
        "climate_optics/evaluation/metrics.py",
        "optical_backend/kinds.py",
        "climate_optics/models/architectures.py",
        "data_catalog/readers.py",
    } <= named
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert missing == []
    tables = {
        "METRICS": "climate_optics/evaluation/metrics.py",
        "_BUILTINS": "optical_backend/kinds.py",
        "ARCHITECTURES": "climate_optics/models/architectures.py",
        "DRIVERS": "data_catalog/readers.py",
    }
    for name, path in tables.items():  # the registries the "where to add" section names are where it says
        assert re.search(rf"^{name}\b.*=", (ROOT / path).read_text(), re.M), (name, path)


@pytest.mark.parametrize(
    "modules, why",
    [
        ("flows.cli", "climate-optics --help"),
        (
            "climate_optics.retraining, climate_optics.registry, climate_optics.run_layout, flows.cli.demo",
            "climate-optics serve, before it checks its server",
        ),
    ],
)
def test_light_commands_do_not_import_torch_or_xarray(modules, why):
    """Imports kept inside functions are there for start-up time: these imports must stay light."""
    import subprocess
    import sys

    code = f"import sys, {modules}; print(sorted(m for m in ('torch', 'xarray', 'prefect') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"{why} imports {out.stdout.strip()}"
