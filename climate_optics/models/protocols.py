"""What training, inference and the pipeline need from a model: the forecaster and downscaler protocols.

A new model implements one of these (``isinstance`` checks them at run time) and is listed in
``climate_optics.models.architectures``; it is then trained by ``climate-optics train ... --model
NAME`` and loaded from its checkpoints by every command that reads one.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class ModelConfig(Protocol):
    """A model's settings: channels, JSON-able in checkpoints."""

    channels: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class ForecastModel(Protocol):
    """A forecaster of normalised tendencies on a global grid (``climate_optics.models.forecaster``).

    ``config`` has ``channels``, ``static_channels``, ``grid`` (H, W), ``step_hours``, ``history``
    and ``train_lead_steps``. ``forward(x, lead_hours, static)`` maps the ``inputs`` (B, C * history,
    H, W) to the normalised tendency (B, C, H, W) ``target`` holds; ``rollout`` forecasts in
    physical units.
    """

    config: Any

    def set_statistics(
        self, mean: Any, std: Any, diff_std: Any, static_mean: Any = None, static_std: Any = None
    ) -> None: ...

    def inputs(self, state: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor: ...

    def normalise_static(self, static: torch.Tensor | None) -> torch.Tensor | None: ...

    def target(self, state: torch.Tensor, future: torch.Tensor, lead_hours: torch.Tensor) -> torch.Tensor: ...

    def tendency_scale(self, lead_hours: torch.Tensor) -> torch.Tensor: ...

    def rollout(
        self,
        state: torch.Tensor,
        lead_hours: list[int],
        static: torch.Tensor | None = None,
        *,
        direct: bool = False,
        previous: torch.Tensor | None = None,
    ) -> list[torch.Tensor]: ...

    def feedback_points(self) -> list[str]: ...

    def feedback_error(self) -> tuple[str | None, str]: ...


@runtime_checkable
class DownscaleModel(Protocol):
    """A two-stage generative downscaler (``climate_optics.models.downscaler``): a regression mean
    and a denoiser of the residual, trained one stage at a time."""

    config: Any

    def set_stage(self, stage: str) -> Any: ...

    def regress(self, cond: torch.Tensor) -> torch.Tensor: ...

    def denoise(self, r: torch.Tensor, sigma: torch.Tensor, cond_full: torch.Tensor) -> torch.Tensor: ...

    def feedback_points(self) -> list[str]: ...

    def feedback_error(self) -> tuple[str | None, str]: ...
