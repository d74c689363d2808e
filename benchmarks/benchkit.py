"""Shared plumbing for ``benchmarks/``: result rows, a readable table, ``benchmarks/results/NAME.json``.

Each row compares *ours* with a *reference* measured in the same run; ``ratio`` is in the
direction stated by ``target`` (for example ``"ratio >= 10"`` where ratio = reference / ours
for times). Tests never assert wall-clock figures: only benchmarks report them.
"""

from __future__ import annotations

import json
import operator
import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from data_catalog.store import atomic_store

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def machine_summary() -> str:
    """A short description of where the numbers were measured."""
    cores = os.cpu_count() or 0
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{platform.machine()} {cores} cores, {platform.python_implementation()} {platform.python_version()}{gpu}"


def target_met(ratio: float | None, target: str | None) -> bool | None:
    """Evaluate a target such as ``"ratio >= 10"``; None when there is no target or ratio."""
    if target is None or ratio is None:
        return None
    match = re.fullmatch(r"\s*ratio\s*(>=|<=|>|<)\s*([0-9.eE+-]+)\s*", target)
    if match is None:
        raise ValueError(f"target must read like 'ratio >= 10', got {target!r}")
    return bool(_OPS[match.group(1)](ratio, float(match.group(2))))


@dataclass
class Row:
    """One side-by-side measurement."""

    benchmark: str
    case: str
    ours: float
    reference: float | None
    unit: str
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    machine: str = field(default_factory=machine_summary)
    date: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        self.met = target_met(self.ratio, self.target)


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (Linux ``VmHWM``).

    ``ru_maxrss`` is the fallback where /proc is missing; on Linux it can carry the forking
    parent's peak, so measure in a fresh subprocess either way.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def results_dir() -> Path:
    path = Path(os.environ.get("CLIMATE_OPTICS_BENCH_RESULTS", Path(__file__).resolve().parent / "results"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def format_table(rows: list[Row]) -> str:
    """A plain-text table a person can read."""
    header = ("case", "ours", "reference", "unit", "ratio", "target", "met")
    body = []
    for r in rows:
        body.append(
            (
                r.case,
                f"{r.ours:.4g}",
                "-" if r.reference is None else f"{r.reference:.4g}",
                r.unit,
                "-" if r.ratio is None else f"{r.ratio:.3g}",
                r.target or "-",
                {True: "yes", False: "NO", None: "-"}[r.met],
            )
        )
    widths = [max(len(str(c)) for c in col) for col in zip(header, *body)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in (header, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_results(name: str, rows: list[Row]) -> Path:
    """Print the table and write ``benchmarks/results/NAME.json``; returns the path."""
    print(f"\n== {name} ({machine_summary()}) ==")
    print(format_table(rows))
    path = results_dir() / f"{name}.json"
    with atomic_store(path, overwrite=True, kind="file") as tmp:
        tmp.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    print(f"results: {path}")
    return path


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
