"""Skill of back-propagation vs DFA vs optical DFA with equal training budgets, side by side.

Forecasting: the tiny ViT forecaster is trained in each mode as the command line trains it by
default (all channels of the store, the 6-hour lead, batch 8, lr 1e-3, 5% warm-up; the DFA modes
feed the error back per token) on the embedded synthetic reanalysis (5.625 deg), then rolled out
autoregressively from held-out times. Rows: Z500, T850 and T2m RMSE at 24 h and 72 h against
persistence (targets: DFA and optical within 15% of back-propagation's Z500 RMSE at 24 h; every
mode better than persistence at 72 h), Z500 ACC and RMSE against climatology, wall time and the
simulated optical device time and energy of the feedback projections. Downscaling rows (CRPS,
spread-skill, spectrum) come from ``benchmarks/downscale_cases.py:downscale_skill_rows(quick)``.

    python benchmarks/bench_skill.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Row, write_results  # noqa: E402
from dfa_study import CHANNELS, LEADS, train_and_score  # noqa: E402

from optical_backend.kinds import TRAINING_MODES  # noqa: E402

NAME = "skill"
SHORT = {"geopotential@500": "Z500", "temperature@850": "T850", "2m_temperature": "T2m"}


def synthetic_store(directory: Path, days: int) -> Path:
    from data_catalog.ingest import ingest

    options = {"days": days, "spinup_days": 30, "seed": 0, "grid": "5.625deg", "cache_dir": str(directory / "cache")}
    return ingest("synthetic-reanalysis", directory / "store.zarr", options=options)


def forecast_rows(store: Path, steps: int) -> list[Row]:
    records = {mode: train_and_score(store, mode, seed=0, steps=steps) for mode in TRAINING_MODES}
    rows = []
    for mode, record in records.items():
        tag = f"forecast {mode}"
        for channel in CHANNELS:
            for lead in LEADS:
                s = record[f"{channel} {lead}h scores"]
                target = "ratio < 1" if lead == 72 else None
                rows.append(
                    Row(
                        NAME,
                        f"{tag}: {SHORT[channel]} RMSE {lead}h vs persistence",
                        s["rmse"],
                        s["persistence_rmse"],
                        "phys",
                        s["rmse"] / s["persistence_rmse"],
                        target,
                    )
                )
        z500 = record["geopotential@500 24h scores"]
        rows.append(
            Row(
                NAME,
                f"{tag}: Z500 ACC 24h vs persistence",
                z500["acc"],
                z500["persistence_acc"],
                "1",
                z500["acc"] / z500["persistence_acc"],
            )
        )
        rows.append(
            Row(
                NAME,
                f"{tag}: Z500 RMSE 24h vs climatology",
                z500["rmse"],
                z500["climatology_rmse"],
                "m2 s-2",
                z500["rmse"] / z500["climatology_rmse"],
                "ratio < 1",
            )
        )
        if mode != "backprop":
            reference = records["backprop"]["geopotential@500 24h scores"]["rmse"]
            rows.append(
                Row(
                    NAME,
                    f"{tag}: Z500 RMSE 24h vs backprop's",
                    z500["rmse"],
                    reference,
                    "m2 s-2",
                    z500["rmse"] / reference,
                    "ratio <= 1.15",
                )
            )
        rows.append(Row(NAME, f"{tag}: training wall time ({steps} steps)", record["wall_s"], None, "s"))
        if mode != "backprop":
            rows.append(Row(NAME, f"{tag}: simulated optical device time", record["device_time_s"], None, "s"))
            rows.append(Row(NAME, f"{tag}: simulated optical energy", record["energy_j"], None, "J"))
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
