"""CF conventions on the stores this project writes: coordinates described, variables named, provenance absolute.

``cf_attributes(ds)`` returns ``ds`` with ``Conventions``, each known coordinate's ``units``,
``standard_name``, ``axis`` and ``long_name`` (time-like coordinates get their units when encoded),
and every canonical variable's ``standard_name``, ``long_name`` and ``units`` from the schema
where they are missing. CF tools (cf_xarray, cf-python, Panoply) then find the axes and
coordinates by their attributes rather than by our names.
"""

from __future__ import annotations

import os
from typing import Any

import xarray as xr

from data_catalog.schema import LATITUDE, LEVEL, LONGITUDE, PREDICTION_TIMEDELTA, REALIZATION, TIME, VARIABLES

CONVENTIONS = "CF-1.10"

COORDINATES: dict[str, dict[str, str]] = {
    TIME: {"standard_name": "time", "axis": "T", "long_name": "time"},
    LATITUDE: {"standard_name": "latitude", "units": "degrees_north", "axis": "Y", "long_name": "latitude"},
    LONGITUDE: {"standard_name": "longitude", "units": "degrees_east", "axis": "X", "long_name": "longitude"},
    LEVEL: {
        "standard_name": "air_pressure",
        "units": "hPa",
        "axis": "Z",
        "positive": "down",
        "long_name": "pressure level",
    },
    REALIZATION: {"standard_name": "realization", "units": "1", "long_name": "ensemble member"},
    PREDICTION_TIMEDELTA: {
        "standard_name": "forecast_period",
        "long_name": "lead time: valid time minus initialisation time",
    },
    "lead_time": {"standard_name": "forecast_period", "long_name": "lead time: valid time minus initialisation time"},
    "hour": {"units": "1", "long_name": "hour of the day (UTC) of the climatology"},
    "dayofyear": {"units": "1", "long_name": "day of the year (1 = 1 January) of the climatology"},
    "statistic": {"long_name": "statistic over time, latitude and longitude"},
    "model": {"long_name": "scored forecast or baseline"},
    "metric": {"long_name": "skill metric (units per metric in each variable's metric_units)"},
    "region": {"long_name": "area the scores are averaged over"},
}
FORECAST_TIME = {"standard_name": "forecast_reference_time", "axis": "T", "long_name": "initialisation time"}
TIME_LIKE = (TIME, PREDICTION_TIMEDELTA, "lead_time")  # units come from the encoding, not the attributes


def cf_attributes(ds: xr.Dataset, *, forecast: bool = False, variables: bool = True) -> xr.Dataset:
    """``ds`` with CF attributes on coordinates and (``variables``) canonical variables;
    ``forecast``: ``time`` is the initialisation time."""
    ds = ds.copy()
    for name, attrs in COORDINATES.items():
        if name not in ds.coords:
            continue
        wanted = FORECAST_TIME if forecast and name == TIME else attrs
        kept = {k: v for k, v in ds[name].attrs.items() if not (name in TIME_LIKE and k == "units")}
        ds[name].attrs = kept | wanted
    for name, da in ds.data_vars.items() if variables else ():
        var = VARIABLES.get(str(name))
        if var is None:
            continue
        described = {"units": var.units, "long_name": var.long_name}
        if var.standard_name:
            described["standard_name"] = var.standard_name
        da.attrs = described | dict(da.attrs)
    ds.attrs["Conventions"] = CONVENTIONS
    return ds


def absolute_source(source: Any) -> str:
    """A path as an absolute path (provenance must not depend on where the command ran); other names unchanged."""
    import glob

    text = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    if "://" in text or not (os.path.exists(text) or glob.has_magic(text) and glob.glob(text)):
        return text
    return os.path.abspath(text)
