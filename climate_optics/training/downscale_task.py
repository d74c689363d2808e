"""The downscaler as a ``TrainTask``: two stages, each trained by the generic loop.

CorrDiff trains in two stages (Mardani et al. 2023, Sec. 3):

1. ``regression``: the conditional-mean network, MSE against the normalised fine truth, each
   channel's error in units of ``correction_std`` (its interpolation error, measured on training
   patches when a new model starts), so that a smooth field whose interpolation error is tiny
   (geopotential) is fitted as closely as one with much sub-grid detail (2 m temperature).
2. ``diffusion``: the EDM denoiser of the residual ``(truth - mean) / residual_std`` with the
   regression network frozen; ``residual_std`` (per channel) is measured on training patches
   when the stage starts and saved in the model.

``climate-optics train downscale --stage regression|diffusion|both`` runs them through
``run_downscale_training``: ``both`` trains ``OUT/regression`` then ``OUT/diffusion`` (each
``--steps`` steps; the regression stage in ``regression_mode``, see ``regression_config``);
``diffusion`` alone needs ``--init OUT/regression`` (a
regression run or checkpoint). The diffusion checkpoint holds both networks and is what
``climate-optics downscale --checkpoint`` reads. Every mode of the loop works
(``backprop | dfa | optical``); the feedback points are the Transformer blocks of the network
the stage trains.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from climate_optics.errors import UsageInputError
from climate_optics.io.channels import store_channels
from climate_optics.io.checkpoints import LATEST
from climate_optics.io.models import downscaler_from_checkpoint, load_downscaler_checkpoint
from climate_optics.io.windows import open_store
from climate_optics.models import architectures
from climate_optics.models.downscaler import Downscaler
from climate_optics.models.edm import edm_loss
from climate_optics.models.protocols import DownscaleModel
from climate_optics.training.downscale_data import DownscaleData
from climate_optics.training.loop import holding_run_dir, seed_everything, train
from climate_optics.training.task import TrainConfig
from optical_backend.kinds import REGRESSION_MODES

STAGES = ("regression", "diffusion")
RESIDUAL_STD_BATCHES = 8  # training batches used to measure the residual std
VAL_SIGMAS = (0.02, 0.2, 1.0, 5.0)  # noise levels of the diffusion validation loss


class DownscaleTask:
    """One stage of downscaler training (implements ``training.task.TrainTask``)."""

    def __init__(self, model: DownscaleModel, data: DownscaleData, stage: str, architecture: str | None = None):
        if stage not in STAGES:
            raise UsageInputError(f"downscale stage must be one of {', '.join(STAGES)}, got {stage!r}")
        self.model = model.set_stage(stage)
        self.architecture = architectures.get(architecture, architectures.DOWNSCALER).name
        self.data = data
        self.stage = stage
        self.feedback_points = model.feedback_points()
        self.feedback_output, self.feedback_error = model.feedback_error()
        self.feedback_norm = model.feedback_norm()

    def batches(
        self, rng: np.random.Generator, batch_size: int, start_step: int = 0, shard: tuple[int, int] = (0, 1)
    ) -> Iterator[dict[str, torch.Tensor]]:
        seed = int(rng.integers(2**31))
        return self.data.batches(seed, batch_size, start_step=start_step, shard=shard)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        cond, target = batch["cond"], batch["target"]  # (B, K, t, t), (B, C, t, t)
        if self.stage == "regression":
            scale = model.correction_std.reshape(1, -1, 1, 1)
            return F.mse_loss(model(cond) / scale, target / scale)
        residual, cond_full = self.residual(model, cond, target)
        return edm_loss(
            model, residual, cond_full, sigma_data=model.config.sigma_data, config=model.config.loss_config()
        )

    @staticmethod
    def residual(model: Downscaler, cond: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-variance residual (B, C, t, t) and the denoiser's conditioning (B, K + C, t, t)."""
        with torch.no_grad():
            mean = model.regress(cond)  # (B, C, t, t)
        std = model.residual_std.reshape(1, -1, 1, 1)
        return (target - mean) / std, torch.cat([cond, mean], dim=1)

    def validate(self, model: torch.nn.Module) -> dict[str, float]:
        batch = {k: v.to(next(model.parameters()).device) for k, v in self.data.validation_batch().items()}
        cond, target = batch["cond"], batch["target"]
        if self.stage == "regression":
            interp = cond[:, : target.shape[1]]
            return {
                "val_mse": float(F.mse_loss(model(cond), target)),
                "val_mse_interpolation": float(F.mse_loss(interp, target)),
            }
        residual, cond_full = self.residual(model, cond, target)
        generator = torch.Generator(device=residual.device).manual_seed(0)
        scores = {}
        for sigma in VAL_SIGMAS:
            s = torch.full((residual.shape[0],), sigma, device=residual.device)
            loss = edm_loss(
                model, residual, cond_full, sigma_data=model.config.sigma_data, generator=generator, sigma=s
            )
            scores[f"val_edm_loss_sigma{sigma:g}"] = float(loss)
        scores["val_edm_loss"] = float(np.mean(list(scores.values())))
        return scores

    def checkpoint_extra(self) -> dict[str, Any]:
        return {
            "kind": "downscaler",
            "architecture": self.architecture,
            "stage": self.stage,
            "config": self.model.config.to_dict(),
            **self.data.checkpoint_extra(),
        }


@torch.no_grad()
def _channel_rms(data: DownscaleData, estimate, *, seed: int, batch_size: int) -> torch.Tensor:
    """Per-channel rms of ``normalised truth - estimate(cond)`` over a few training batches: (C,)."""
    stream = data.batches(seed, batch_size)
    total = torch.zeros(len(data.channels), dtype=torch.float64)
    count = 0
    try:
        for _ in range(RESIDUAL_STD_BATCHES):
            batch = next(stream)
            res = (batch["target"] - estimate(batch["cond"])).double()  # (B, C, t, t)
            total += res.pow(2).sum(dim=(0, 2, 3))
            count += res.shape[0] * res.shape[2] * res.shape[3]
    finally:
        stream.close()
    return (total / count).sqrt().float().clamp_min(1e-6)


def measure_residual_std(model: Downscaler, data: DownscaleData, *, seed: int, batch_size: int = 16) -> torch.Tensor:
    """Per-channel std of ``normalised truth - regression mean`` over a few training batches: (C,)."""
    model.eval()
    return _channel_rms(data, model.regress, seed=seed, batch_size=batch_size)


def measure_correction_std(data: DownscaleData, *, seed: int, batch_size: int = 16) -> torch.Tensor:
    """Per-channel std of ``normalised truth - interpolated coarse fields`` (what the regression corrects): (C,)."""
    n = len(data.channels)
    return _channel_rms(data, lambda cond: cond[:, :n], seed=seed, batch_size=batch_size)


def build_downscale_task(
    data: str | os.PathLike,
    *,
    preset: str = "tiny",
    architecture: str | None = None,
    stage: str = "regression",
    init: str | os.PathLike | None = None,
    channels: list[str] | tuple[str, ...] | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> DownscaleTask:
    """A ``DownscaleTask`` for ``stage`` on the ingested fine-grid store ``data``.

    ``preset`` and ``overrides`` (DownscalerConfig fields) define a new model; ``channels``
    defaults to every time-dependent variable and level in the store. The ``diffusion`` stage
    starts from the regression weights in ``init`` (a checkpoint or run directory) and
    measures the residual std on training patches (seeded by ``seed``).
    """
    if stage not in STAGES:
        raise UsageInputError(f"downscale stage must be one of {', '.join(STAGES)}, got {stage!r}")
    if init is not None:
        state = load_downscaler_checkpoint(init)
        model = downscaler_from_checkpoint(state)
        config, architecture = model.config, state["task"].get("architecture")
    else:
        if stage == "diffusion":
            raise UsageInputError(
                "the diffusion stage needs the trained regression network: pass --init REGRESSION_RUN (or use --stage both)"
            )
        arch = architectures.get(architecture, architectures.DOWNSCALER)
        config = arch.make_config(preset, **(overrides or {}))
        if channels is None and not config.channels:
            channels = tuple(store_channels(open_store(data), schema_order=False))
        if channels is not None:
            config = replace(config, channels=tuple(channels))
        model = arch.build(config)
    datasets = DownscaleData(data, config, val_fraction=val_fraction)
    if stage == "regression" and init is None:
        model.correction_std.copy_(measure_correction_std(datasets, seed=seed + 1))
    if stage == "diffusion":
        model.residual_std.copy_(measure_residual_std(model, datasets, seed=seed + 1))
    return DownscaleTask(model, datasets, stage, architecture)


def scaled_config(config: TrainConfig, steps: int) -> TrainConfig:
    """``config`` for ``steps`` steps, its warm-up and every interval scaled in proportion."""
    if steps < 1:
        raise UsageInputError(f"diffusion steps must be >= 1, got {steps}")
    scale = steps / config.steps

    def interval(n: int) -> int:
        return max(1, round(n * scale))

    return replace(
        config,
        steps=steps,
        warmup=round(config.warmup * scale),
        checkpoint_every=interval(config.checkpoint_every),
        val_every=0 if config.val_every == 0 else interval(config.val_every),
        log_every=interval(config.log_every),
    )


def regression_stage_mode(regression_mode: str = "auto") -> str:
    """The training mode of ``stage="both"``'s regression stage: ``auto`` is back-propagation (``regression_config``)."""
    if regression_mode not in REGRESSION_MODES:
        raise UsageInputError(f"regression mode must be one of {', '.join(REGRESSION_MODES)}, got {regression_mode!r}")
    return "backprop" if regression_mode == "auto" else regression_mode


def regression_config(config: TrainConfig, regression_mode: str = "auto") -> TrainConfig:
    """The config of the regression stage of ``stage="both"``: ``config`` in ``regression_mode``.

    ``auto`` trains the regression mean by back-propagation when the run's mode is DFA or optical
    DFA, whose feedback does not train the default UNet's features (Launay et al. 2019;
    Refinetti et al. 2021): at the benchmark's full budget the DFA-trained regression
    stopped at 0.72 of bilinear interpolation's validation MSE, about what a linear 5x5 map of
    the inputs reaches (0.77), against back-propagation's 0.37, and that mean, not the diffusion
    stage, is where the DFA downscaler lost its CRPS (docs/dfa_training.md). The diffusion
    stage, most of the training, stays in the run's mode. ``dfa`` or ``optical`` trains both
    stages so (the pure DFA downscaler).
    """
    mode = regression_stage_mode(regression_mode)
    if mode == config.mode:
        return config
    return replace(config, mode=mode, backprop_blocks=0 if mode == "backprop" else config.backprop_blocks)


def run_downscale_training(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: TrainConfig,
    *,
    stage: str = "both",
    preset: str = "tiny",
    init: str | os.PathLike | None = None,
    diffusion_steps: int | None = None,
    resume: bool = False,
    regression_mode: str = "auto",
    **task_kwargs: Any,
) -> dict[str, Any]:
    """Train one stage into ``out_dir``, or (``both``) ``out_dir/regression`` then ``out_dir/diffusion``.

    ``regression_mode``: the mode of ``both``'s regression stage (``regression_config``; a stage
    trained alone takes ``config.mode``). ``diffusion_steps`` overrides ``config.steps`` for the diffusion stage of ``both`` (its
    warm-up, checkpoint, validation and log intervals scale with it). Returns ``{stage: TrainResult}``.
    """

    if stage not in STAGES + ("both",):
        raise UsageInputError(f"--stage must be regression, diffusion or both, got {stage!r}")
    if stage != "both" and regression_mode != "auto":
        raise UsageInputError("--regression-mode applies to --stage both; a stage trained alone takes --mode")
    reg_config = regression_config(config, regression_mode)
    out = Path(out_dir)
    with holding_run_dir(out):  # one writer per run directory, before the data are read
        return _train_stages(
            data,
            out,
            config,
            stage=stage,
            preset=preset,
            init=init,
            diffusion_steps=diffusion_steps,
            resume=resume,
            reg_config=reg_config,
            **task_kwargs,
        )


def _train_stages(
    data: str | os.PathLike,
    out: Path,
    config: TrainConfig,
    *,
    stage: str,
    preset: str,
    init: str | os.PathLike | None,
    diffusion_steps: int | None,
    resume: bool,
    reg_config: TrainConfig,
    **task_kwargs: Any,
) -> dict[str, Any]:

    results: dict[str, Any] = {}
    seed_everything(config.seed)  # a new model's initial weights follow the run's seed
    if stage != "both":
        task = build_downscale_task(data, preset=preset, stage=stage, init=init, seed=config.seed, **task_kwargs)
        results[stage] = train(task, config, out, resume=resume)
        return results
    reg_dir, diff_dir = out / "regression", out / "diffusion"

    reg_done = resume and (reg_dir / LATEST).exists() and (diff_dir / LATEST).exists()
    if not reg_done:
        task = build_downscale_task(data, preset=preset, stage="regression", init=init, seed=config.seed, **task_kwargs)
        results["regression"] = train(task, reg_config, reg_dir, resume=resume and (reg_dir / LATEST).exists())
    task_kwargs.pop("channels", None)
    task_kwargs.pop("overrides", None)
    task = build_downscale_task(data, stage="diffusion", init=reg_dir, seed=config.seed, **task_kwargs)
    diff_config = config if diffusion_steps is None else scaled_config(config, diffusion_steps)
    results["diffusion"] = train(task, diff_config, diff_dir, resume=resume and (diff_dir / LATEST).exists())
    return results
