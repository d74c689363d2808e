"""data_catalog: reanalysis sources turned into one canonical, lazily loaded xarray layout.

Public names are resolved lazily so that ``import data_catalog`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "open_dataset",
    "list_entries",
    "get_entry",
    "load_catalog",
    "ingest",
    "DataInputError",
    "VARIABLES",
]

_LAZY = {
    "open_dataset": "data_catalog.readers",
    "list_entries": "data_catalog.catalog",
    "get_entry": "data_catalog.catalog",
    "load_catalog": "data_catalog.catalog",
    "ingest": "data_catalog.ingest",
    "DataInputError": "data_catalog.errors",
    "VARIABLES": "data_catalog.schema",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'data_catalog' has no attribute {name!r}")
