"""``climate-optics bench [NAME ...]``: run the side-by-side benchmarks in ``benchmarks/``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from climate_optics.errors import UsageInputError


def benchmarks_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "benchmarks"


def available_benchmarks() -> list[str]:
    directory = benchmarks_dir()
    return sorted(p.stem.removeprefix("bench_") for p in directory.glob("bench_*.py"))


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        names: Optional[list[str]] = typer.Argument(None, help="Benchmarks to run (default: all)."),
        quick: bool = typer.Option(False, "--quick", help="Smaller sizes, for a smoke run."),
    ) -> None:
        """Run benchmarks side by side; each writes benchmarks/results/NAME.json."""
        known = available_benchmarks()
        if not known:
            raise UsageInputError(f"no benchmarks found in {benchmarks_dir()} (they ship with a source checkout)")
        chosen = names or known
        unknown = [n for n in chosen if n not in known]
        if unknown:
            raise UsageInputError(f"unknown benchmark {unknown[0]!r}; available: {', '.join(known)}")
        status = 0
        for name in chosen:
            cmd = [sys.executable, str(benchmarks_dir() / f"bench_{name}.py")] + (["--quick"] if quick else [])
            status = max(status, subprocess.call(cmd))
        if status:
            raise typer.Exit(status)
