"""Projection side by side: dense vs structured vs the optical simulator, 2^10 .. 2^20; the
simulated medium's statistics, the encoding's bias per error family, and the cost of an optical
DFA step in simulated device time beside digital wall time.

Rows (batch of 32 vectors, n_in = n_out = n unless stated):
- ``structured vs dense``: seconds per call; ratio = dense / structured (target >= 10 at 2^14);
  dense only where its matrix fits the memory budget, otherwise a "cannot allocate" row.
- ``optical simulator``: wall seconds per call on this machine (default OPUConfig), beside the
  structured projection.
- ``optical 2^20``: in a fresh subprocess with the default device (the DMD holds 831,744 data
  mirrors beside the anchor, so 2^20 inputs take two passes), wall time and CPU time per core
  (the 2 s budget of a 2-core machine; the CPU time is what the call costs when no other job
  shares the cores), peak RSS (2 GB budget), frames and simulated device time per call; and one
  single-pass reference (1024 x 1024 DMD, external reference arm, no residual pair: the old
  simulator's work with the new medium).
  With the default device, a floor: the FFTs and sensor draws the simulation cannot avoid
  (their count times one of each, timed here), against the call's CPU time.
- ``break-even``: the size from which the simulated OPU's device time (at most 8 frames per
  vector, default encoding) beats the measured digital projection on this machine's CPU.
- ``MODELLED``: not measured: the OPU's device time per call (frames / frame rate, tiles
  included) for the default ``OPUConfig`` and LightOn's simulated OPU, against an NVIDIA H100's
  roofline time for the structured and dense projections (datasheet bandwidth and FP32 peak, the
  aten ops each projector runs counted on this CPU; ``optical_backend.breakeven``); break-even
  sizes, and the size at which a one-pass OPU would match the GPU. ``benchmarks/gpu/run_gpu_checks.py``
  measures the GPU side on a GPU.
- ``medium``: the statistics of the screen model at 1024 -> 8192 (``optical_backend.diagnostics``).
- ``encoding``: the mean of 4000 default projections of one error vector against its ideal
  projection (gain, 1 = unbiased) per family, and the frames shown per vector: Gaussian,
  Student-t(2), softmax minus one-hot, and the tiny forecaster's own per-sample and per-token
  errors (20 steps on a freshly generated embedded record; 600 draws for the long per-sample one).
- ``DFA step``: a TinyViT (depth 3, width 32, 16 tokens of 8 values, batch 32): back-propagation,
  digital DFA and optical DFA wall seconds per step, and the optical step's simulated device time
  and energy, with the error fed back per sample and per token.
- ``DFA final loss``: optical (default device) vs digital DFA on the TinyViT of
  ``tests/optical_backend/test_dfa_learning.py``, 100 steps, seeds 0-3 (goal: within 3%).
- DFA rows from ``benchmarks/dfa_cases.py`` (``dfa_rows(quick)``) when that file exists.

Usage: ``python benchmarks/bench_projection.py [--quick]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from benchkit import Row, write_results
from torch.nn import functional as F

from optical_backend import DFA
from optical_backend.breakeven import (
    H100_SXM,
    LIGHTON_SIMULATED,
    crossing,
    measure_projection_seconds,
    modelled_gpu_seconds,
    optical_breakeven,
    opu_call_seconds,
)
from optical_backend.diagnostics import encoding_gain, error_families, speckle_statistics
from optical_backend.opu import OPUConfig
from optical_backend.toy_models import TinyViT, ViTBlock, teacher_regression

NAME = "projection"
BATCH = 32
DENSE_BUDGET_BYTES = 2**30  # the dense reference's float32 matrix is capped at 1 GiB on shared machines
SINGLE_PASS = OPUConfig(dmd_shape=(1024, 1024), reference="external-arm", clip_residual=False)

_SUBPROCESS = """
import json, sys, time, torch
from benchkit import peak_rss_mib
from optical_backend import make_projector, OPUConfig

n, batch = int(sys.argv[1]), int(sys.argv[2])
proj = make_projector("optical", n, n, seed=0, config=OPUConfig.from_dict(json.loads(sys.argv[3])))
x = torch.randn(batch, n)
runs = []
for _ in range(2):
    frames, device = proj.stats.frames, proj.stats.device_time_s
    wall, cpu = time.perf_counter(), time.process_time()
    proj(x)
    runs.append(dict(seconds=time.perf_counter() - wall, cpu_per_core=(time.process_time() - cpu) / torch.get_num_threads(),
                     frames=proj.stats.frames - frames, device_s=proj.stats.device_time_s - device))
best = dict(runs[1], seconds=min(r["seconds"] for r in runs), cpu_per_core=min(r["cpu_per_core"] for r in runs))
# frames and device time of the second call: the first one also shows the calibration frames (once per run)
print(json.dumps(dict(best, peak_rss_mb=peak_rss_mib(), passes=len(proj.passes), threads=torch.get_num_threads())))
"""


def optical_in_subprocess(n: int, config: OPUConfig) -> dict[str, float]:
    """Wall and CPU time (best of 2 calls), peak RSS, frames and device time of one fresh process."""
    here = Path(__file__).resolve().parent  # benchkit sits beside this file
    cmd = [sys.executable, "-c", _SUBPROCESS, str(n), str(BATCH), json.dumps(config.to_dict())]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=here, check=True)
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
            rows.append(
                Row(
                    NAME,
                    f"structured vs dense, {label}, s/call",
                    structured[n],
                    dense[n],
                    "s",
                    dense[n] / structured[n],
                    target,
                )
            )
        else:
            gib = n * n * 4 / 2**30
            rows.append(
                Row(
                    NAME, f"structured, {label}, dense cannot allocate ({gib:.0f} GiB matrix)", structured[n], None, "s"
                )
            )
        if n < 2**20:
            seconds = measure_projection_seconds("optical", n, batch=BATCH, repeats=1)
            rows.append(
                Row(
                    NAME,
                    f"optical simulator (default device) vs structured, {label}, s/call",
                    seconds,
                    structured[n],
                    "s",
                    seconds / structured[n],
                )
            )
    big = 2**16 if quick else 2**20
    label = f"n=2^{big.bit_length() - 1}"
    configs = [("default device", OPUConfig())] + (
        [] if quick else [("single pass, 1024x1024 DMD, external arm, no residual", SINGLE_PASS)]
    )
    for name, config in configs:
        m = optical_in_subprocess(big, config)
        case = f"optical {label}, batch {BATCH}, {name} ({m['passes']} pass(es))"
        target = None if quick else "ratio <= 1"
        rows.append(
            Row(NAME, f"{case}: wall s (reference = 2 s budget)", m["seconds"], 2.0, "s", m["seconds"] / 2.0, target)
        )
        rows.append(
            Row(
                NAME,
                f"{case}: CPU s per core, {m['threads']} threads (reference = 2 s budget)",
                m["cpu_per_core"],
                2.0,
                "s",
                m["cpu_per_core"] / 2.0,
                target,
            )
        )
        rows.append(
            Row(
                NAME,
                f"{case}: peak RSS MB (reference = 2 GB budget)",
                m["peak_rss_mb"],
                2048.0,
                "MB",
                m["peak_rss_mb"] / 2048.0,
                target,
            )
        )
        rows.append(
            Row(
                NAME,
                f"{case}: simulated device s per call ({m['frames']} frames)",
                m["device_s"],
                m["seconds"],
                "s",
                m["device_s"] / m["seconds"],
            )
        )
        if name == "default device":
            floor = simulation_floor(big, config, patterns=m["frames"] // 2, threads=m["threads"])
            rows.append(
                Row(
                    NAME,
                    f"{case}: floor CPU s per core, FFTs and sensor draws alone ({floor['what']}) vs CPU s per core",
                    floor["per_core_s"],
                    m["cpu_per_core"],
                    "s",
                    floor["per_core_s"] / m["cpu_per_core"],
                )
            )
    default = OPUConfig()
    for kind, times in (("dense", dense), ("structured", structured)):
        result = optical_breakeven(times, config=default, batch=BATCH)
        n_star = result["breakeven_n"]
        case = f"OPU break-even n vs {kind} on this CPU ({result['status']}, OPU {result['optical_seconds']:.3f} s per call of {BATCH}, measured up to 2^{max(times).bit_length() - 1})"
        rows.append(Row(NAME, case, float("nan") if n_star is None else n_star, None, "n"))
    return rows


def simulation_floor(n: int, config: OPUConfig, *, patterns: int, threads: int) -> dict[str, object]:
    """What the simulator cannot avoid at ``n -> n``, timed here on one thread: per shown pattern
    one N/2-point complex FFT (the real pattern), K N-point FFTs (the medium's M = K N modes, by
    decimation), one N-point FFT (to the camera) and 2 x n_out Gaussian sensor draws (two frames);
    divided over ``threads`` cores."""
    torch.set_num_threads(1)
    try:
        size = 1 << (n - 1).bit_length()  # N (n_out sets it at n -> n)
        k = config.oversampling

        def best(fn, repeats: int = 5) -> float:
            fn()
            times = []
            for _ in range(repeats):
                start = time.process_time()
                fn()
                times.append(time.process_time() - start)
            return min(times)

        half = torch.randn(1, size // 2, dtype=torch.complex64)
        full = torch.randn(k + 1, size, dtype=torch.complex64)
        draws = torch.empty(2 * n)
        fft_s = best(lambda: torch.fft.fft(half)) + best(lambda: torch.fft.fft(full))
        noise_s = best(lambda: draws.normal_())
    finally:
        torch.set_num_threads(threads)
    per_pattern = fft_s + noise_s
    what = (
        f"{patterns} patterns x ({fft_s * 1e3:.1f} ms of FFTs + {noise_s * 1e3:.1f} ms of {2 * n} draws), "
        f"{threads} cores"
    )
    return {"per_core_s": patterns * per_pattern / threads, "what": what}


def modelled_rows() -> list[Row]:
    """MODELLED, not measured: the OPU's device time from its frame rate against a GPU's roofline
    time (datasheet figures, the aten ops each projector runs counted here)."""
    sizes = [2**k for k in range(10, 25, 2)]
    devices = {
        "default OPUConfig (1.5 kHz, 1920x1080 camera)": OPUConfig(),
        "LightOn's simulated OPU (500 us frames, 2040x1088 output)": OPUConfig(**LIGHTON_SIMULATED),
    }
    gpu = {kind: {n: modelled_gpu_seconds(kind, n, BATCH) for n in sizes} for kind in ("structured", "dense")}
    rows: list[Row] = []
    for name, config in devices.items():
        opu = {n: opu_call_seconds(n, BATCH, config) for n in sizes}
        for n in sizes:
            label = f"n=2^{n.bit_length() - 1}"
            rows.append(
                Row(
                    NAME,
                    f"MODELLED {label}, batch {BATCH}: OPU {name} device s/call (8 frames/vector, {config.tiles(n, n)} tiles) "
                    f"vs {H100_SXM.name.split(' (')[0]} structured (roofline)",
                    opu[n],
                    gpu["structured"][n],
                    "s",
                    opu[n] / gpu["structured"][n],
                )
            )
        for kind in ("structured", "dense"):
            n_star = crossing(sizes, gpu[kind], opu)
            verdict = "never up to 2^24" if n_star is None else f"from n ~ {n_star:.3g}"
            note = " (dense: only while the matrix fits the GPU's 80 GB, n <= 2^17)" if kind == "dense" else ""
            rows.append(
                Row(
                    NAME,
                    f"MODELLED break-even, OPU {name} vs {H100_SXM.name} {kind}{note}: {verdict}",
                    float("nan") if n_star is None else n_star,
                    None,
                    "n",
                )
            )
    # a hypothetical OPU holding any n in one pass: extrapolate the GPU's modelled growth past 2^24
    one_pass = opu_call_seconds(sizes[0], BATCH, OPUConfig())
    (n0, t0), (n1, t1) = [(n, gpu["structured"][n]) for n in sizes[-2:]]
    slope = math.log(t1 / t0) / math.log(n1 / n0)
    n_star = n1 * (one_pass / t1) ** (1 / slope)
    rows.append(
        Row(
            NAME,
            f"MODELLED, extrapolated: a one-pass OPU ({one_pass:.3f} s per call of {BATCH}) would match the H100 structured "
            f"projection at n ~ {n_star:.2g} (DMD and camera of that many pixels; GPU time ~ n^{slope:.2f} past 2^22)",
            n_star,
            None,
            "n",
        )
    )
    return rows


def medium_rows() -> list[Row]:
    s = speckle_statistics()
    case = "medium 1024->8192 (screen model, default config)"
    return [
        Row(
            NAME,
            f"{case}: intensity KS p-value vs exponential (reference: 1e-3 floor)",
            s["intensity_ks_pvalue"],
            1e-3,
            "p",
            s["intensity_ks_pvalue"] / 1e-3,
            "ratio >= 1",
        ),
        Row(NAME, f"{case}: |E t^2| / E|t|^2 (circular: 0)", s["circularity"], None, ""),
        Row(
            NAME,
            f"{case}: max intensity correlation of 16 pixel pairs over all shifts (reference: one pair's noise 1/sqrt(n_out))",
            s["max_pair_shift_correlation"],
            s["pair_correlation_noise"],
            "",
            s["max_pair_shift_correlation"] / s["pair_correlation_noise"],
            "ratio <= 6",
        ),
        Row(
            NAME,
            f"{case}: distinct moduli vs i.i.d. Gaussian entries",
            s["distinct_moduli_vs_gaussian"],
            1.0,
            "",
            s["distinct_moduli_vs_gaussian"],
            "ratio >= 0.98",
        ),
        Row(
            NAME,
            f"{case}: max/min singular value of Re(T) vs Marchenko-Pastur",
            s["singular_max_over_min"],
            s["marchenko_pastur_max_over_min"],
            "",
            s["singular_max_over_min"] / s["marchenko_pastur_max_over_min"],
            "ratio >= 0.9",
        ),
        Row(
            NAME,
            f"{case}: spread of |Ax|^2/|x|^2 vs a Gaussian matrix's",
            s["norm_spread"],
            s["gaussian_norm_spread"],
            "",
            s["norm_spread"] / s["gaussian_norm_spread"],
            "ratio >= 0.7",
        ),
    ]


def forecaster_families() -> dict[str, torch.Tensor]:
    """A per-sample and a per-token error of the tiny forecaster after 20 back-propagation steps on
    a freshly generated embedded record (60 days at 5.625 degrees; ``climate_optics.training.dfa_errors``)."""
    from climate_optics.training.dfa_errors import forecaster_errors
    from climate_optics.training.forecast_task import ForecastTask
    from data_catalog.ingest import ingest

    with tempfile.TemporaryDirectory() as tmp:
        options = {"days": 60, "spinup_days": 30, "seed": 0, "grid": "5.625deg", "cache_dir": tmp}
        store = ingest("synthetic-reanalysis", Path(tmp) / "store.zarr", options=options)
        errors = forecaster_errors(ForecastTask(store, preset="tiny"))
    return {f"forecaster per-{k} error": v for k, v in errors.items()}


def encoding_rows(quick: bool) -> list[Row]:
    rows: list[Row] = []
    families = error_families() | forecaster_families()
    for family, x in families.items():
        draws = (
            (1000 if quick else 4000) if x.numel() <= 4096 else (200 if quick else 600)
        )  # long errors: fewer draws suffice
        for name, config in (("default", OPUConfig()), ("no residual pair", OPUConfig(clip_residual=False))):
            m = encoding_gain(x, config, draws=draws)
            target = "ratio >= 0.98" if name == "default" else None
            rows.append(
                Row(
                    NAME,
                    f"encoding {name}, {family} ({x.numel()} entries): mean of {draws} projections, gain vs ideal "
                    f"({m['frames_per_vector']:.2f} frames/vector, error of the mean {m['error_of_mean']:.3f})",
                    m["gain"],
                    1.0,
                    "",
                    m["gain"],
                    target,
                )
            )
    return rows


def _step_seconds(mode: str, error: str, steps: int) -> tuple[float, float, float]:
    """(wall s/step, simulated device s/step, simulated J/step) of one TinyViT training mode."""
    torch.manual_seed(0)
    x, y = teacher_regression(BATCH * steps, kind="image")
    model = TinyViT(depth=3, dim=32, heads=4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dfa = (
        None
        if mode == "backprop"
        else DFA(model, [ViTBlock], mode="optical" if mode == "optical" else "dfa", error=error)
    )

    def step(i: int) -> None:
        rows = slice(i * BATCH, (i + 1) * BATCH)
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x[rows]), y[rows])
        if dfa is None:
            loss.backward()
        else:
            dfa.backward(loss)
        opt.step()

    step(0)  # warm-up; the optical run's calibration frames are counted here, once
    device = dfa.stats.projector.device_time_s if dfa is not None else 0.0
    energy = dfa.stats.projector.energy_j if dfa is not None else 0.0
    start = time.perf_counter()
    for i in range(1, steps):
        step(i)
    wall = (time.perf_counter() - start) / (steps - 1)
    if dfa is None:
        return wall, 0.0, 0.0
    return (
        wall,
        (dfa.stats.projector.device_time_s - device) / (steps - 1),
        (dfa.stats.projector.energy_j - energy) / (steps - 1),
    )


def dfa_step_rows(quick: bool) -> list[Row]:
    steps = 4 if quick else 11
    backprop = min(_step_seconds("backprop", "sample", steps)[0] for _ in range(2))  # the first run pays the warm-up
    rows: list[Row] = []
    for error in ("sample", "token"):
        digital, _, _ = _step_seconds("dfa", error, steps)
        optical, device, energy = _step_seconds("optical", error, steps)
        case = f"DFA step, TinyViT depth 3, batch {BATCH}, error per {error}"
        rows.append(
            Row(NAME, f"{case}: digital DFA wall s/step vs backprop", digital, backprop, "s", digital / backprop)
        )
        rows.append(
            Row(
                NAME,
                f"{case}: optical DFA wall s/step (simulator) vs backprop",
                optical,
                backprop,
                "s",
                optical / backprop,
            )
        )
        rows.append(
            Row(
                NAME,
                f"{case}: optical DFA simulated device s/step ({energy:.1f} J/step) vs backprop wall",
                device,
                backprop,
                "s",
                device / backprop,
            )
        )
    return rows


def _vit_final_loss(mode: str, seed: int, steps: int = 100) -> float:
    """Full-data loss of a TinyViT (depth 3) after ``steps`` DFA steps with per-token errors, the
    set-up of ``tests/optical_backend/test_dfa_learning.py`` (512 samples, batches of 32, AdamW 2e-3)."""
    torch.manual_seed(seed)
    x, y = teacher_regression(512, kind="image")
    model = TinyViT(depth=3, dim=32, heads=4)
    dfa = DFA(model, [ViTBlock], mode=mode, projector="dense", error="token", opu_config=OPUConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    order = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        idx = torch.randint(0, 512, (BATCH,), generator=order)
        opt.zero_grad(set_to_none=True)
        dfa.backward(F.mse_loss(model(x[idx]), y[idx]))
        opt.step()
    with torch.no_grad():
        return float(F.mse_loss(model(x), y))


def dfa_loss_rows(quick: bool) -> list[Row]:
    """Optical (default device) vs digital DFA final loss on the TinyViT, per seed and on average (goal: within 3%)."""
    seeds = range(2) if quick else range(4)
    pairs = [(_vit_final_loss("optical", s), _vit_final_loss("dfa", s)) for s in seeds]
    case = "TinyViT depth 3, 100 DFA steps, per-token error, default OPUConfig"
    rows = [
        Row(NAME, f"{case}, seed {s}: optical vs digital DFA final loss", o, d, "mse", o / d)
        for s, (o, d) in zip(seeds, pairs)
    ]
    optical, digital = (sum(p[i] for p in pairs) / len(pairs) for i in (0, 1))
    rows.append(
        Row(
            NAME,
            f"{case}, mean of seeds {seeds.start}-{seeds.stop - 1}: optical vs digital DFA final loss",
            optical,
            digital,
            "mse",
            optical / digital,
            "ratio <= 1.03",
        )
    )
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
    parser.add_argument("--skip-dfa-cases", action="store_true", help="leave out the rows of benchmarks/dfa_cases.py")
    args = parser.parse_args(argv)
    rows = (
        projection_rows(args.quick)
        + modelled_rows()
        + medium_rows()
        + encoding_rows(args.quick)
        + dfa_step_rows(args.quick)
        + dfa_loss_rows(args.quick)
    )
    if not args.skip_dfa_cases:
        rows += dfa_rows(args.quick)
    write_results(NAME, rows)


if __name__ == "__main__":
    main()
