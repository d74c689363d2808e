"""The embedded synthetic reanalysis: an equivalent-barotropic spectral model on the sphere.

``open_synthetic(options, cache_dir=None)`` generates the record on first use into a cache
directory as a canonical Zarr store (2.8125 degree native grid; 5.625 degree as a
conservatively coarsened view; 1.40625 degree as a separate high-resolution run) and opens
it lazily. See ``model`` (dynamics), ``diagnostics`` (output variables), ``sht`` (the
spherical-harmonic transform), ``geography`` (idealised continents) and ``config``.
Heavy modules load on first use so that ``import data_catalog.synthetic`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "open_synthetic",
    "SyntheticConfig",
    "generate",
    "config_from_options",
    "store_path",
    "ensure_store",
    "run_model",
]

_LAZY = {
    "open_synthetic": "data_catalog.synthetic.cache",
    "config_from_options": "data_catalog.synthetic.cache",
    "store_path": "data_catalog.synthetic.cache",
    "ensure_store": "data_catalog.synthetic.cache",
    "SyntheticConfig": "data_catalog.synthetic.config",
    "generate": "data_catalog.synthetic.writer",
    "run_model": "data_catalog.synthetic.writer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'data_catalog.synthetic' has no attribute {name!r}")
