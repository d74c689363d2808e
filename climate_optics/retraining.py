"""The promotion gate of scheduled retraining: score a candidate and the current model on the same
held-out period and promote the candidate only if it is at least as good.

``PromotionGate`` names the deciding score (default: Z500 RMSE at 24 h, global);
``compare_models`` forecasts the held-out init times of the candidate's run with both checkpoints
and scores both in one scores store; ``PromotionGate.decide`` says whether to promote and why.
The flow in ``flows/retrain.py`` wraps these steps; nothing here imports Prefect. Forecasting,
scoring and data reading (torch, xarray) are imported inside the functions that use them, so
that ``climate-optics serve`` reads the gate and checks its server in a fraction of a second.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from climate_optics.errors import UsageInputError
from data_catalog.store import atomic_store

LOWER_IS_BETTER = ("rmse", "mse", "mae", "crps", "ensemble_mean_rmse")
HIGHER_IS_BETTER = ("acc",)
CLOSER_TO_ZERO = ("bias",)
CANDIDATE, CURRENT = "candidate", "current"  # model names in the comparison's scores store


@dataclass(frozen=True)
class PromotionGate:
    """The score a candidate must match or beat to become current."""

    metric: str = "rmse"  # one of LOWER_IS_BETTER, HIGHER_IS_BETTER or CLOSER_TO_ZERO
    variable: str = "geopotential"  # canonical variable name
    level: float | None = 500.0  # pressure level in hPa (None for a single-level variable)
    lead_hours: int = 24  # lead time scored
    region: str = "global"

    def __post_init__(self) -> None:
        known = LOWER_IS_BETTER + HIGHER_IS_BETTER + CLOSER_TO_ZERO
        if self.metric not in known:
            raise UsageInputError(f"promotion gate: metric {self.metric!r} is not one of {', '.join(known)}")
        if int(self.lead_hours) <= 0:
            raise UsageInputError(f"promotion gate: lead_hours must be positive, got {self.lead_hours}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "PromotionGate":
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise UsageInputError(
                f"promotion gate: unknown setting {unknown[0]!r}; known: {', '.join(cls.__dataclass_fields__)}"
            )
        return cls(**values)

    def describe(self) -> str:
        level = f"@{self.level:g} hPa" if self.level is not None else ""
        return f"{self.metric} of {self.variable}{level} at {self.lead_hours} h ({self.region})"

    def at_least_as_good(self, candidate: float, current: float) -> bool:
        """True if ``candidate`` is as good as ``current`` or better; a NaN candidate never is."""
        if math.isnan(candidate):
            return False
        if math.isnan(current):
            return True
        if self.metric in HIGHER_IS_BETTER:
            return candidate >= current
        if self.metric in CLOSER_TO_ZERO:
            return abs(candidate) <= abs(current)
        return candidate <= current

    def decide(self, candidate: float, current: float | None) -> tuple[bool, str]:
        """(promote?, why) for the candidate's and the current model's scores (None: no current model)."""
        what = self.describe()
        if current is None:
            if math.isnan(candidate):
                return False, f"no current model, but the candidate's {what} is not a number"
            return True, f"no current model: the candidate ({what} {candidate:.6g}) becomes the first"
        if self.at_least_as_good(candidate, current):
            return True, f"candidate {what} {candidate:.6g} is at least as good as current {current:.6g}"
        return False, f"candidate {what} {candidate:.6g} is worse than current {current:.6g}; current kept"


@dataclass
class Comparison:
    """Both models' gate scores on one held-out period, and where the evidence lies."""

    candidate: float
    current: float | None
    held_out: tuple[str, str]  # first and last init time
    scores: str  # the scores store holding both models

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_models(
    candidate: str | os.PathLike,
    current: str | os.PathLike | None,
    store: str | os.PathLike,
    work_dir: str | os.PathLike,
    gate: PromotionGate,
    *,
    lead_hours: Sequence[int] = (24,),
    max_inits: int = 24,
) -> Comparison:
    """Forecast the candidate run's held-out init times with both checkpoints, score both against
    ``store`` into ``work_dir/comparison.zarr``, and read the gate's score of each."""
    from climate_optics.evaluation.evaluate_stores import evaluate_stores
    from climate_optics.inference.forecast import run_forecast
    from climate_optics.workflow import held_out_inits

    leads = sorted(set(int(h) for h in lead_hours) | {int(gate.lead_hours)})
    init = held_out_inits(candidate, store, leads, max_inits)
    work = Path(work_dir)
    forecasts = {
        CANDIDATE: run_forecast(candidate, store, init=init, lead_hours=leads, out=work / "forecast-candidate.zarr")
    }
    if current is not None:
        forecasts[CURRENT] = run_forecast(
            current, store, init=init, lead_hours=leads, out=work / "forecast-current.zarr"
        )
    references = [f"{CURRENT}={forecasts[CURRENT]}"] if current is not None else []
    scores = evaluate_stores(
        forecasts[CANDIDATE],
        store,
        work / "comparison.zarr",
        metrics=[gate.metric],
        regions=[gate.region],
        baselines=["persistence"],
        model_name=CANDIDATE,
        variables=[gate.variable],
        references=references,
        allow_in_sample_climatology=True,
    )
    return Comparison(
        candidate=gate_score(scores, CANDIDATE, gate),
        current=gate_score(scores, CURRENT, gate) if current is not None else None,
        held_out=init,
        scores=str(scores),
    )


def gate_score(scores: str | os.PathLike, model: str, gate: PromotionGate) -> float:
    """The gate's score of ``model`` in a scores store."""
    import numpy as np

    from climate_optics.evaluation.evaluate_stores import _open_zarr

    ds = _open_zarr(scores)
    if gate.variable not in ds:
        raise UsageInputError(
            f"promotion gate: {scores} has no scores of {gate.variable!r} (has {', '.join(ds.data_vars)})"
        )
    da = ds[gate.variable].sel(
        model=model, metric=gate.metric, region=gate.region, lead_time=np.timedelta64(int(gate.lead_hours), "h")
    )
    if "level" in da.dims:
        if gate.level is None:
            raise UsageInputError(f"promotion gate: {gate.variable} has levels; set the gate's level")
        levels = da["level"].values
        if not np.any(np.isclose(levels, gate.level)):
            raise UsageInputError(f"promotion gate: level {gate.level:g} hPa not scored (levels {list(levels)})")
        da = da.sel(level=levels[np.isclose(levels, gate.level)][0])
    return float(da.values)


# ----------------------------------------------------------------------------- the latest run of a retraining root

LATEST_RUN = "LATEST.json"  # in a retraining root: the run the next retraining starts from


def latest_run(runs_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The record of the last completed retraining in ``runs_dir`` (None before the first)."""
    path = Path(runs_dir) / LATEST_RUN
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if not Path(record.get("checkpoint", "")).is_file():
        raise UsageInputError(
            f"{path} points to a missing checkpoint {record.get('checkpoint')!r}; "
            "restore it or remove the file to retrain from scratch"
        )
    return record


def record_latest(runs_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Make ``record`` (run dir, checkpoint, data, scores, time) the latest run, atomically."""
    path = Path(runs_dir) / LATEST_RUN
    with atomic_store(path, overwrite=True, kind="file") as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path


def window_start(source: str, days: float | None, options: dict[str, Any] | None = None) -> str | None:
    """Start of the trailing ``days`` of ``source``'s record (None: the whole record)."""
    if days is None:
        return None
    if days <= 0:
        raise UsageInputError(f"--window-days must be positive, got {days}")
    import numpy as np

    from data_catalog import open_dataset

    last = open_dataset(source, options=options)["time"].values[-1]
    return str(last - np.timedelta64(int(days * 24), "h"))
