"""The end-to-end pipeline's steps as plain functions: paths in, paths out.

ingest (``data_catalog.ingest.ingest``) -> for each training mode ``train_forecaster`` ->
``forecast_held_out`` -> ``score_forecast`` (every mode's forecast in one scores store, with
persistence and climatology), optionally ``train_downscaler`` in one mode -> ``downscale_forecast``
of that mode's forecast and ``interpolate_forecast`` (the bilinear baseline) -> ``score_forecast``
of both against the fine truth -> the report (``climate_optics.report``).
The Prefect flows in ``flows/`` wrap each step as a task; ``climate-optics demo --no-prefect``
calls ``climate_optics.pipeline.run_pipeline``, which runs the same steps in the same order
without an orchestrator.
The run's settings and directory layout are in ``climate_optics.run_layout``; the bookkeeping of
scheduled retraining in ``climate_optics.retraining``. Nothing here imports Prefect.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from climate_optics.errors import UsageInputError
from climate_optics.evaluation.evaluate_stores import evaluate_stores
from climate_optics.inference.forecast import run_forecast
from climate_optics.io.checkpoints import LATEST, load_checkpoint
from climate_optics.io.windows import open_store
from climate_optics.run_layout import DEMO_SOURCE, PipelineConfig, training_config
from climate_optics.training.downscale_task import run_downscale_training
from climate_optics.training.forecast_task import ForecastTask
from climate_optics.training.loop import holding_run_dir, train
from climate_optics.training.rollout_defaults import ROLLOUT_DEPTH, ROLLOUT_TAIL
from climate_optics.training.rollout_task import with_rollout_tail
from data_catalog import open_dataset

# Warm starts copy weights only between models that agree on these settings.
ARCHITECTURE_KEYS = (
    "channels",
    "static_channels",
    "grid",
    "patch",
    "dim",
    "depth",
    "heads",
    "mlp_ratio",
    "head_depth",
    "step_hours",
    "pixel_skip",
)

# ----------------------------------------------------------------------------- steps


def train_forecaster(
    store: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    mode: str = "backprop",
    projector: str = "structured",
    preset: str = "tiny",
    architecture: str | None = None,
    model: dict[str, Any] | None = None,
    steps: int = 300,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    error: str = "auto",
    feedback_norm: str = "auto",
    opu_config: dict[str, Any] | None = None,
    warm_start: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = False,
    rollout: int = ROLLOUT_DEPTH,
    rollout_tail: float = ROLLOUT_TAIL,
) -> Path:
    """Train a forecaster (``architecture`` from the model registry, default the ViT) on an ingested store
    into ``run_dir``; returns the checkpoint path.

    ``error``, ``feedback_norm``, ``opu_config``: the DFA error granularity, the signals through the
    final norm and the optical device (``TrainConfig``).
    ``warm_start``: a checkpoint (or run directory) whose weights initialise the model (scheduled
    retraining); the data statistics come from ``store``. ``resume``: continue ``run_dir``.
    ``rollout``, ``rollout_tail``: the last ``rollout_tail`` of the steps train rollouts of depth
    1..``rollout`` (``climate_optics.training.rollout_task.with_rollout_tail``).
    """

    if not Path(store).exists():
        raise UsageInputError(f"training data not found: {store}")
    config = training_config(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        mode=mode,
        projector=projector,
        error=error,
        feedback_norm=feedback_norm,
        opu_config=opu_config,
        progress=progress,
    )
    with holding_run_dir(Path(run_dir)):  # one writer per run directory, before the data are read
        task = ForecastTask(store, preset=preset, architecture=architecture, seed=seed, **(model or {}))
        if warm_start is not None and not resume:
            load_weights(task.model, warm_start)
        task = with_rollout_tail(task, steps, rollout, rollout_tail, seed=seed)
        result = train(task, config, run_dir, resume=resume)
    return Path(result.checkpoint or Path(run_dir) / LATEST)  # None when a resumed run was already complete


def load_weights(model: Any, checkpoint: str | os.PathLike) -> None:
    """Copy a forecaster checkpoint's trained parameters into ``model`` (its statistics buffers are kept)."""

    state = load_checkpoint(checkpoint)
    saved = state["task"].get("model_config", {})
    ours = model.config.to_dict()
    differ = [k for k in ARCHITECTURE_KEYS if k in saved and _plain(saved[k]) != _plain(ours[k])]
    if differ:
        raise UsageInputError(
            f"warm start from {checkpoint}: model {', '.join(differ)} differ from the new model's; "
            "retrain from scratch or keep the same variables, grid and preset"
        )
    params = {name for name, _ in model.named_parameters()}
    model.load_state_dict({k: v for k, v in state["model"].items() if k in params}, strict=False)
    model.warm_started = True  # a DFA run keeps these weights (no feedback-aligned head, training.loop)


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def held_out_inits(
    checkpoint: str | os.PathLike, store: str | os.PathLike, lead_hours: Sequence[int], max_inits: int
) -> tuple[str, str]:
    """(first, last) init times inside the run's validation period whose longest lead still has truth."""

    data = load_checkpoint(checkpoint)["task"].get("data", {})
    times = open_store(store)["time"].values
    start = np.datetime64(data.get("val_start_time", str(times[0])), "ns")
    last_valid = times[-1] - np.timedelta64(max(lead_hours), "h")
    inits = times[(times >= start) & (times <= last_valid)]
    if inits.size == 0:
        raise UsageInputError(
            f"no held-out init time from {start} leaves truth for a {max(lead_hours)} h lead "
            f"(store ends {times[-1]}); use a longer record or shorter lead times"
        )
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
    """Scores store (persistence and climatology baselines included), with its table and figures beside it.
    ``references``: further forecast stores scored alongside (e.g. the bilinear baseline)."""

    # The pipeline ingests its truth with the climatology of the record before the held-out part
    # (``climatology_period``), so evaluate's out-of-sample check holds and is kept.
    return evaluate_stores(
        forecast, truth, out, metrics=metrics, regions=regions, references=references, overwrite=overwrite
    )


# ----------------------------------------------------------------------------- the whole pipeline


def climatology_period(config: PipelineConfig) -> Any:
    """The climatology's [start, end]: the configured one, else the record up to the forecaster's held-out
    (validation) part, so that the forecasts are scored against a climatology of other times."""
    if config.climatology_period is not None:
        return config.climatology_period  # checked by ingest

    val_fraction = inspect.signature(ForecastTask).parameters["val_fraction"].default  # the task's split rule
    times = open_dataset(config.source, variables=config.variables, levels=config.levels, options=config.options)[
        "time"
    ].values
    n_val = max(1, int(round(times.size * val_fraction)))
    if times.size - n_val < 1:
        raise UsageInputError(
            f"{config.source}: {times.size} times leave none before the held-out part for a climatology"
        )
    return [str(times[0]), str(times[times.size - n_val - 1])]


def hires_options(config: PipelineConfig) -> dict[str, Any]:
    """Options of the fine-grid view of the same synthetic run (the downscaling truth)."""
    if config.source != DEMO_SOURCE:
        raise UsageInputError(
            "downscaling in the pipeline needs the synthetic source (its fine grid is the same run); "
            "use `climate-optics train downscale` for other data"
        )
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
    regression_mode: str = "auto",
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    error: str = "auto",
    feedback_norm: str = "auto",
    opu_config: dict[str, Any] | None = None,
) -> Path:
    """Train the downscaler's regression (``steps``, in ``regression_mode``: ``training.downscale_task.regression_config``)
    and diffusion (``diffusion_steps``, default ``steps``) stages; returns ``run_dir``."""

    config = training_config(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        mode=mode,
        projector=projector,
        error=error,
        feedback_norm=feedback_norm,
        opu_config=opu_config,
    )
    resume = (Path(run_dir) / "regression" / LATEST).exists()
    run_downscale_training(
        store,
        run_dir,
        config,
        stage="both",
        preset=preset,
        resume=resume,
        diffusion_steps=diffusion_steps,
        regression_mode=regression_mode,
    )
    return Path(run_dir)


def downscaler_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The diffusion-stage checkpoint of a ``train_downscaler`` run (what downscaling reads)."""

    path = Path(run_dir) / "diffusion" / LATEST
    if not path.is_file():
        raise UsageInputError(f"{run_dir}: no diffusion-stage checkpoint; train the downscaler first")
    return path
