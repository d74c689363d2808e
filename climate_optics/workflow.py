"""The end-to-end pipeline's steps as plain functions: paths in, paths out.

ingest (``data_catalog.ingest.ingest``) -> for each training mode ``train_forecaster`` ->
``forecast_held_out`` -> ``score_forecast`` (every mode's forecast in one scores store, with
persistence and climatology), optionally ``train_downscaler`` in one mode -> ``downscale_forecast``
of that mode's forecast and ``interpolate_forecast`` (the bilinear baseline) -> ``score_forecast``
of both against the fine truth -> the report (``climate_optics.report``).
The Prefect flows in ``flows/`` wrap each step as a task; ``climate-optics demo --no-prefect``
calls ``climate_optics.pipeline.run_pipeline``, which runs the same steps in the same order
without an orchestrator.
Nothing here imports Prefect.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from climate_optics.errors import UsageInputError
from data_catalog.store import atomic_store

DEMO_SOURCE = "synthetic-reanalysis"
# 90 days of the embedded reanalysis on the 5.625 degree forecasting grid (one minute or so to generate).
DEMO_OPTIONS: dict[str, Any] = {"grid": "5.625deg", "days": 90, "seed": 0}
DEMO_MODES = ("backprop", "optical")  # trained side by side unless a mode (or list of modes) is chosen
TIMINGS_FILE = "timings.json"  # wall seconds per pipeline stage, in the run directory
ARCHITECTURE_KEYS = ("channels", "static_channels", "grid", "patch", "dim", "depth", "heads", "mlp_ratio", "head_depth", "step_hours")


@dataclass
class RunLayout:
    """Where the pipeline puts each output inside one run directory."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def data(self) -> Path:  # the ingested canonical store
        return self.root / "data.zarr"

    @property
    def train(self) -> Path:  # a single forecaster run directory (scheduled retraining)
        return self.root / "train"

    @property
    def forecast(self) -> Path:  # a single forecast store (scheduled retraining)
        return self.root / "forecast.zarr"

    def train_run(self, mode: str) -> Path:  # forecaster run directory of one mode (checkpoint.pt, metrics.jsonl)
        return self.root / f"train-{mode}"

    def forecast_of(self, mode: str) -> Path:  # forecast store of one mode over the held-out period
        return self.root / f"forecast-{mode}.zarr"

    def downscale_run(self, mode: str) -> Path:  # downscaler run directory of one mode (regression/, diffusion/)
        return self.root / f"downscale-{mode}"

    def downscaled_of(self, mode: str) -> Path:  # that mode's forecast downscaled into an ensemble on the fine grid
        return self.root / f"downscaled-{mode}.zarr"

    @property
    def scores(self) -> Path:  # scores store of every mode's forecast and the baselines
        return self.root / "scores.zarr"

    @property
    def hires(self) -> Path:  # the fine-grid store the downscaler learns from
        return self.root / "hires.zarr"

    @property
    def bilinear(self) -> Path:  # the forecast interpolated bilinearly to the fine grid (the baseline)
        return self.root / "bilinear.zarr"

    @property
    def downscaled_scores(self) -> Path:  # scores of both against the fine truth
        return self.root / "downscaled_scores.zarr"

    @property
    def timings(self) -> Path:  # wall seconds per stage
        return self.root / TIMINGS_FILE


@dataclass
class PipelineConfig:
    """Settings of one end-to-end run; saved as ``pipeline.json`` in the run directory."""

    source: str = DEMO_SOURCE  # catalog entry or path of the data to ingest
    options: dict[str, Any] | None = None  # driver options (synthetic default: DEMO_OPTIONS)
    variables: list[str] | None = None  # canonical names to keep (None: all)
    levels: list[float] | None = None  # pressure levels to keep (None: all)
    modes: list[str] | None = None  # training modes trained side by side (None: [mode] if set, else DEMO_MODES)
    mode: str | None = None  # a single training mode (backprop | dfa | optical): shorthand for modes=[mode]
    projector: str = "structured"  # digital DFA projector (dense | structured)
    preset: str = "tiny"  # forecaster size preset
    model: dict[str, Any] = field(default_factory=dict)  # ForecasterConfig overrides (e.g. dim, depth)
    steps: int = 200  # optimiser steps
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    lead_hours: tuple[int, ...] = (6, 24, 72)  # forecast lead times scored
    climatology_period: Any = None  # [start, end] (or "START/END") of the climatology; None: before the held-out part
    max_inits: int = 24  # forecasts started from at most this many held-out times
    metrics: list[str] | None = None  # None: rmse, bias, mae, acc (with the store's climatology)
    regions: list[str] | None = None  # None: the default regions
    downscale: bool | None = None  # also train a downscaler on the fine grid (None: for the synthetic source only)
    downscale_mode: str | None = None  # mode of the downscaler and of the forecast it downscales (None: the last of modes)
    downscale_max_inits: int | None = 2  # downscale the forecasts from the first N init times only (None: all)
    downscale_steps: int = 100  # steps of the downscaler's regression stage (and of its diffusion stage unless set below)
    downscale_diffusion_steps: int | None = None  # steps of the diffusion stage (None: downscale_steps)
    downscale_members: int = 4  # ensemble members of the downscaled forecast
    downscale_sampler_steps: int | None = None  # Heun sampler steps (None: the model's)

    def __post_init__(self) -> None:
        if self.options is None and self.source == DEMO_SOURCE:
            self.options = dict(DEMO_OPTIONS)
        if self.modes is None:
            self.modes = [self.mode] if self.mode else list(DEMO_MODES)
        self.modes = [str(m) for m in ([self.modes] if isinstance(self.modes, str) else self.modes)]
        if not self.modes or len(set(self.modes)) != len(self.modes):
            raise UsageInputError(f"pipeline: modes must be distinct training modes, got {self.modes}")
        if self.mode is not None and self.modes != [self.mode]:
            raise UsageInputError(f"pipeline: mode {self.mode!r} and modes {self.modes} disagree; set one of them")
        if self.downscale is None:
            self.downscale = self.source == DEMO_SOURCE
        if self.downscale_mode is None:
            self.downscale_mode = self.modes[-1]
        if self.downscale_mode not in self.modes:
            raise UsageInputError(f"pipeline: downscale_mode {self.downscale_mode!r} is not one of the modes {self.modes}")
        self.lead_hours = tuple(int(h) for h in self.lead_hours)
        if not self.lead_hours or min(self.lead_hours) <= 0:
            raise UsageInputError(f"pipeline: lead times must be positive hours, got {self.lead_hours}")
        if self.max_inits < 1:
            raise UsageInputError(f"pipeline: max_inits must be >= 1, got {self.max_inits}")
        counts = {"downscale_steps": self.downscale_steps, "downscale_diffusion_steps": self.downscale_diffusion_steps,
                  "downscale_members": self.downscale_members, "downscale_sampler_steps": self.downscale_sampler_steps,
                  "downscale_max_inits": self.downscale_max_inits}
        for name, value in counts.items():
            if value is not None and value < 1:
                raise UsageInputError(f"pipeline: {name} must be >= 1, got {value}")
        for mode in self.modes:
            self.train_config(mode)  # validates mode, steps, batch size, lr

    def train_config(self, mode: str, **changes: Any):
        return training_config(steps=self.steps, batch_size=self.batch_size, lr=self.lr, seed=self.seed, mode=mode,
                               projector=self.projector, **changes)

    def train_options(self, mode: str) -> dict[str, Any]:
        """Keyword arguments of ``train_forecaster`` (and of the flow's task) for one mode."""
        return dict(mode=mode, projector=self.projector, preset=self.preset, model=self.model, steps=self.steps,
                    batch_size=self.batch_size, lr=self.lr, seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lead_hours"] = list(self.lead_hours)
        return out


def training_config(*, steps: int, **values: Any):
    """A TrainConfig for unattended runs (``TrainConfig.for_steps``), deterministic, without a progress bar."""
    from climate_optics.training.task import TrainConfig

    return TrainConfig.for_steps(steps, **({"progress": False, "deterministic": True} | values))


# ----------------------------------------------------------------------------- steps


def train_forecaster(
    store: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    mode: str = "backprop",
    projector: str = "structured",
    preset: str = "tiny",
    model: dict[str, Any] | None = None,
    steps: int = 300,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    warm_start: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = False,
) -> Path:
    """Train the ViT forecaster on an ingested store into ``run_dir``; returns the checkpoint path.

    ``warm_start``: a checkpoint (or run directory) whose weights initialise the model (scheduled
    retraining); the data statistics come from ``store``. ``resume``: continue ``run_dir``.
    """
    from climate_optics.training.forecast_task import ForecastTask
    from climate_optics.training.loop import train

    if not Path(store).exists():
        raise UsageInputError(f"training data not found: {store}")
    config = training_config(steps=steps, batch_size=batch_size, lr=lr, seed=seed, mode=mode, projector=projector,
                             progress=progress)
    task = ForecastTask(store, preset=preset, **(model or {}))
    if warm_start is not None and not resume:
        load_weights(task.model, warm_start)
    from climate_optics.io.checkpoints import LATEST

    result = train(task, config, run_dir, resume=resume)
    return Path(result.checkpoint or Path(run_dir) / LATEST)  # None when a resumed run was already complete


def load_weights(model: Any, checkpoint: str | os.PathLike) -> None:
    """Copy a forecaster checkpoint's trained parameters into ``model`` (its statistics buffers are kept)."""
    from climate_optics.io.checkpoints import load_checkpoint

    state = load_checkpoint(checkpoint)
    saved = state["task"].get("model_config", {})
    ours = model.config.to_dict()
    differ = [k for k in ARCHITECTURE_KEYS if k in saved and _plain(saved[k]) != _plain(ours[k])]
    if differ:
        raise UsageInputError(f"warm start from {checkpoint}: model {', '.join(differ)} differ from the new model's; "
                              "retrain from scratch or keep the same variables, grid and preset")
    params = {name for name, _ in model.named_parameters()}
    model.load_state_dict({k: v for k, v in state["model"].items() if k in params}, strict=False)


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def held_out_inits(checkpoint: str | os.PathLike, store: str | os.PathLike, lead_hours: Sequence[int], max_inits: int) -> tuple[str, str]:
    """(first, last) init times inside the run's validation period whose longest lead still has truth."""
    import numpy as np

    from climate_optics.io.checkpoints import load_checkpoint
    from climate_optics.io.windows import open_store

    data = load_checkpoint(checkpoint)["task"].get("data", {})
    times = open_store(store)["time"].values
    start = np.datetime64(data.get("val_start_time", str(times[0])), "ns")
    last_valid = times[-1] - np.timedelta64(max(lead_hours), "h")
    inits = times[(times >= start) & (times <= last_valid)]
    if inits.size == 0:
        raise UsageInputError(f"no held-out init time from {start} leaves truth for a {max(lead_hours)} h lead "
                              f"(store ends {times[-1]}); use a longer record or shorter lead times")
    inits = inits[:max_inits]
    return str(inits[0]), str(inits[-1])


def forecast_held_out(
    checkpoint: str | os.PathLike,
    store: str | os.PathLike,
    out: str | os.PathLike,
    *,
    lead_hours: Sequence[int] = (6, 24, 72),
    max_inits: int = 24,
    overwrite: bool = False,
) -> Path:
    """Forecasts from the held-out (validation) times of the training run; returns the forecast store."""
    from climate_optics.inference.forecast import run_forecast

    init = held_out_inits(checkpoint, store, lead_hours, max_inits)
    return run_forecast(checkpoint, store, init=init, lead_hours=list(lead_hours), out=out, overwrite=overwrite)


def score_forecast(
    forecast: str | os.PathLike,
    truth: str | os.PathLike,
    out: str | os.PathLike,
    *,
    metrics: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    references: Sequence[str | os.PathLike] | None = None,
    overwrite: bool = False,
) -> Path:
    """Scores store (persistence and climatology baselines included), ``scores.md`` and figures.
    ``references``: further forecast stores scored alongside (e.g. the bilinear baseline)."""
    from climate_optics.evaluation.evaluate_stores import evaluate_stores

    # The pipeline ingests its truth with the climatology of the record before the held-out part
    # (``climatology_period``), so evaluate's out-of-sample check holds and is kept.
    return evaluate_stores(forecast, truth, out, metrics=metrics, regions=regions, references=references, overwrite=overwrite)


# ----------------------------------------------------------------------------- the whole pipeline


def climatology_period(config: PipelineConfig) -> Any:
    """The climatology's [start, end]: the configured one, else the record up to the forecaster's held-out
    (validation) part, so that the forecasts are scored against a climatology of other times."""
    if config.climatology_period is not None:
        return config.climatology_period  # checked by ingest
    import inspect

    from climate_optics.training.forecast_task import ForecastTask
    from data_catalog import open_dataset

    val_fraction = inspect.signature(ForecastTask).parameters["val_fraction"].default  # the task's split rule
    times = open_dataset(config.source, variables=config.variables, levels=config.levels, options=config.options)["time"].values
    n_val = max(1, int(round(times.size * val_fraction)))
    if times.size - n_val < 1:
        raise UsageInputError(f"{config.source}: {times.size} times leave none before the held-out part for a climatology")
    return [str(times[0]), str(times[times.size - n_val - 1])]


def hires_options(config: PipelineConfig) -> dict[str, Any]:
    """Options of the fine-grid view of the same synthetic run (the downscaling truth)."""
    if config.source != DEMO_SOURCE:
        raise UsageInputError("downscaling in the pipeline needs the synthetic source (its fine grid is the same run); "
                              "use `climate-optics train downscale` for other data")
    return dict(config.options or {}) | {"grid": "2.8125deg"}


def train_downscaler(
    store: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    mode: str = "backprop",
    projector: str = "structured",
    preset: str = "tiny",
    steps: int = 100,
    diffusion_steps: int | None = None,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
) -> Path:
    """Train the downscaler's regression (``steps``) and diffusion (``diffusion_steps``, default ``steps``) stages; returns ``run_dir``."""
    from climate_optics.io.checkpoints import LATEST
    from climate_optics.training.downscale_task import run_downscale_training

    config = training_config(steps=steps, batch_size=batch_size, lr=lr, seed=seed, mode=mode, projector=projector)
    resume = (Path(run_dir) / "regression" / LATEST).exists()
    run_downscale_training(store, run_dir, config, stage="both", preset=preset, resume=resume, diffusion_steps=diffusion_steps)
    return Path(run_dir)


def downscaler_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The diffusion-stage checkpoint of a ``train_downscaler`` run (what downscaling reads)."""
    from climate_optics.io.checkpoints import LATEST

    path = Path(run_dir) / "diffusion" / LATEST
    if not path.is_file():
        raise UsageInputError(f"{run_dir}: no diffusion-stage checkpoint; train the downscaler first")
    return path


# ----------------------------------------------------------------------------- scheduled retraining

LATEST_RUN = "LATEST.json"  # in a retraining root: the run the next retraining starts from


def latest_run(runs_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The record of the last completed retraining in ``runs_dir`` (None before the first)."""
    path = Path(runs_dir) / LATEST_RUN
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if not Path(record.get("checkpoint", "")).is_file():
        raise UsageInputError(f"{path} points to a missing checkpoint {record.get('checkpoint')!r}; "
                              "restore it or remove the file to retrain from scratch")
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
