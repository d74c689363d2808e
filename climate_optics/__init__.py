"""climate_optics: ViT forecaster, diffusion downscaler, training, inference, skill scores and CLI."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["metrics", "evaluate", "__version__"]

_LAZY_MODULES = {"metrics": "climate_optics.metrics"}
_LAZY_ATTRS = {"evaluate": "climate_optics.evaluation.evaluate_datasets"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])
    if name in _LAZY_ATTRS:
        return getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
    raise AttributeError(f"module 'climate_optics' has no attribute {name!r}")
