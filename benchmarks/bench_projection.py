"""Projection throughput side by side: dense vs structured vs the optical simulator, 2^10 .. 2^20.

Rows (batch of 32 vectors, n_in = n_out = n):
- ``structured vs dense``: seconds per call; ratio = dense / structured (target >= 10 at 2^14);
  dense only where its matrix fits the memory budget, otherwise a "cannot allocate" row.
- ``optical simulator``: wall seconds per call on this machine, beside the structured projection.
- ``optical 2^20``: in a fresh subprocess, wall time (target <= 2 s) and peak RSS (<= 2 GB) of a
  2^20 -> 2^20 projection of 32 vectors; ratio = measured / budget (target <= 1).
- ``break-even``: the size from which the simulated OPU's device time beats the measured digital
  projection (``optical_backend.breakeven.optical_breakeven``).
- DFA rows from ``benchmarks/dfa_cases.py`` (``dfa_rows(quick)``) when that file exists.

Usage: ``python benchmarks/bench_projection.py [--quick]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from climate_optics.benchkit import Row, write_results
from optical_backend.breakeven import measure_projection_seconds, optical_breakeven
from optical_backend.opu import OPUConfig

NAME = "projection"
BATCH = 32
DENSE_BUDGET_BYTES = 2**30  # the dense reference's float32 matrix is capped at 1 GiB on shared machines
BIG_OPU = OPUConfig(dmd_shape=(1024, 1024))  # 2^20 inputs: the default 1140x912 DMD holds 1,039,680

_SUBPROCESS = """
import json, sys, time, torch
from climate_optics.benchkit import peak_rss_mib
from optical_backend import make_projector, OPUConfig

n, batch = int(sys.argv[1]), int(sys.argv[2])
proj = make_projector("optical", n, n, seed=0, config=OPUConfig.from_dict(json.loads(sys.argv[3])))
x = torch.randn(batch, n)
times = []
for _ in range(2):
    start = time.perf_counter(); proj(x); times.append(time.perf_counter() - start)
print(json.dumps({"seconds": min(times), "peak_rss_mb": peak_rss_mib()}))
"""


def optical_in_subprocess(n: int, config: OPUConfig) -> dict[str, float]:
    """Wall time (best of 2 calls) and peak RSS of one fresh process projecting ``BATCH`` vectors."""
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-c", _SUBPROCESS, str(n), str(BATCH), json.dumps(config.to_dict())]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def projection_rows(quick: bool) -> list[Row]:
    sizes = [2**k for k in (range(10, 15, 2) if quick else range(10, 21, 2))]
    rows: list[Row] = []
    dense: dict[int, float] = {}
    structured: dict[int, float] = {}
    for n in sizes:
        structured[n] = measure_projection_seconds("structured", n, batch=BATCH)
        label = f"n=2^{n.bit_length() - 1}"
        if n * n * 4 <= DENSE_BUDGET_BYTES:
            dense[n] = measure_projection_seconds("dense", n, batch=BATCH)
            target = "ratio >= 10" if n == 2**14 else None
            rows.append(Row(NAME, f"structured vs dense, {label}, s/call", structured[n], dense[n], "s", dense[n] / structured[n], target))
        else:
            gib = n * n * 4 / 2**30
            rows.append(Row(NAME, f"structured, {label}, dense cannot allocate ({gib:.0f} GiB matrix)", structured[n], None, "s"))
        if n < 2**20:
            config = OPUConfig() if n <= OPUConfig().max_inputs else BIG_OPU
            seconds = measure_projection_seconds("optical", n, batch=BATCH, repeats=1, config=config)
            rows.append(Row(NAME, f"optical simulator vs structured, {label}, s/call", seconds, structured[n], "s", seconds / structured[n]))
    big = 2**16 if quick else 2**20
    measured = optical_in_subprocess(big, BIG_OPU)
    label = f"n=2^{big.bit_length() - 1}"
    time_target = None if quick else "ratio <= 1"
    rows.append(Row(NAME, f"optical {label}, batch {BATCH}: wall s (reference = 2 s budget)", measured["seconds"], 2.0, "s", measured["seconds"] / 2.0, time_target))
    rows.append(Row(NAME, f"optical {label}, batch {BATCH}: peak RSS MB (reference = 2 GB budget)", measured["peak_rss_mb"], 2048.0, "MB", measured["peak_rss_mb"] / 2048.0, time_target))
    device = OPUConfig().device_time_s(BATCH)
    rows.append(Row(NAME, f"simulated OPU device time per call, batch {BATCH} (any n that fits)", device, None, "s"))
    for kind, times in (("dense", dense), ("structured", structured)):
        result = optical_breakeven(times, config=BIG_OPU, batch=BATCH)
        n_star = result["breakeven_n"]
        case = f"OPU break-even n vs {kind} ({result['status']}, measured up to 2^{max(times).bit_length() - 1})"
        rows.append(Row(NAME, case, float("nan") if n_star is None else n_star, None, "n"))
    return rows


def dfa_rows(quick: bool) -> list[Row]:
    path = Path(__file__).resolve().parent / "dfa_cases.py"
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location("dfa_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.dfa_rows(quick))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (smoke run)")
    args = parser.parse_args(argv)
    rows = projection_rows(args.quick) + dfa_rows(args.quick)
    write_results(NAME, rows)


if __name__ == "__main__":
    main()
