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

from benchkit import results_dir

CHANNELS = ("geopotential@500", "temperature@850", "2m_temperature")
LEADS = (24, 72)
# name -> (TrainConfig overrides, ForecastTask overrides, feedback points: "all" | "but-last")
# Every row trains with the defaults' rollout tail unless it says one-step (rollout_tail ONE_STEP).
ONE_STEP = (1, 0.0)
# Rows measured before the signals went through the final norm (the default since the third round)
# keep it off, so that they reproduce what they measured; "dfa" and "optical" are the defaults.
NORM_OFF = {"feedback_norm": "off"}
ROWS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "backprop": ({"mode": "backprop"}, {}, "all"),
    "backprop one-step (no rollout tail)": ({"mode": "backprop"}, {"rollout_tail": ONE_STEP}, "all"),
    "dfa one-step (no rollout tail)": ({**NORM_OFF, "mode": "dfa"}, {"rollout_tail": ONE_STEP}, "all"),
    "optical one-step (no rollout tail)": ({**NORM_OFF, "mode": "optical"}, {"rollout_tail": ONE_STEP}, "all"),
    "dfa per-sample error (old default)": ({**NORM_OFF, "mode": "dfa", "error": "sample"}, {}, "all"),
    "dfa": ({"mode": "dfa"}, {}, "all"),
    "optical": ({"mode": "optical"}, {}, "all"),
    "dfa lr 3e-3": ({**NORM_OFF, "mode": "dfa", "lr": 3e-3}, {}, "all"),
    "dfa lr 3e-4": ({**NORM_OFF, "mode": "dfa", "lr": 3e-4}, {}, "all"),
    "dfa split feedback": ({**NORM_OFF, "mode": "dfa", "feedback": "split"}, {}, "all"),
    "dfa hybrid (last block by backprop)": ({**NORM_OFF, "mode": "dfa"}, {}, "but-last"),
    "dfa lean memory": ({**NORM_OFF, "mode": "dfa", "memory": "lean"}, {}, "all"),
    "dfa dense projector": ({**NORM_OFF, "mode": "dfa", "projector": "dense"}, {}, "all"),
    "dfa weight decay 0": ({**NORM_OFF, "mode": "dfa", "weight_decay": 0.0}, {}, "all"),
    "dfa Adam beta2 0.99": ({**NORM_OFF, "mode": "dfa", "betas": (0.9, 0.99)}, {}, "all"),
    "dfa warm-up 20%": ({**NORM_OFF, "mode": "dfa", "warmup_fraction": 0.2}, {}, "all"),
    "dfa adaptive per-block feedback scale": ({**NORM_OFF, "mode": "dfa", "feedback_scale": "output"}, {}, "all"),
    # The defaults before head depth 1 and the feedback-aligned head (rollout tail, head of depth 2):
    "backprop, head depth 2, rollout tail": ({"mode": "backprop"}, {"head_depth": 2}, "all"),
    "dfa, head depth 2, rollout tail": ({**NORM_OFF, "mode": "dfa", "head_init": "random"}, {"head_depth": 2}, "all"),
    "optical, head depth 2, rollout tail": (
        {**NORM_OFF, "mode": "optical", "head_init": "random"},
        {"head_depth": 2},
        "all",
    ),
    "dfa, head depth 2, one-step": (
        {**NORM_OFF, "mode": "dfa", "head_init": "random"},
        {"head_depth": 2, "rollout_tail": ONE_STEP},
        "all",
    ),
    "backprop head depth 1": ({"mode": "backprop"}, {"head_depth": 1, "rollout_tail": ONE_STEP}, "all"),
    "dfa head depth 1": (
        {**NORM_OFF, "mode": "dfa", "head_init": "random"},
        {"head_depth": 1, "rollout_tail": ONE_STEP},
        "all",
    ),
    "dfa feedback-aligned head": (
        {**NORM_OFF, "mode": "dfa", "head_init": "feedback"},
        {"head_depth": 2, "rollout_tail": ONE_STEP},
        "all",
    ),
    "dfa feedback-aligned head, depth 1": (
        {**NORM_OFF, "mode": "dfa", "head_init": "feedback"},
        {"head_depth": 1, "rollout_tail": ONE_STEP},
        "all",
    ),
    "dfa feedback-aligned head, depth 1, lr 2e-3": (
        {**NORM_OFF, "mode": "dfa", "head_init": "feedback", "lr": 2e-3},
        {"head_depth": 1, "rollout_tail": ONE_STEP},
        "all",
    ),
    "dfa feedback-aligned head, depth 1, Adam beta2 0.99": (
        {**NORM_OFF, "mode": "dfa", "head_init": "feedback", "betas": (0.9, 0.99)},
        {"head_depth": 1, "rollout_tail": ONE_STEP},
        "all",
    ),
    "dfa feedback-aligned head, depth 1, rollout tail": (
        {**NORM_OFF, "mode": "dfa", "head_init": "feedback"},
        {"head_depth": 1, "rollout_tail": (4, 0.2)},
        "all",
    ),
    "backprop head depth 1, rollout tail": ({"mode": "backprop"}, {"head_depth": 1}, "all"),
    "optical feedback-aligned head, depth 1, rollout tail": (
        {**NORM_OFF, "mode": "optical", "head_init": "feedback"},
        {"head_depth": 1},
        "all",
    ),
    "dfa feedback-aligned head, depth 1, rollout tail 40%": (
        {**NORM_OFF, "mode": "dfa", "head_init": "feedback"},
        {"head_depth": 1, "rollout_tail": (4, 0.4)},
        "all",
    ),
    "optical feedback-aligned head, depth 1, rollout tail 40%": (
        {**NORM_OFF, "mode": "optical", "head_init": "feedback"},
        {"head_depth": 1, "rollout_tail": (4, 0.4)},
        "all",
    ),
    "dfa, rollout tail to depth 8": ({**NORM_OFF, "mode": "dfa"}, {"rollout_tail": (8, 0.2)}, "all"),
    "optical, rollout tail to depth 8": ({**NORM_OFF, "mode": "optical"}, {"rollout_tail": (8, 0.2)}, "all"),
    # The feedback-aligned head learns by its true gradient and drifts from the feedback map; a slower
    # head keeps the blocks' signal nearer the true gradient, at the cost of a slower-learning head.
    "dfa, head lr 0.3x": ({**NORM_OFF, "mode": "dfa", "head_lr_scale": 0.3}, {}, "all"),
    "dfa, head lr 0.1x": ({**NORM_OFF, "mode": "dfa", "head_lr_scale": 0.1}, {}, "all"),
    "optical, head lr 0.3x": ({**NORM_OFF, "mode": "optical", "head_lr_scale": 0.3}, {}, "all"),
    # The feedback map's conditioning: dense Gaussian and the optical anchor read-out against the
    # structured orthogonal map, and each made orthogonal by a small digital matrix (whitened).
    "dfa, whitened feedback": ({**NORM_OFF, "mode": "dfa", "whiten_feedback": True}, {}, "all"),
    "dfa dense projector, whitened": (
        {**NORM_OFF, "mode": "dfa", "projector": "dense", "whiten_feedback": True},
        {},
        "all",
    ),
    "optical, whitened feedback": ({**NORM_OFF, "mode": "optical", "whiten_feedback": True}, {}, "all"),
    "optical, external-arm reference": (
        {**NORM_OFF, "mode": "optical", "opu_config": {"reference": "external-arm"}},
        {},
        "all",
    ),
    # Each signal passed back through the final LayerNorm at the point's own output: the exact
    # vector-Jacobian product, at the last point only; the default ("dfa", "optical" above) rescales
    # each token's signal to its raw length after the norm.
    "dfa, signals through the final norm, exact vjp": ({"mode": "dfa", "feedback_norm": "vjp"}, {}, "all"),
    "optical, signals through the final norm, exact vjp": ({"mode": "optical", "feedback_norm": "vjp"}, {}, "all"),
    "dfa, signals through the final norm, last block only": ({"mode": "dfa", "feedback_norm": "last"}, {}, "all"),
    "dfa default, lr 5e-4": ({"mode": "dfa", "lr": 5e-4}, {}, "all"),
    "dfa default, rollout tail 40%": ({"mode": "dfa"}, {"rollout_tail": (4, 0.4)}, "all"),
    "dfa default, rollouts to depth 8": ({"mode": "dfa"}, {"rollout_tail": (8, 0.2)}, "all"),
    # Where optical DFA's extra gap comes from: its defaults with one noise source removed at a time.
    "optical, exact encoding (no dither noise)": (
        {**NORM_OFF, "mode": "optical", "opu_config": {"encoding": "exact"}},
        {},
        "all",
    ),
    "optical, ideal camera and laser": (
        {
            **NORM_OFF,
            "mode": "optical",
            "opu_config": {"shot_noise": False, "read_noise_e": 0.0, "adc_bits": None, "laser_power_rms": 0.0},
        },
        {},
        "all",
    ),
    "optical feedback-aligned head, depth 1": (
        {**NORM_OFF, "mode": "optical", "head_init": "feedback"},
        {"head_depth": 1, "rollout_tail": ONE_STEP},
        "all",
    ),
    # A per-grid-point linear map of the inputs beside the network (ForecasterConfig.pixel_skip): a
    # 6-hour step of T2m's diurnal cycle is linear at each point; DFA trains the map by its true gradient.
    "backprop, pixel skip": ({"mode": "backprop"}, {"pixel_skip": True}, "all"),
    "dfa, pixel skip": ({"mode": "dfa"}, {"pixel_skip": True}, "all"),
    "optical, pixel skip": ({"mode": "optical"}, {"pixel_skip": True}, "all"),
    # With the signals through the final norm (the third round's default), what the aligned head still buys.
    "dfa, random head (signals through the final norm)": ({"mode": "dfa", "head_init": "random"}, {}, "all"),
    "optical, random head (signals through the final norm)": ({"mode": "optical", "head_init": "random"}, {}, "all"),
}
# Fine-tuning after a row's training (``--finetune MODE ...``): each seed trains MODE once, then
# continues from those weights for FINETUNE_FRACTION more steps (fresh AdamW, lr FINETUNE_LR) at
# rollout depth 1 (the control: more one-step training) and at depths 1..ROLLOUT (autoregressive).
FINETUNE_FRACTION, FINETUNE_LR, ROLLOUT = 0.2, 3e-4, 4
for _mode in ("backprop", "dfa", "optical"):
    ROWS[f"{_mode} (fine-tune start, rerun)"] = ({"mode": _mode}, {"rollout_tail": ONE_STEP}, "all")
    ROWS[f"{_mode} + 1-step fine-tune (control)"] = ({"mode": _mode}, {}, "all")
    ROWS[f"{_mode} + rollout fine-tune (1-{ROLLOUT} steps)"] = ({"mode": _mode}, {}, "all")


def results_path(part: str = "") -> Path:
    """Results of one process: ``dfa_study.json``, or ``dfa_study-PART.json`` for parallel runs."""
    return results_dir() / (f"dfa_study-{part}.json" if part else "dfa_study.json")


def load_results(part: str | None = None) -> list[dict[str, Any]]:
    """The stored records of one part, or of all parts (``None``: a row and seed run again counts once, the newest)."""
    paths = (
        [results_path(part)]
        if part is not None
        else sorted(results_dir().glob("dfa_study*.json"), key=lambda p: p.stat().st_mtime)
    )
    newest = {
        (r["row"], r["seed"], r["steps"]): r for path in paths if path.exists() for r in json.loads(path.read_text())
    }
    return list(newest.values())


def train_and_score(store: Path, row: str, seed: int, steps: int) -> dict[str, Any]:
    """One row of ``ROWS``, one seed: train, then the RMSE ratios to persistence per channel and lead."""
    config_overrides, task_overrides, points = ROWS[row]
    return train_and_score_with(store, row, seed, steps, config_overrides, task_overrides, points)


def train_and_score_with(
    store: Path,
    row: str,
    seed: int,
    steps: int,
    config_overrides: dict[str, Any],
    task_overrides: dict[str, Any],
    points: str = "all",
    keep_task: bool = False,
) -> dict[str, Any]:
    """Train the forecaster with the study's protocol and these departures, then score its rollouts.

    ``keep_task``: the record also holds the trained task under ``"task"`` (to continue from it).
    """
    from climate_optics.training import loop
    from climate_optics.training.forecast_task import ForecastTask
    from climate_optics.training.rollout_defaults import ROLLOUT_DEPTH, ROLLOUT_TAIL
    from climate_optics.training.rollout_task import with_rollout_tail
    from climate_optics.training.task import TrainConfig

    task_overrides = dict(task_overrides)
    depth, fraction = task_overrides.pop("rollout_tail", (ROLLOUT_DEPTH, ROLLOUT_TAIL))  # rollouts at the run's end
    task = with_rollout_tail(ForecastTask(store, seed=seed, **task_overrides), steps, depth, fraction, seed=seed)
    if points == "but-last":
        task.feedback_points = task.feedback_points[:-1]  # the last block joins the head: true gradient
    overrides = dict(config_overrides)
    warmup = max(1, round(steps * overrides.pop("warmup_fraction", 0.05)))
    config = TrainConfig(
        **{
            "steps": steps,
            "batch_size": 8,
            "lr": 1e-3,
            "warmup": warmup,
            "seed": seed,
            "val_every": max(1, steps // 10),
            "checkpoint_every": steps,
            "device": "cpu",
            "progress": False,
            **overrides,
        }
    )
    with tempfile.TemporaryDirectory() as out:
        result = loop.train(task, config, out)
        log = [json.loads(line) for line in (Path(out) / loop.METRICS_FILE).read_text().splitlines()]
    record = score(task, store, row, seed, steps, result, log)
    return {**record, "task": task} if keep_task else record


def score(
    task: Any, store: Path, row: str, seed: int, steps: int, result: Any, log: list[dict[str, Any]]
) -> dict[str, Any]:
    """The record of one trained model: training outcome, then rollout RMSE ratios to persistence."""
    import torch

    from climate_optics.evaluation.forecast_skill import forecast_skill

    record: dict[str, Any] = {
        "row": row,
        "seed": seed,
        "steps": steps,
        "final_loss": result.final_loss,
        "parameters": task.model.num_parameters(),
        "model_config": task.config.to_dict(),
        "wall_s": result.wall_time_s,
        "device_time_s": result.engine_stats.get("projector_device_time_s", 0.0),
        "energy_j": result.engine_stats.get("projector_energy_j", 0.0),
        "curve": [(r["step"], r["loss"]) for r in log if r["kind"] == "train"],
        "alignment": [r for r in log if r["kind"] == "alignment"],
    }
    with torch.no_grad():
        for channel in CHANNELS:
            for lead in LEADS:
                s = forecast_skill(task.model, store, start=task.val_start, lead_hours=lead, channel=channel)
                record[f"{channel} {lead}h"] = s["rmse"] / s["persistence_rmse"]
                record[f"{channel} {lead}h scores"] = (
                    s  # rmse, acc, persistence_rmse, persistence_acc, climatology_rmse
                )
    return record


def finetune_records(store: Path, mode: str, seed: int, steps: int) -> list[dict[str, Any]]:
    """MODE trained as its row, then fine-tuned two ways from the same weights: three records."""
    from climate_optics.models.forecaster import Forecaster
    from climate_optics.training import loop
    from climate_optics.training.rollout_task import RolloutForecastTask
    from climate_optics.training.task import TrainConfig

    base = train_and_score_with(
        store,
        f"{mode} (fine-tune start, rerun)",
        seed,
        steps,
        {"mode": mode},
        {"rollout_tail": ONE_STEP},
        keep_task=True,
    )
    trained, records = base.pop("task"), []
    ft_steps = max(1, round(steps * FINETUNE_FRACTION))
    for depth, row in (
        (1, f"{mode} + 1-step fine-tune (control)"),
        (ROLLOUT, f"{mode} + rollout fine-tune (1-{ROLLOUT} steps)"),
    ):
        model = Forecaster(trained.model.config)
        model.load_state_dict(trained.model.state_dict())  # the trained weights, without the first run's hooks
        task = RolloutForecastTask(store, model, depth, seed=seed)
        config = TrainConfig(
            steps=ft_steps,
            batch_size=8,
            lr=FINETUNE_LR,
            warmup=max(1, ft_steps // 10),
            seed=seed + 1000,
            mode=mode,
            head_init="random",  # keep the trained head
            val_every=ft_steps,
            checkpoint_every=ft_steps,
            device="cpu",
            progress=False,
        )
        with tempfile.TemporaryDirectory() as out:
            result = loop.train(task, config, out)
            log = [json.loads(line) for line in (Path(out) / loop.METRICS_FILE).read_text().splitlines()]
        record = score(task, store, row, seed, steps, result, log)
        record["wall_s"] += base["wall_s"]
        for key in ("device_time_s", "energy_j"):
            record[key] += base[key]
        records.append(record)
    return [base] + records


def table(records: list[dict[str, Any]], steps: int) -> str:
    keys = [f"{c} {lead}h" for c in CHANNELS for lead in LEADS]
    lines = [
        "| row | seeds | final loss | "
        + " | ".join(
            k.replace("geopotential@500", "Z500").replace("temperature@850", "T850").replace("2m_temperature", "T2m")
            for k in keys
        )
        + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    for row in ROWS:
        runs = [r for r in records if r["row"] == row and r["steps"] == steps]
        if not runs:
            continue

        def cell(key: str, runs: list = runs) -> str:
            values = [r[key] for r in runs]
            spread = statistics.pstdev(values) if len(values) > 1 else 0.0
            return f"{statistics.fmean(values):.3f} ± {spread:.3f}"

        lines.append(f"| {row} | {len(runs)} | {cell('final_loss')} | " + " | ".join(cell(k) for k in keys) + " |")
    return "\n".join(lines)


def study_parser(doc: str, seeds: list[int], results: str) -> argparse.ArgumentParser:
    """The options every study script shares: --store, --steps, --seeds, --table, --part."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--store", type=Path, help="a 5.625 deg store (default: a 365-day synthetic one, generated)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=seeds)
    parser.add_argument("--table", action="store_true", help="print the table of the stored results only")
    parser.add_argument("--part", default="", help=f"write to {results}-PART.json (for processes run side by side)")
    return parser


def main() -> None:
    parser = study_parser(__doc__, [0, 1, 2], "dfa_study")
    parser.add_argument(
        "--rows", nargs="*", default=[r for r in ROWS if "fine-tune" not in r], choices=list(ROWS), metavar="ROW"
    )
    parser.add_argument(
        "--finetune",
        nargs="*",
        default=[],
        choices=("backprop", "dfa", "optical"),
        help="train MODE, then fine-tune it one-step (control) and on rollouts (rows 'MODE + ... fine-tune')",
    )
    args = parser.parse_args()
    if not args.table:
        import torch

        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as tmp:
            store = args.store or _synthetic_store(Path(tmp))
            jobs = [(row, seed) for row in args.rows for seed in args.seeds] + [
                (mode, seed, "finetune") for mode in args.finetune for seed in args.seeds
            ]
            for job in jobs:
                start = time.perf_counter()
                records = (
                    finetune_records(store, job[0], job[1], args.steps)
                    if len(job) == 3
                    else [train_and_score(store, job[0], job[1], args.steps)]
                )
                for record in records:
                    record["date"] = time.strftime("%Y-%m-%d")
                    kept = [
                        r
                        for r in load_results(args.part)
                        if (r["row"], r["seed"], r["steps"]) != (record["row"], record["seed"], args.steps)
                    ]
                    results_path(args.part).write_text(json.dumps(kept + [record]) + "\n")
                print(
                    f"{' '.join(map(str, job))}: {time.perf_counter() - start:.0f} s, Z500 24h/72h "
                    + ", ".join(f"{r['geopotential@500 24h']:.3f}/{r['geopotential@500 72h']:.3f}" for r in records),
                    flush=True,
                )
    print(f"{args.steps} steps of 8 samples; RMSE / persistence RMSE, mean ± spread over seeds")
    print(table(load_results(), args.steps))


def _synthetic_store(directory: Path) -> Path:
    from data_catalog.ingest import ingest

    options = {"days": 365, "spinup_days": 30, "seed": 0, "grid": "5.625deg", "cache_dir": str(directory / "cache")}
    return ingest("synthetic-reanalysis", directory / "store.zarr", options=options)


if __name__ == "__main__":
    main()
