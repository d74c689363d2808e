"""``climate-optics train forecast|downscale``: train a model on an ingested store.

The training mode is one word: ``--mode backprop|dfa|optical``. ``--resume`` continues a run
directory from its last checkpoint.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from climate_optics.training.rollout_defaults import ROLLOUT_DEPTH, ROLLOUT_TAIL
from optical_backend.kinds import (
    DEFAULT_DIGITAL_KIND,
    FEEDBACK_NORMS,
    REGRESSION_MODES,
    TRAINING_ERRORS,
    TRAINING_MODES,
)

Mode = Enum("Mode", {mode: mode for mode in TRAINING_MODES}, type=str)  # optical_backend.kinds: defined once


ErrorGranularity = Enum("ErrorGranularity", {e: e for e in TRAINING_ERRORS}, type=str)
FeedbackNorm = Enum("FeedbackNorm", {e: e for e in FEEDBACK_NORMS}, type=str)
RegressionMode = Enum("RegressionMode", {m: m for m in REGRESSION_MODES}, type=str)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


DATA = typer.Option(..., "--data", help="Ingested Zarr store (written by `climate-optics ingest`).")
OUT = typer.Option(..., "--out", help="Run directory for checkpoints and metrics.jsonl.")
MODE = typer.Option(Mode("backprop"), "--mode", help="Training mode.")
PROJECTOR = typer.Option(
    DEFAULT_DIGITAL_KIND,
    "--projector",
    help="Digital DFA feedback projector: dense, structured or an installed projector kind.",
)
PRESET = typer.Option("tiny", "--preset", help="Model size preset: tiny, base or 1b.")
MODEL = typer.Option(
    None,
    "--model",
    help="Model architecture from the model registry (default: vit for forecast, diffusion for downscale).",
)
STEPS = typer.Option(1000, "--steps", min=1, help="Optimiser steps.")
BATCH = typer.Option(8, "--batch-size", min=1, help="Samples per step.")
LR = typer.Option(1e-3, "--lr", help="Peak learning rate.")
SEED = typer.Option(0, "--seed", help="Seed of weights, feedback matrix and data order.")
RESUME = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint.")
DEVICE = typer.Option(Device.auto, "--device", help="auto uses CUDA when available.")
WARMUP = typer.Option(None, "--warmup", min=0, help="Warm-up steps (default: 5% of --steps).")
CKPT_EVERY = typer.Option(None, "--checkpoint-every", min=1, help="Steps between checkpoints (default: steps/10).")
VAL_EVERY = typer.Option(None, "--val-every", min=0, help="Steps between validations (default: steps/10).")
OPU_CONFIG = typer.Option(
    None,
    "--opu-config",
    help="YAML file of OPUConfig fields for --mode optical (default: the simulated default device).",
)
ERROR = typer.Option(
    ErrorGranularity.auto,
    "--error",
    help="DFA error granularity: auto (the model's choice: per token, i.e. per patch, for the ViTs), sample or token.",
)

FEEDBACK_NORM = typer.Option(
    FeedbackNorm.auto,
    "--feedback-norm",
    help="DFA: pass each signal back through the model's final norm: auto (on where the model names one: "
    "the ViT forecaster, the UNet downscaler), on, off, or the study's variants vjp and last.",
)

BACKPROP_BLOCKS = typer.Option(
    0,
    "--backprop-blocks",
    min=0,
    help="DFA hybrid: train the last N blocks by back-propagation with the output layer, DFA below them "
    "(0: DFA for every block).",
)


def _opu_fields(path: Optional[Path], mode: Mode) -> dict[str, Any] | None:
    """The OPUConfig fields of ``--opu-config`` (validated; errors name the file and the field)."""
    if path is None:
        return None
    from climate_optics.errors import UsageInputError
    from optical_backend.opu import OPUConfig

    if mode is not Mode.optical:
        raise UsageInputError(f"--opu-config applies to --mode optical, not --mode {mode.value}")
    return OPUConfig.from_yaml(path).to_dict()


def _granularity(checkpoint: Path | None, config: Any) -> str:
    """The DFA error granularity the run used: its engine's, as the checkpoint records it (``config.error``
    resolves "auto" to the model's choice there); the tensors are mapped, not read."""
    if checkpoint is None:
        return config.error
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    return str(state.get("engine", {}).get("error", config.error))


def _summary(result: Any, config: Any) -> str:
    """One JSON line: steps, loss, scores, throughput and digital wall time; for DFA runs the error
    granularity and the projection's wall time, for optical runs the simulated device time and energy."""
    out = {
        "steps": result.steps,
        "final_loss": result.final_loss,
        "val": result.val,
        "samples_per_s": round(result.samples_per_s, 2),
        "wall_s": round(result.wall_time_s, 3),
        "checkpoint": str(result.checkpoint),
    }
    stats = result.engine_stats
    if config.mode != "backprop":
        out["error"] = _granularity(result.checkpoint, config)
        out["projection_wall_s"] = round(stats.get("projector_wall_time_s", 0.0), 3)
    if config.mode == "optical":
        out["device_time_s"] = round(stats.get("projector_device_time_s", 0.0), 3)  # simulated OPU
        out["energy_j"] = round(stats.get("projector_energy_j", 0.0), 3)
        out["frames"] = int(stats.get("projector_frames", 0))
    return json.dumps(out)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Train the forecaster or the downscaler (backprop, DFA or optical DFA).", no_args_is_help=True
    )

    @group.command("forecast")
    def forecast_command(
        data: Path = DATA,
        out: Path = OUT,
        mode: Mode = MODE,
        projector: str = PROJECTOR,
        preset: str = PRESET,
        model: Optional[str] = MODEL,
        steps: int = STEPS,
        batch_size: int = BATCH,
        lr: float = LR,
        seed: int = SEED,
        resume: bool = RESUME,
        device: Device = DEVICE,
        warmup: Optional[int] = WARMUP,
        checkpoint_every: Optional[int] = CKPT_EVERY,
        val_every: Optional[int] = VAL_EVERY,
        error: ErrorGranularity = ERROR,
        feedback_norm: FeedbackNorm = FEEDBACK_NORM,
        backprop_blocks: int = BACKPROP_BLOCKS,
        opu_config: Optional[Path] = OPU_CONFIG,
        lead_steps: str = typer.Option(
            "1", "--lead-steps", help="Comma-separated leads (in 6 h steps) to train on, e.g. 1,2,4."
        ),
        init: Optional[Path] = typer.Option(
            None, "--init", help="Forecaster run or checkpoint whose weights start this run (fine-tuning)."
        ),
        rollout: Optional[int] = typer.Option(
            None,
            "--rollout",
            min=1,
            help=f"Rollout depth N: the last --rollout-tail of the steps train the k-th step of the model's own "
            f"rollout, k drawn in 1..N, for skill at longer leads (default {ROLLOUT_DEPTH}; 1: one-step training).",
        ),
        rollout_tail: Optional[float] = typer.Option(
            None,
            "--rollout-tail",
            min=0.0,
            max=1.0,
            help=f"Fraction of the steps trained on rollouts (default {ROLLOUT_TAIL}; 1 to fine-tune a run "
            "given by --init on rollouts only, e.g. --rollout-tail 1 --steps 60 --lr 3e-4).",
        ),
    ) -> None:
        """Train the ViT forecaster on (state, next state) pairs of an ingested store."""
        from climate_optics.errors import UsageInputError
        from climate_optics.training.forecast_task import ForecastTask
        from climate_optics.training.loop import holding_run_dir, train
        from climate_optics.training.rollout_task import with_rollout_tail
        from climate_optics.training.task import TrainConfig

        try:
            leads = tuple(int(x) for x in lead_steps.split(","))
        except ValueError:
            raise UsageInputError(f"--lead-steps: {lead_steps!r} is not a comma-separated list of integers") from None
        config = TrainConfig.for_steps(
            steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            mode=mode.value,
            projector=projector,
            device=device.value,
            warmup=warmup,
            checkpoint_every=checkpoint_every,
            val_every=val_every,
            error=error.value,
            feedback_norm=feedback_norm.value,
            backprop_blocks=backprop_blocks,
            opu_config=_opu_fields(opu_config, mode),
        )
        if not data.exists():
            raise UsageInputError(f"--data: store not found: {data}")
        if leads != (1,) and (rollout or 1) > 1:
            raise UsageInputError("--rollout trains 6-hour steps of a rollout; it cannot be combined with --lead-steps")
        depth = (ROLLOUT_DEPTH if rollout is None else rollout) if leads == (1,) else 1
        if init is not None and not init.exists():
            raise UsageInputError(f"--init: run or checkpoint not found: {init}")
        with holding_run_dir(out):  # one writer per run directory, before the data are read
            task = ForecastTask(data, preset=preset, architecture=model, seed=seed, train_lead_steps=leads)
            if init is not None and not resume:
                from climate_optics.workflow import load_weights

                load_weights(task.model, init)
            tail = ROLLOUT_TAIL if rollout_tail is None else rollout_tail
            task = with_rollout_tail(task, steps, depth, tail, seed=seed)
            result = train(task, config, out, resume=resume)
        if result.rank == 0:  # under torchrun, one summary line for the whole run
            print(_summary(result, config))

    @group.command("downscale")
    def downscale_command(
        data: Path = DATA,
        out: Path = OUT,
        mode: Mode = MODE,
        projector: str = PROJECTOR,
        preset: str = PRESET,
        model: Optional[str] = MODEL,
        steps: int = STEPS,
        batch_size: int = BATCH,
        lr: float = LR,
        seed: int = SEED,
        resume: bool = RESUME,
        device: Device = DEVICE,
        warmup: Optional[int] = WARMUP,
        checkpoint_every: Optional[int] = CKPT_EVERY,
        val_every: Optional[int] = VAL_EVERY,
        error: ErrorGranularity = ERROR,
        feedback_norm: FeedbackNorm = FEEDBACK_NORM,
        backprop_blocks: int = BACKPROP_BLOCKS,
        opu_config: Optional[Path] = OPU_CONFIG,
        stage: str = typer.Option("both", "--stage", help="regression, diffusion or both."),
        init: Optional[Path] = typer.Option(None, "--init", help="Regression run to start the diffusion stage from."),
        diffusion_steps: Optional[int] = typer.Option(
            None, "--diffusion-steps", min=1, help="Steps of the diffusion stage of --stage both (default: --steps)."
        ),
        regression_mode: RegressionMode = typer.Option(
            RegressionMode("auto"),
            "--regression-mode",
            help="Mode of the regression stage of --stage both: auto (back-propagation under --mode dfa|optical, "
            "whose feedback does not train its features; the diffusion stage keeps --mode), backprop, dfa or optical.",
        ),
    ) -> None:
        """Train the diffusion downscaler (regression mean + EDM residual) on a fine-grid store."""
        from climate_optics.errors import UsageInputError
        from climate_optics.training.downscale_task import regression_config, run_downscale_training
        from climate_optics.training.task import TrainConfig

        config = TrainConfig.for_steps(
            steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            mode=mode.value,
            projector=projector,
            device=device.value,
            warmup=warmup,
            checkpoint_every=checkpoint_every,
            val_every=val_every,
            error=error.value,
            feedback_norm=feedback_norm.value,
            backprop_blocks=backprop_blocks,
            opu_config=_opu_fields(opu_config, mode),
        )
        if not data.exists():
            raise UsageInputError(f"--data: store not found: {data}")
        if diffusion_steps is not None and stage != "both":
            raise UsageInputError("--diffusion-steps applies to --stage both; for one stage use --steps")
        results = run_downscale_training(
            data,
            out,
            config,
            stage=stage,
            preset=preset,
            init=init,
            resume=resume,
            diffusion_steps=diffusion_steps,
            architecture=model,
            regression_mode=regression_mode.value,
        )
        stage_configs = {"regression": regression_config(config, regression_mode.value)} if stage == "both" else {}
        for name, result in results.items():
            if result.rank == 0:
                stage_config = stage_configs.get(name, config)
                label = name if stage_config.mode == config.mode else f"{name} (by {stage_config.mode})"
                print(f"{label}: {_summary(result, stage_config)}")

    app.add_typer(group, name="train")
