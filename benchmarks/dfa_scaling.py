"""How the DFA / back-propagation gap scales with the forecaster's size, and what the OPU would cost.

Each size trains the forecaster with the study's protocol (``dfa_study.py``: all channels of the
365-day synthetic store at 5.625 deg, the 6-hour lead, batch 8, lr 1e-3, 5% warm-up, AdamW, the
same number of steps at every size) by back-propagation and by digital DFA (per-token error), and
scores autoregressive Z500 / T850 / T2m forecasts at 24 h and 72 h against persistence. Rows: the
DFA / back-propagation RMSE ratio per size, the digital wall time per step of each mode, and the
modelled optical device time and energy per step of the feedback projection (``OPUConfig``'s
time/energy model, an upper bound: every pattern counted), also for the ``base`` and ``1b``
presets, which this CPU cannot train (``benchmarks/gpu/run_model_checks.py`` trains ``base``).

    python benchmarks/dfa_scaling.py --store STORE.zarr [--steps 300] [--sizes 0.1M tiny 3M] [--seeds 0]
    python benchmarks/dfa_scaling.py --table     # rows from the stored records only

Records accumulate in ``benchmarks/results/dfa_scaling-records[-PART].json`` (sizes and seeds
may run in separate processes); the rows go to ``benchmarks/results/dfa_scaling.json``.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Row, results_dir, write_results
from dfa_study import _synthetic_store, load_results, study_parser, train_and_score_with
from gpu.run_model_checks import SCALING_SIZES, opu_step_cost

NAME = "dfa_scaling"
MODES = ("backprop", "dfa")
# Sizes: overrides of the ``tiny`` preset (patch 4, history 2), shared with the GPU ladder; parameters
# with the 14 channels and 2 static fields of the synthetic store: 0.10 M, 0.38 M, 3.1 M, 15.5 M.
SIZES: dict[str, dict[str, Any]] = {name: o for name, o in SCALING_SIZES.items() if o is not None}
BATCH = 8
CASE = "Z500 RMSE 24h"


def records_path(part: str = "") -> Path:
    return results_dir() / (f"{NAME}-records-{part}.json" if part else f"{NAME}-records.json")


def load_records() -> list[dict[str, Any]]:
    """This script's records, and the study's back-propagation and DFA rows as the ``tiny`` size (same protocol)."""
    paths = sorted(results_dir().glob(f"{NAME}-records*.json"), key=lambda p: p.stat().st_mtime)
    newest = {(r["size"], r["mode"], r["seed"], r["steps"]): r for path in paths for r in json.loads(path.read_text())}
    records = list(newest.values())  # a size, mode, seed and budget run again counts once: the newest run
    have = set(newest)
    for r in load_results():
        if r["row"] in MODES and ("tiny", r["row"], r["seed"], r["steps"]) not in have:
            tiny = preset_config("tiny")
            records.append(
                {
                    **r,
                    "size": "tiny",
                    "mode": r["row"],
                    "parameters": r.get("parameters", tiny["parameters"]),
                    "model_config": r.get("model_config", tiny),
                }
            )
    return records


def preset_config(name: str, channels: int = 14, statics: int = 2, grid: tuple[int, int] = (32, 64)) -> dict[str, Any]:
    from climate_optics.models.forecaster import ForecasterConfig, count_parameters

    config = ForecasterConfig.from_preset(
        name,
        channels=tuple(f"c{i}" for i in range(channels)),
        static_channels=tuple(f"s{i}" for i in range(statics)),
        grid=grid,
    )
    return {**config.to_dict(), "parameters": count_parameters(config)}


def ratio_trend(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line ``ratio = a + b log10(parameters)`` through (parameters, ratio) points."""
    xs = [math.log10(p) for p, _ in points]
    ys = [r for _, r in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def _seed_mean(runs: dict[str, list[dict[str, Any]]], seeds: list[int]):
    """``mean(mode, f)``: the mean of ``f(record)`` over the mode's records of ``seeds``."""
    return lambda mode, f: statistics.fmean(f(r) for r in runs[mode] if r["seed"] in seeds)


def rows_from(records: list[dict[str, Any]], steps: int) -> list[Row]:
    rows: list[Row] = []
    trend: list[tuple[float, float]] = []
    key, z72 = "geopotential@500 24h", "geopotential@500 72h"
    for size in SIZES:
        runs = {m: [r for r in records if r["size"] == size and r["mode"] == m and r["steps"] == steps] for m in MODES}
        if not all(runs.values()):
            continue
        seeds = sorted({r["seed"] for r in runs["dfa"]} & {r["seed"] for r in runs["backprop"]})
        if not seeds:
            continue
        mean = _seed_mean(runs, seeds)
        params = runs["dfa"][0]["parameters"]
        label = f"{size} ({params / 1e6:.2f} M params, {steps} steps, {len(seeds)} seed{'s' if len(seeds) > 1 else ''})"
        # RMSE / persistence's RMSE (the same initial times in every run, so ratios of these are RMSE ratios)
        dfa_rmse, bp_rmse = mean("dfa", lambda r: r[key]), mean("backprop", lambda r: r[key])
        trend.append((params, dfa_rmse / bp_rmse))
        rows.append(
            Row(
                NAME,
                f"{label}: {CASE}, dfa vs backprop",
                dfa_rmse,
                bp_rmse,
                "x persistence",
                dfa_rmse / bp_rmse,
                "ratio <= 1.15",
            )
        )
        dfa72, bp72 = mean("dfa", lambda r: r[z72]), mean("backprop", lambda r: r[z72])
        rows.append(Row(NAME, f"{label}: Z500 RMSE 72h, dfa vs backprop", dfa72, bp72, "x persistence", dfa72 / bp72))
        dfa_step, bp_step = mean("dfa", lambda r: r["wall_s"] / steps), mean("backprop", lambda r: r["wall_s"] / steps)
        rows.append(
            Row(
                NAME,
                f"{label}: digital wall time per step, dfa vs backprop",
                dfa_step,
                bp_step,
                "s",
                dfa_step / bp_step,
            )
        )
        cost = opu_step_cost(runs["dfa"][0]["model_config"], BATCH)
        rows.append(
            Row(
                NAME,
                f"{label}: modelled OPU device time per step ({cost['vectors']} vectors)",
                cost["device_s"],
                dfa_step,
                "s",
                cost["device_s"] / dfa_step,
            )
        )
        rows.append(Row(NAME, f"{label}: modelled OPU energy per step", cost["energy_j"], None, "J"))
    if len(trend) >= 2:
        a, b = ratio_trend(trend)
        for preset in ("base", "1b"):
            config = preset_config(preset)
            cost = opu_step_cost(config, BATCH)
            tag = f"{preset} preset ({config['parameters'] / 1e6:.0f} M params, batch {BATCH})"
            rows.append(
                Row(
                    NAME,
                    f"{tag}: {CASE} dfa/backprop, extrapolated from {len(trend)} sizes",
                    a + b * math.log10(config["parameters"]),
                    None,
                    "ratio",
                )
            )
            rows.append(
                Row(
                    NAME,
                    f"{tag}: modelled OPU device time per step ({cost['vectors']} vectors)",
                    cost["device_s"],
                    None,
                    "s",
                )
            )
            rows.append(Row(NAME, f"{tag}: modelled OPU energy per step", cost["energy_j"], None, "J"))
        rows.append(Row(NAME, "trend: change of the dfa/backprop ratio per decade of parameters", b, None, "ratio"))
    return rows


def main() -> None:
    parser = study_parser(__doc__, [0], f"{NAME}-records")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    args = parser.parse_args()
    if not args.table:
        import torch

        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as tmp:
            store = args.store or _synthetic_store(Path(tmp))
            for size in args.sizes:
                for seed in args.seeds:
                    for mode in args.modes:
                        start = time.perf_counter()
                        record = train_and_score_with(
                            store, f"{size} {mode}", seed, args.steps, {"mode": mode}, dict(SIZES[size])
                        )
                        record.update(size=size, mode=mode, date=time.strftime("%Y-%m-%d"))
                        path = records_path(args.part)
                        kept = [
                            r
                            for r in (json.loads(path.read_text()) if path.exists() else [])
                            if (r["size"], r["mode"], r["seed"], r["steps"]) != (size, mode, seed, args.steps)
                        ]
                        path.write_text(json.dumps(kept + [record]) + "\n")
                        print(
                            f"{size} {mode} seed {seed}: {time.perf_counter() - start:.0f} s, "
                            f"Z500 24h {record['geopotential@500 24h']:.3f} x persistence",
                            flush=True,
                        )
    write_results(NAME, rows_from(load_records(), args.steps))


if __name__ == "__main__":
    main()
