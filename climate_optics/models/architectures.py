"""The model registry: every architecture by name, with its role, model class and config class.

Adding a model: write its module (a ``torch.nn.Module`` implementing ``protocols.ForecastModel``
or ``protocols.DownscaleModel``, and a config dataclass with ``from_preset(name, **overrides)``,
``from_dict`` and ``to_dict``), then add one entry to ``ARCHITECTURES`` (or call ``register`` at
run time). Checkpoints record the architecture's name, so forecasting, downscaling, evaluation
and the flows rebuild the right model. (The registry of trained model *versions* is
``climate_optics.registry``.)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from climate_optics.errors import UsageInputError
from climate_optics.models.protocols import DownscaleModel, ForecastModel

FORECASTER, DOWNSCALER = "forecaster", "downscaler"


@dataclass(frozen=True)
class Architecture:
    """One model family: ``model`` and ``config`` are ``"module:Class"`` (imported when used)."""

    name: str
    role: str  # FORECASTER or DOWNSCALER
    model: str
    config: str

    def _load(self, target: str) -> Any:
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)

    def make_config(self, preset: str, **overrides: Any) -> Any:
        """The config of ``preset`` (e.g. ``tiny``), with ``overrides``."""
        return self._load(self.config).from_preset(preset, **overrides)

    def config_from_dict(self, values: dict[str, Any]) -> Any:
        return self._load(self.config).from_dict(values)

    def build(self, config: Any) -> Any:
        """A new (randomly initialised) model of this architecture."""

        model = self._load(self.model)(config)
        protocol = ForecastModel if self.role == FORECASTER else DownscaleModel
        if not isinstance(model, protocol):
            raise UsageInputError(
                f"model architecture {self.name!r}: {type(model).__name__} does not implement {protocol.__name__}"
            )
        return model


ARCHITECTURES: dict[str, Architecture] = {
    "vit": Architecture(
        "vit",
        FORECASTER,
        "climate_optics.models.forecaster:Forecaster",
        "climate_optics.models.forecaster:ForecasterConfig",
    ),
    "diffusion": Architecture(
        "diffusion",
        DOWNSCALER,
        "climate_optics.models.downscaler:Downscaler",
        "climate_optics.models.downscaler:DownscalerConfig",
    ),
}
DEFAULT = {FORECASTER: "vit", DOWNSCALER: "diffusion"}  # also what checkpoints without a name hold


def register(architecture: Architecture) -> None:
    """Add (or replace) an architecture for this process."""
    if architecture.role not in DEFAULT:
        raise UsageInputError(f"model architecture {architecture.name!r}: role must be {' or '.join(DEFAULT)}")
    ARCHITECTURES[architecture.name] = architecture


def names(role: str) -> list[str]:
    return [name for name, arch in ARCHITECTURES.items() if arch.role == role]


def get(name: str | None, role: str) -> Architecture:
    """The architecture ``name`` (None: the role's default); an unknown name lists the valid ones."""
    name = DEFAULT[role] if name is None else name
    arch = ARCHITECTURES.get(name)
    if arch is None or arch.role != role:
        raise UsageInputError(f"unknown {role} model {name!r}; choose one of {', '.join(names(role))}")
    return arch
