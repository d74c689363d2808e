"""Reference forecasts scored alongside every model: persistence and climatology.

Alignment is by valid time = initialisation time + lead time. For initialisation ``t`` and
lead ``L``, persistence forecasts the truth at ``t`` and is verified, like every forecast,
against the truth at ``t + L``. Climatology forecasts the WeatherBench 2 climatology
(``dayofyear``[, ``hour``] dimensions) at ``t + L``. Results carry ``time`` = initialisation
time, so forecast, baselines and truth line up element by element.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.schema import LEVEL, PREDICTION_TIMEDELTA, TIME


def valid_times(init_time: Any, lead_time: Any) -> "xr.DataArray":
    """init + lead, broadcast to (time[, prediction_timedelta]) with coordinates init and lead."""

    init = init_time if isinstance(init_time, xr.DataArray) else xr.DataArray(np.asarray(init_time), dims=TIME)
    init = init.assign_coords({TIME: init.values}) if TIME in init.dims else init
    lead = (
        lead_time
        if isinstance(lead_time, xr.DataArray)
        else xr.DataArray(np.asarray(lead_time, dtype="timedelta64[ns]"))
    )
    if lead.ndim == 1 and lead.dims[0] != PREDICTION_TIMEDELTA:
        lead = lead.rename({lead.dims[0]: PREDICTION_TIMEDELTA})
    if lead.ndim == 1:
        lead = lead.assign_coords({PREDICTION_TIMEDELTA: lead.values})
    return init + lead


def require_times(truth: Any, times: Any, *, what: str = "valid time") -> None:
    """An error naming the first of ``times`` (any shape) that ``truth`` lacks; nothing is read."""
    available = truth.indexes[TIME]
    wanted = np.asarray(getattr(times, "values", times)).ravel()
    missing = wanted[~np.isin(wanted, available.values)]
    if missing.size:
        raise DataInputError(
            f"truth has no data at {what} {np.datetime_as_string(missing[0], unit='m')} "
            f"({missing.size} of {wanted.size} missing; truth covers {available.min()}..{available.max()})"
        )


def truth_at(truth: Any, times: "xr.DataArray", *, what: str = "valid time") -> Any:
    """``truth`` at ``times`` (dims of ``times`` replace ``time``); an error names the first missing time."""
    require_times(truth, times, what=what)
    out = truth.sel({TIME: times.drop_vars(list(times.coords)).rename("times")})
    return out.assign_coords({d: times[d] for d in times.dims if d in times.coords})


def verifying_truth(truth: Any, init_time: Any, lead_time: Any) -> Any:
    """The truth each forecast is verified against: truth at init + lead, indexed by init (and lead)."""
    return truth_at(truth, valid_times(init_time, lead_time), what="valid time")


def persistence(truth: Any, init_time: Any, lead_time: Any) -> Any:
    """Persistence forecast: for init ``t`` and every lead, the truth at ``t``."""
    times = valid_times(init_time, lead_time)
    at_init = truth_at(truth, times[TIME], what="initialisation time")
    return at_init.broadcast_like(times) if PREDICTION_TIMEDELTA in times.dims else at_init


def climatology_forecast(climatology: Any, init_time: Any, lead_time: Any, like: Any = None) -> Any:
    """Climatology forecast at init + lead; ``like`` (optional) picks variables and levels."""
    return climatology_at(climatology, valid_times(init_time, lead_time), like=like)


def climatology_like(climatology: Any, forecast: "xr.DataArray") -> "xr.DataArray":
    """The climatology of ``forecast``'s variable at its valid times (for ACC).

    Valid times come from a ``valid_time`` coordinate, else ``time`` (+ ``prediction_timedelta``).
    A climatology without ``dayofyear`` is taken as already aligned.
    """
    clim = _variable(climatology, forecast.name)
    if "dayofyear" not in clim.dims:
        return _levels_like(clim, forecast)
    if "valid_time" in forecast.coords:
        times = forecast["valid_time"]
    elif PREDICTION_TIMEDELTA in forecast.coords:
        times = forecast[TIME] + forecast[PREDICTION_TIMEDELTA]
    else:
        times = forecast[TIME]
    return climatology_at(clim, times, like=forecast)


def climatology_at(climatology: Any, times: "xr.DataArray", like: Any = None) -> Any:
    """Select a WeatherBench 2 climatology at ``times`` by day of year and (if present) hour."""

    if like is not None and not hasattr(like, "data_vars"):
        climatology = _variable(climatology, like.name)
    elif like is not None:
        climatology = xr.Dataset({v: _variable(climatology, v) for v in like.data_vars})
    if "dayofyear" not in climatology.dims:
        raise DataInputError("climatology has no 'dayofyear' dimension (WeatherBench 2 layout: hour, dayofyear, ...)")
    times = times.drop_vars([c for c in times.coords if c not in times.dims])
    selection = {"dayofyear": times.dt.dayofyear}
    if "hour" in climatology.dims:
        selection["hour"] = times.dt.hour
    for dim, wanted in selection.items():
        have = climatology.indexes[dim]
        absent = np.setdiff1d(np.unique(wanted.values), have.values)
        if absent.size:
            raise DataInputError(
                f"climatology has no {dim} {absent[0]} (has {have.min()}..{have.max()}, {len(have)} values)"
            )
    out = climatology.sel(selection).drop_vars(["dayofyear", "hour"], errors="ignore")
    return _levels_like(out, like) if like is not None else out


def _variable(climatology: Any, name: Any) -> "xr.DataArray":
    if not hasattr(climatology, "data_vars"):
        return climatology
    for key in (name, f"{name}_mean"):
        if key in climatology.data_vars:
            return climatology[key].rename(name)
    raise DataInputError(
        f"climatology has no variable {name!r} (has: {', '.join(map(str, climatology.data_vars)) or 'none'})",
        variable=name,
    )


def _levels_like(clim: Any, like: Any) -> Any:
    if LEVEL not in clim.dims or LEVEL not in getattr(like, "dims", ()):
        return clim
    missing = np.setdiff1d(like[LEVEL].values, clim[LEVEL].values)
    if missing.size:
        raise DataInputError(f"climatology has no level {missing[0]} (has {', '.join(map(str, clim[LEVEL].values))})")
    return clim.sel({LEVEL: like[LEVEL].values})
