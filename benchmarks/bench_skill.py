"""Skill of back-propagation vs DFA vs optical DFA with equal training budgets, side by side.

Forecasting: the tiny ViT forecaster is trained in each mode on the embedded synthetic
reanalysis (5.625 deg) for the same steps and batch size; Z500 RMSE and ACC at 24 h on
held-out times, against persistence and climatology, with wall time and the simulated optical
energy of the feedback projections. An ablation row trains back-propagation without the
history input (``history=1``: the current state only) to show what the last 6-hour change buys. Downscaling rows (CRPS, spread-skill) come from
``benchmarks/downscale_cases.py:downscale_skill_rows(quick)`` when it exists.

    python benchmarks/bench_skill.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

from climate_optics.benchkit import Row, write_results

NAME = "skill"
# As in tests/climate_optics/test_forecast_skill.py: Z500/Z850, trained at the 24-hour lead.
TASK = dict(preset="tiny", variables=["geopotential"], static=False, train_lead_steps=(4,))


def synthetic_store(directory: Path, days: int) -> Path:
    from data_catalog.ingest import ingest

    options = {"days": days, "spinup_days": 30, "seed": 0, "grid": "5.625deg", "cache_dir": str(directory / "cache")}
    return ingest("synthetic-reanalysis", directory / "store.zarr", options=options)


def train_and_score(store: Path, steps: int, mode: str, **overrides) -> tuple[dict[str, float], object]:
    """Train the tiny forecaster in ``mode``; its Z500 skill at 24 h (direct) and the TrainResult."""
    from climate_optics.inference.skill import forecast_skill
    from climate_optics.training.forecast_task import ForecastTask
    from climate_optics.training.loop import train
    from climate_optics.training.task import TrainConfig

    task = ForecastTask(store, seed=0, **{**TASK, **overrides})
    config = TrainConfig(steps=steps, batch_size=8, lr=3e-3, warmup=10, val_every=0, checkpoint_every=steps, mode=mode, device="cpu", progress=False)
    with tempfile.TemporaryDirectory() as out:
        result = train(task, config, out)
    return forecast_skill(task.model, store, start=task.val_start, lead_hours=24, direct=True), result


def forecast_rows(store: Path, steps: int) -> list[Row]:
    rows = []
    runs = [(mode, mode, {}) for mode in ("backprop", "dfa", "optical")] + [("backprop", "backprop history=1 (ablation)", {"history": 1})]
    for mode, label, overrides in runs:
        s, result = train_and_score(store, steps, mode, **overrides)
        tag = f"forecast {label}"
        target = None if overrides else ("ratio <= 0.7" if mode == "backprop" else "ratio < 1")
        rows.append(Row(NAME, f"{tag}: Z500 RMSE 24h vs persistence", s["rmse"], s["persistence_rmse"], "m2 s-2", s["rmse"] / s["persistence_rmse"], target))
        rows.append(Row(NAME, f"{tag}: Z500 ACC 24h vs persistence", s["acc"], s["persistence_acc"], "1", s["acc"] / s["persistence_acc"]))
        rows.append(Row(NAME, f"{tag}: Z500 RMSE 24h vs climatology", s["rmse"], s["climatology_rmse"], "m2 s-2", s["rmse"] / s["climatology_rmse"], "ratio < 1"))
        rows.append(Row(NAME, f"{tag}: training wall time ({steps} steps)", result.wall_time_s, None, "s"))
        if mode != "backprop":
            energy = result.engine_stats.get("projector_energy_j", 0.0)
            rows.append(Row(NAME, f"{tag}: simulated optical energy", float(energy), None, "J"))
    return rows


def downscale_rows(quick: bool) -> list[Row]:
    path = Path(__file__).with_name("downscale_cases.py")
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location("downscale_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.downscale_skill_rows(quick)) if hasattr(module, "downscale_skill_rows") else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # small models: one thread is faster on a shared 2-core machine
    days, steps = (140, 200) if args.quick else (365, 2000)
    with tempfile.TemporaryDirectory() as tmp:
        rows = forecast_rows(synthetic_store(Path(tmp), days), steps)
    rows += downscale_rows(args.quick)
    write_results(NAME, rows)


if __name__ == "__main__":
    main()
