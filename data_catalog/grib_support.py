"""Importing cfgrib/ecCodes safely next to pyproj (cartopy).

The ecCodes binary wheel bundles its own libcurl and libcrypto. When pyproj, which bundles
different builds of them, is loaded *after* ecCodes in the same process, the process aborts at
exit ("double free or corruption"). Loading pyproj first avoids the clash, so every import of
cfgrib or ecCodes in this project goes through these functions.
"""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType


def _preload_pyproj() -> None:
    with contextlib.suppress(ImportError):
        importlib.import_module("pyproj")


def import_cfgrib() -> ModuleType:
    """``import cfgrib`` (raises ImportError when the GRIB extra is not installed)."""
    _preload_pyproj()
    return importlib.import_module("cfgrib")


def import_eccodes() -> ModuleType:
    """``import eccodes`` (raises ImportError when the GRIB extra is not installed)."""
    _preload_pyproj()
    return importlib.import_module("eccodes")
