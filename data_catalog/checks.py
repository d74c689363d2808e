"""Cheap value checks on a canonical dataset at the point where data enters.

All-NaN fields: a variable (or one of its levels) can be entirely NaN only if its first and
last time steps are; those two slices are read (a few chunks), and only when both are
entirely NaN is the full, dask-reduced confirmation run. A field that is NaN only in the
middle of the record is not detected here (ingest sees it when computing statistics).

Plausibility: the same two time steps, after unit conversion, must lie within the physical
range of ``data_catalog.schema.plausible_range``; a value outside is refused with the range
found and the likely cause, found by re-reading the values in the other units the reader
knows for that variable (Kelvin labelled degC, hPa labelled Pa, ...).
"""

from __future__ import annotations

import dask
import numpy as np
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.schema import LEVEL, TIME, VARIABLES, plausible_range
from data_catalog.units import CONVERSIONS

DISPLAY = {"k": "K", "degc": "degC", "pa": "Pa", "hpa": "hPa", "kpa": "kPa"}


def _ends(da: xr.DataArray) -> xr.DataArray:
    """The first and last time steps (the whole field when static)."""
    return da.isel({TIME: [0, -1]}) if TIME in da.dims else da


def check_not_all_nan(ds: xr.Dataset, source: str) -> None:
    """Raise DataInputError naming the variable (and level) whose values are all NaN."""
    samples = {}
    for name, da in ds.data_vars.items():
        sample = _ends(da)
        samples[name] = sample.isnull().all([d for d in sample.dims if d != LEVEL])
    computed = dict(zip(samples, dask.compute(*samples.values())))
    suspects = [name for name, flags in computed.items() if bool(np.any(flags.values))]
    for name in suspects:
        da = ds[name]
        empty = da.isnull().all([d for d in da.dims if d != LEVEL]).compute()
        if bool(np.any(empty.values)):
            where = ""
            if LEVEL in empty.dims:
                levels = empty[LEVEL].values[empty.values]
                where = f" at level(s) {', '.join(str(x) for x in levels)} hPa"
            raise DataInputError(
                f"all values are NaN{where}; expected a field with data", source=source, variable=str(name)
            )


def check_plausible(ds: xr.Dataset, source: str) -> None:
    """Raise DataInputError naming the variable whose first or last time step leaves its physical range."""
    extremes = {}
    for name, da in ds.data_vars.items():
        if str(name) not in VARIABLES:
            continue
        sample = _ends(da)
        keep = [d for d in sample.dims if d != LEVEL]
        extremes[name] = (sample.min(keep, skipna=True), sample.max(keep, skipna=True))
    computed = dict(zip(extremes, dask.compute(*extremes.values())))
    for name, (low, high) in computed.items():
        levels = low[LEVEL].values if LEVEL in low.dims else [None]
        lows, highs = np.atleast_1d(low.values), np.atleast_1d(high.values)
        ranges = [plausible_range(str(name), level) for level in levels]
        if any(r is None for r in ranges):
            continue
        outside = [i for i, (lo, hi) in enumerate(ranges) if lows[i] < lo or highs[i] > hi]  # NaN: no verdict
        if outside:
            i = outside[0]
            at = "" if levels[i] is None else f" at {levels[i]:g} hPa"
            units = VARIABLES[str(name)].units
            raise DataInputError(
                f"values {lows[i]:.6g}..{highs[i]:.6g} {units}{at} outside the plausible range {ranges[i][0]:.6g}.."
                f"{ranges[i][1]:.6g} {units}; likely cause: {likely_cause(units, lows, highs, ranges)}",
                source=source,
                variable=str(name),
            )


def likely_cause(units: str, lows: np.ndarray, highs: np.ndarray, ranges: list[tuple[float, float]]) -> str:
    """Which mislabelled unit explains the values: native units ``a`` declared, ``b`` meant."""
    groups: dict[tuple[float, float], str] = {}
    for spelling, factors in CONVERSIONS.get(units, {}).items():
        groups.setdefault(factors, DISPLAY.get(spelling, spelling))
    lo_limit, hi_limit = np.array([r[0] for r in ranges]), np.array([r[1] for r in ranges])
    for (scale_a, offset_a), declared in groups.items():
        for (scale_b, offset_b), meant in groups.items():
            if (scale_a, offset_a) == (scale_b, offset_b):
                continue
            fixed = [(x - offset_a) / scale_a * scale_b + offset_b for x in (lows, highs)]
            if np.all(fixed[0] >= lo_limit) and np.all(fixed[1] <= hi_limit):
                return f"the values look like {meant} labelled as {declared} (a mislabelled units attribute)"
    return "wrong data, a units attribute the reader does not know, or a missing scale_factor/add_offset"
