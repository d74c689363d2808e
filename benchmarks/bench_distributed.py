"""Data parallel training throughput: 2 processes under torchrun against 1, same global batch.

The CLI (``climate-optics train forecast --preset tiny``) is launched with ``torchrun
--standalone`` with 2 processes (batch B each, cores split between them) and, as references,
with 1 process (batch 2B) using all cores as intra-op threads and using one thread, in
back-propagation and DFA modes. The rate is the CLI's samples/s over all ranks, from the run's
own summary line (start-up excluded).
On a GPU machine pass ``--device cuda`` (one process per GPU needs as many GPUs).

    python benchmarks/bench_distributed.py [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_training import build_store
from benchkit import Row, write_results

NAME = "distributed"


def cli_rate(store: Path, out: Path, nproc: int, threads: int, batch: int, steps: int, mode: str, device: str) -> float:
    """Samples/s (all ranks) of one ``torchrun`` launch of the training CLI."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        "-m",
        "flows.cli",
        "train",
        "forecast",
        "--data",
        str(store),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--mode",
        mode,
        "--steps",
        str(steps),
        "--batch-size",
        str(batch),
        "--val-every",
        "0",
        "--checkpoint-every",
        str(steps),
        "--device",
        device,
    ]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"torchrun with {nproc} process(es) failed:\n{proc.stderr[-3000:]}")
    summary = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return float(summary[-1]["samples_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    steps, batch, n_time = (10, 4, 160) if args.quick else (40, 8, 480)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp), n_time)
        cores = os.cpu_count() or 1
        for mode in ("backprop", "dfa"):
            two = cli_rate(store, Path(tmp) / f"{mode}-2", 2, max(1, cores // 2), batch, steps, mode, args.device)
            for threads in sorted({cores, 1}, reverse=True):
                one = cli_rate(
                    store, Path(tmp) / f"{mode}-1-{threads}", 1, threads, 2 * batch, steps, mode, args.device
                )
                case = f"tiny {mode}, global batch {2 * batch}: 2 processes vs 1 process with {threads} thread(s) ({cores} cores)"
                rows.append(Row(NAME, case, two, one, "samples/s", two / one))
    write_results(NAME, rows)


if __name__ == "__main__":
    main()
