"""optical_backend: random projections (dense, structured, optical OPU simulator) and DFA training.

Depends on torch and numpy only. Public names are resolved lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["make_projector", "Projector", "ProjectorStats", "OPUConfig", "DFA", "OpticalConfigError", "NonFiniteError"]

_LAZY = {
    "make_projector": "optical_backend.projector",
    "Projector": "optical_backend.projector",
    "ProjectorStats": "optical_backend.projector",
    "OPUConfig": "optical_backend.opu",
    "DFA": "optical_backend.dfa",
    "OpticalConfigError": "optical_backend.errors",
    "NonFiniteError": "optical_backend.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optical_backend' has no attribute {name!r}")
