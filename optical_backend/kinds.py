"""Training modes, projector kinds and DFA's settings, defined once; DFA, the training config and the CLI read them here.

Projector kinds are the built-in ones, those registered at run time (``register_projector``)
and those installed under the ``optical_backend.projectors`` entry point group (a class taking
``(n_in, n_out, *, seed, device, **config)``, see ``projector.Projector``). This module imports
neither torch nor any projector, so listing the names costs nothing.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from optical_backend.errors import OpticalConfigError

TRAINING_MODES = ("backprop", "dfa", "optical")  # back-propagation, digital DFA, DFA on the simulated OPU
OPTICAL_KIND = "optical"  # the projector of the optical mode (the OPU); digital DFA uses the others
DEFAULT_DIGITAL_KIND = "structured"
MEMORY_MODES = ("standard", "lean")  # DFA's memory modes (optical_backend.lean)
ERROR_GRANULARITY = ("sample", "token", "pixel")  # what one projected error covers
FEEDBACK_LAYOUTS = ("split", "shared")  # one projection slice per feedback point, or one shared by all
TRAINING_ERRORS = ("auto", "sample", "token")  # a training run's choice: pixel errors are the UNet's own, through auto
# How DFA signals pass back through a model's final norm (climate_optics TrainConfig.feedback_norm):
# auto (on where the model names one), on, off, and the study's variants vjp and last.
FEEDBACK_NORMS = ("auto", "on", "off", "vjp", "last")
# The mode of the downscaler's regression stage (climate_optics regression_config): auto (back-propagation
# under the DFA modes) or a training mode.
REGRESSION_MODES = ("auto",) + TRAINING_MODES
ENTRY_POINT_GROUP = "optical_backend.projectors"

_BUILTINS: dict[str, str] = {
    "dense": "optical_backend.projector:DenseProjector",
    "structured": "optical_backend.structured:StructuredProjector",
    OPTICAL_KIND: "optical_backend.optical:OpticalProjector",
}
_REGISTERED: dict[str, Any] = {}  # kind -> class or "module:Class", added at run time


def register_projector(kind: str, target: Any) -> None:
    """Make ``kind`` a projector kind for this process: ``target`` is a class or ``"module:Class"``."""
    if not isinstance(kind, str) or not kind or kind in _BUILTINS:
        raise OpticalConfigError(f"cannot register projector kind {kind!r}: empty or a built-in kind")
    _REGISTERED[kind] = target


def projector_kinds() -> list[str]:
    """Every projector kind: built-in, registered at run time and installed through the entry point."""
    names = set(_BUILTINS) | set(_REGISTERED)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def digital_projector_kinds() -> list[str]:
    """The kinds digital DFA may use (every kind but the OPU simulator, which is ``mode="optical"``)."""
    return [k for k in projector_kinds() if k != OPTICAL_KIND]


def resolve_projector(kind: str) -> type:
    """The projector class of ``kind``; an unknown kind is an error listing the valid ones."""
    target = _BUILTINS.get(kind) or _REGISTERED.get(kind)
    if target is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == kind:
                return ep.load()
        raise OpticalConfigError(f"unknown projector kind {kind!r}; valid kinds: {', '.join(projector_kinds())}")
    if not isinstance(target, str):
        return target
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
