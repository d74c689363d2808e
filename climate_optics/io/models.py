"""Rebuilding trained models from their checkpoints (for inference, evaluation, reports and warm starts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from climate_optics.errors import UsageInputError
from climate_optics.io.checkpoints import LATEST, load_checkpoint
from climate_optics.models import architectures
from climate_optics.models.protocols import DownscaleModel, ForecastModel


def load_forecaster(
    checkpoint: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> tuple[ForecastModel, dict[str, Any]]:
    """The forecaster of a checkpoint (its architecture from the model registry, statistics included)
    and the checkpoint dict."""
    state = load_checkpoint(checkpoint, map_location=device)
    if state["task"].get("kind") != "forecast":
        raise UsageInputError(f"{checkpoint}: not a forecaster checkpoint (kind {state['task'].get('kind')!r})")
    arch = architectures.get(state["task"].get("architecture"), architectures.FORECASTER)
    model = arch.build(arch.config_from_dict(state["task"]["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state


def load_downscaler_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A downscaler checkpoint from a file or a run directory (``diffusion/`` preferred)."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "diffusion" / LATEST, path / LATEST, path / "regression" / LATEST):
            if candidate.exists():
                path = candidate
                break
        else:
            raise UsageInputError(f"{path}: no downscaler checkpoint ({LATEST}) in this run directory")
    if not path.exists():
        raise UsageInputError(f"{path}: checkpoint does not exist")
    state = load_checkpoint(path)
    if state.get("task", {}).get("kind") != "downscaler":
        raise UsageInputError(f"{path}: not a downscaler checkpoint")
    state["path"] = str(path)
    return state


def downscaler_from_checkpoint(state: dict[str, Any]) -> DownscaleModel:
    """Rebuild the downscaler of a checkpoint (weights and residual std included)."""
    arch = architectures.get(state["task"].get("architecture"), architectures.DOWNSCALER)
    model = arch.build(arch.config_from_dict(state["task"]["config"]))
    model.load_state_dict(state["model"])
    return model
