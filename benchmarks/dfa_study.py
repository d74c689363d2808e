"""What closes the gap between DFA and back-propagation on the forecaster: one row per change, 3+ seeds.

Every row trains the tiny forecaster on the same store with the command line's defaults (all
channels, the 6-hour lead, batch 8, lr 1e-3, warm-up 5%, AdamW) except the departure it names,
for the same number of steps, and scores autoregressive forecasts of Z500, T850 and T2m at 24 h
and 72 h from 24 held-out initial times against persistence (RMSE ratio; < 1 beats persistence).
Rows and seeds can be run separately (``--rows``, ``--seeds``); results accumulate in
``benchmarks/results/dfa_study.json`` and the table is printed from all that are there.

    python benchmarks/dfa_study.py --store STORE.zarr [--steps 300] [--seeds 0 1 2] [--rows backprop dfa ...]
    python benchmarks/dfa_study.py --table      # print the table only

Without ``--store`` a 365-day synthetic reanalysis (5.625 deg) is generated into a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from climate_optics.benchkit import results_dir

CHANNELS = ("geopotential@500", "temperature@850", "2m_temperature")
LEADS = (24, 72)
# name -> (TrainConfig overrides, ForecastTask overrides, feedback points: "all" | "but-last")
ROWS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "backprop": ({"mode": "backprop"}, {}, "all"),
    "dfa per-sample error (old default)": ({"mode": "dfa", "error": "sample"}, {}, "all"),
    "dfa": ({"mode": "dfa"}, {}, "all"),
    "optical": ({"mode": "optical"}, {}, "all"),
    "dfa lr 3e-3": ({"mode": "dfa", "lr": 3e-3}, {}, "all"),
    "dfa lr 3e-4": ({"mode": "dfa", "lr": 3e-4}, {}, "all"),
    "dfa split feedback": ({"mode": "dfa", "feedback": "split"}, {}, "all"),
    "dfa hybrid (last block by backprop)": ({"mode": "dfa"}, {}, "but-last"),
    "dfa lean memory": ({"mode": "dfa", "memory": "lean"}, {}, "all"),
    "dfa dense projector": ({"mode": "dfa", "projector": "dense"}, {}, "all"),
    "dfa weight decay 0": ({"mode": "dfa", "weight_decay": 0.0}, {}, "all"),
}


def results_path(part: str = "") -> Path:
    """Results of one process: ``dfa_study.json``, or ``dfa_study-PART.json`` for parallel runs."""
    return results_dir() / (f"dfa_study-{part}.json" if part else "dfa_study.json")


def load_results(part: str | None = None) -> list[dict[str, Any]]:
    """The stored records of one part, or of all parts (``None``)."""
    paths = [results_path(part)] if part is not None else sorted(results_dir().glob("dfa_study*.json"))
    return [record for path in paths if path.exists() for record in json.loads(path.read_text())]


def train_and_score(store: Path, row: str, seed: int, steps: int) -> dict[str, Any]:
    """One row, one seed: train, then the RMSE ratios to persistence per channel and lead."""
    import torch

    from climate_optics.evaluation.forecast_skill import forecast_skill
    from climate_optics.training import loop
    from climate_optics.training.forecast_task import ForecastTask
    from climate_optics.training.task import TrainConfig

    config_overrides, task_overrides, points = ROWS[row]
    task = ForecastTask(store, seed=seed, **task_overrides)
    if points == "but-last":
        task.feedback_points = task.feedback_points[:-1]  # the last block joins the head: true gradient
    config = TrainConfig(**{"steps": steps, "batch_size": 8, "lr": 1e-3, "warmup": max(1, steps // 20), "seed": seed,
                            "val_every": max(1, steps // 10), "checkpoint_every": steps, "device": "cpu", "progress": False,
                            **config_overrides})
    with tempfile.TemporaryDirectory() as out:
        result = loop.train(task, config, out)
        log = [json.loads(line) for line in (Path(out) / loop.METRICS_FILE).read_text().splitlines()]
    record: dict[str, Any] = {"row": row, "seed": seed, "steps": steps, "final_loss": result.final_loss,
                              "wall_s": result.wall_time_s, "device_time_s": result.engine_stats.get("projector_device_time_s", 0.0),
                              "energy_j": result.engine_stats.get("projector_energy_j", 0.0),
                              "curve": [(r["step"], r["loss"]) for r in log if r["kind"] == "train"],
                              "alignment": [r for r in log if r["kind"] == "alignment"]}
    with torch.no_grad():
        for channel in CHANNELS:
            for lead in LEADS:
                s = forecast_skill(task.model, store, start=task.val_start, lead_hours=lead, channel=channel)
                record[f"{channel} {lead}h"] = s["rmse"] / s["persistence_rmse"]
                record[f"{channel} {lead}h scores"] = s  # rmse, acc, persistence_rmse, persistence_acc, climatology_rmse
    return record


def table(records: list[dict[str, Any]], steps: int) -> str:
    keys = [f"{c} {lead}h" for c in CHANNELS for lead in LEADS]
    lines = ["| row | seeds | final loss | " + " | ".join(k.replace("geopotential@500", "Z500").replace("temperature@850", "T850")
                                                    .replace("2m_temperature", "T2m") for k in keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]
    for row in ROWS:
        runs = [r for r in records if r["row"] == row and r["steps"] == steps]
        if not runs:
            continue

        def cell(key: str) -> str:
            values = [r[key] for r in runs]
            spread = statistics.pstdev(values) if len(values) > 1 else 0.0
            return f"{statistics.fmean(values):.3f} ± {spread:.3f}"

        lines.append(f"| {row} | {len(runs)} | {cell('final_loss')} | " + " | ".join(cell(k) for k in keys) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW")
    parser.add_argument("--table", action="store_true", help="print the table of the stored results only")
    parser.add_argument("--part", default="", help="write to dfa_study-PART.json (for processes run side by side)")
    args = parser.parse_args()
    if not args.table:
        import torch

        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as tmp:
            store = args.store or _synthetic_store(Path(tmp))
            for row in args.rows:
                for seed in args.seeds:
                    start = time.perf_counter()
                    record = train_and_score(store, row, seed, args.steps)
                    record["date"] = time.strftime("%Y-%m-%d")
                    kept = [r for r in load_results(args.part) if (r["row"], r["seed"], r["steps"]) != (row, seed, args.steps)]
                    results_path(args.part).write_text(json.dumps(kept + [record]) + "\n")
                    print(f"{row} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    print(f"{args.steps} steps of 8 samples; RMSE / persistence RMSE, mean ± spread over seeds")
    print(table(load_results(), args.steps))


def _synthetic_store(directory: Path) -> Path:
    from data_catalog.ingest import ingest

    options = {"days": 365, "spinup_days": 30, "seed": 0, "grid": "5.625deg", "cache_dir": str(directory / "cache")}
    return ingest("synthetic-reanalysis", directory / "store.zarr", options=options)


if __name__ == "__main__":
    main()
