"""One script for a CUDA machine: projection throughput and DFA vs back-propagation, in < 8 minutes.

Needs only torch, numpy and this repository's ``optical_backend`` (no package index on the
GPU machine): rows are plain dicts in the layout of ``benchmarks/results/*.json``.

    python benchmarks/gpu/run_gpu_checks.py --out gpu_results.json
    python benchmarks/gpu/run_gpu_checks.py --dry-run --out /tmp/dry.json   # tiny sizes, on CPU

Sections (each skipped, with a row saying so, once the time budget is spent):
1. projection: seconds per call of dense / structured / optical (default device, tiled) on a
   batch of 32 vectors, n_in = n_out = 2^10 .. 2^20 (dense while its matrix fits), ratio =
   dense / structured (target >= 10 at 2^14), optical seconds at 2^20; the structured time
   against the H100 roofline model that ``bench_projection.py`` uses without a GPU, and the
   break-even sizes of the OPU's modelled device time (default ``OPUConfig`` and LightOn's
   simulated OPU) against the dense and structured projections measured here;
2. DFA vs back-propagation on the same ViT at depths 4, 12, 24: step time (targets DFA <= 1.05x
   with the structured projector, <= 1.15x with the optical simulator) and peak memory
   (``torch.cuda.max_memory_allocated``; lean DFA <= 0.3x back-propagation at depth 24 and
   below back-propagation with per-block checkpointing);
3. learning curves of back-propagation, standard and lean DFA (in the JSON, key "curves").
"""

from __future__ import annotations

import argparse
import json
import operator
import platform
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent)]  # the repository (optical_backend) and benchmarks/

import dfa_measure as measure  # noqa: E402
import torch  # noqa: E402

from optical_backend import make_projector  # noqa: E402
from optical_backend.breakeven import H100_SXM, LIGHTON_SIMULATED, crossing, modelled_gpu_seconds, opu_call_seconds  # noqa: E402
from optical_backend.opu import OPUConfig  # noqa: E402

BUDGET_S = 7 * 60  # leave a minute of the 8 for start-up and writing
BATCH = 32
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def machine() -> str:
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, torch {torch.__version__}{gpu}"


def row(
    benchmark: str,
    case: str,
    ours: float,
    reference: float | None,
    unit: str,
    ratio: float | None = None,
    target: str | None = None,
) -> dict:
    met = None
    if target is not None and ratio is not None:
        op, value = re.fullmatch(r"ratio\s*(>=|<=|>|<)\s*([0-9.eE+-]+)", target).groups()
        met = bool(_OPS[op](ratio, float(value)))
    return dict(
        benchmark=benchmark,
        case=case,
        ours=ours,
        reference=reference,
        unit=unit,
        ratio=ratio,
        target=target,
        met=met,
        machine=machine(),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _seconds_per_call(proj, x: torch.Tensor, device: str, repeats: int = 3) -> float:
    proj(x)  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        proj(x)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def projection_rows(exponents: list[int], device: str, deadline: float) -> list[dict]:
    rows = []
    measured: dict[str, dict[int, float]] = {"structured": {}, "dense": {}}
    for k in exponents:
        if time.perf_counter() > deadline:
            rows.append(row("projection", f"n=2^{k} and above: skipped (time budget)", float("nan"), None, "s"))
            break
        n = 2**k
        x = torch.randn(BATCH, n, device=device)
        structured = _seconds_per_call(make_projector("structured", n, n, device=device), x, device)
        measured["structured"][n] = structured
        dense = None
        if n * n <= 2**31:
            dense = measured["dense"][n] = _seconds_per_call(make_projector("dense", n, n, device=device), x, device)
            torch.cuda.empty_cache() if device == "cuda" else None
        target = "ratio >= 10" if k == 14 else None
        rows.append(
            row(
                "projection",
                f"structured vs dense, n=2^{k}",
                structured,
                dense,
                "s/call",
                None if dense is None else dense / structured,
                target,
            )
        )
        model = modelled_gpu_seconds("structured", n, BATCH)
        rows.append(
            row(
                "projection",
                f"structured measured vs modelled {H100_SXM.name.split(' (')[0]} roofline, n=2^{k}",
                structured,
                model,
                "s/call",
                structured / model,
            )
        )
        optical = _seconds_per_call(
            make_projector("optical", n, n, device=device), x, device, repeats=1
        )  # default device, tiled
        rows.append(
            row(
                "projection",
                f"optical simulator (default OPUConfig) vs structured, n=2^{k}",
                optical,
                structured,
                "s/call",
                optical / structured,
            )
        )
        if k == 20:
            rows.append(
                row(
                    "projection",
                    "optical simulator 2^20 -> 2^20, batch 32, default device, vs 2 s budget",
                    optical,
                    2.0,
                    "s/call",
                    optical / 2.0,
                    "ratio <= 1",
                )
            )
    return rows + breakeven_rows(measured)


def breakeven_rows(measured: dict[str, dict[int, float]]) -> list[dict]:
    """Break-even of the OPU's modelled device time (frames / frame rate, tiles included, 8 frames
    per vector) against the projections measured on this device."""
    rows = []
    devices = {
        "default OPUConfig (1.5 kHz)": OPUConfig(),
        "LightOn's simulated OPU (500 us frames, 2040x1088)": OPUConfig(**LIGHTON_SIMULATED),
    }
    for name, config in devices.items():
        for kind, times in measured.items():
            sizes = sorted(times)
            if not sizes:
                continue
            opu = {n: opu_call_seconds(n, BATCH, config) for n in sizes}
            n_star = crossing(sizes, times, opu)
            verdict = f"never up to 2^{sizes[-1].bit_length() - 1}" if n_star is None else f"from n ~ {n_star:.3g}"
            rows.append(
                row(
                    "projection",
                    f"break-even: OPU {name} (modelled) vs {kind} measured here: {verdict}",
                    float("nan") if n_star is None else n_star,
                    None,
                    "n",
                )
            )
    return rows


def dfa_rows(depths: list[int], size: str, device: str, deadline: float, rounds: int) -> list[dict]:
    rows = []
    for depth in depths:
        if time.perf_counter() > deadline:
            rows.append(row("dfa", f"depth {depth} and above: skipped (time budget)", float("nan"), None, "s"))
            break
        rows += [row(**r) for r in measure.time_records(depth, size, rounds, device)]
        rows += [row(**r) for r in measure.memory_records(depth, size, device, fresh_process=size != "tiny")]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GPU checks: projection throughput and DFA vs back-propagation")
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU, to check the script itself")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.dry_run:
        device, size, exponents, depths, rounds, steps = "cpu", "tiny", [6], [2], 1, 3
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA device; use --dry-run to check the script on CPU")
        device, size, exponents, depths, rounds, steps = "cuda", "gpu", [10, 12, 14, 16, 18, 20], [4, 12, 24], 5, 200
        torch.backends.cuda.matmul.allow_tf32 = False  # keep float32 projections comparable with the CPU runs
    rows = projection_rows(exponents, device, start + BUDGET_S * 0.35)
    rows += dfa_rows(depths, size, device, start + BUDGET_S * 0.85, rounds)
    curves = measure.learning_curves(measure.vit_sizes(4, size) | {"dim": 32 if size == "tiny" else 128}, steps, device)
    result = {
        "machine": machine(),
        "device": device,
        "dry_run": args.dry_run,
        "seconds": time.perf_counter() - start,
        "rows": rows,
        "curves": curves,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, allow_nan=True) + "\n")
    tmp.replace(args.out)
    for r in rows:
        flag = {True: "yes", False: "NO", None: "-"}[r["met"]]
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3g}"
        print(f"{r['case']:<70} {r['ours']:>10.4g} {r['unit']:<7} ratio {ratio:<7} {r['target'] or '-':<13} {flag}")
    print(f"wrote {args.out} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
