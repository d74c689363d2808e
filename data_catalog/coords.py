"""Coordinate normalisation: names, orientation and units of the canonical coordinates.

Latitude ascending (-90..90), longitude 0..360 (rolled, not re-sorted, so dask chunks stay
contiguous), pressure levels in hPa ascending, ``valid_time`` as ``time``, ensemble
``number`` as ``realization``; CF bounds variables and auxiliary coordinates dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.schema import DIM_ORDER, LATITUDE, LEVEL, LONGITUDE, REALIZATION, TIME
from data_catalog.units import level_factor

SPELLINGS: dict[str, str] = {
    "lat": LATITUDE,
    "latitude": LATITUDE,
    "nav_lat": LATITUDE,
    "lon": LONGITUDE,
    "longitude": LONGITUDE,
    "nav_lon": LONGITUDE,
    "level": LEVEL,
    "lev": LEVEL,
    "plev": LEVEL,
    "pressure_level": LEVEL,
    "isobaricinhpa": LEVEL,
    "isobaricinpa": LEVEL,
    "valid_time": TIME,
    "time": TIME,
    "number": REALIZATION,
    "member": REALIZATION,
    "ensemble_member": REALIZATION,
    "realization": REALIZATION,
}

BOUNDS_DIMS = ("nbnds", "bnds", "nv", "bounds", "nb2")
REGULAR_RTOL = 0.01  # spacing may vary by 1 % (accepts Gaussian latitudes, rejects gaps)


def rename_coordinates(ds: xr.Dataset, source: str) -> xr.Dataset:
    """Rename the known spellings to canonical names; ``valid_time`` wins over ``time``."""
    if "valid_time" in ds.variables and "time" in ds.variables:
        # cfgrib: time = reference time, valid_time = time + step. Use the valid time.
        if ds["time"].ndim and ds["valid_time"].dims == ds["time"].dims:
            ds = ds.drop_vars("valid_time").assign_coords(time=ds["valid_time"].values)
        elif ds["valid_time"].ndim == 1 and ds["valid_time"].dims[0] in ds.dims:
            ds = ds.swap_dims({ds["valid_time"].dims[0]: "valid_time"}).drop_vars("time")
        else:
            ds = ds.drop_vars("time")
    if "step" in ds.dims:
        if ds.sizes["step"] != 1:
            raise DataInputError(
                f"forecast steps ({ds.sizes['step']}) found; expected analyses with one valid time each", source=source
            )
        ds = ds.squeeze("step", drop=True)
    names = {}
    for name in ds.variables:
        key = str(name).lower()
        if key in SPELLINGS and SPELLINGS[key] != name:
            target = SPELLINGS[key]
            if target in ds.variables or target in names.values():
                raise DataInputError(f"two coordinates both mean {target!r} ({name!r} and another)", source=source)
            names[name] = target
    return ds.rename(names)


def drop_auxiliary(ds: xr.Dataset) -> xr.Dataset:
    """Drop CF bounds variables, their dimensions, and every non-dimension coordinate."""
    bounds = {ds[v].attrs.get("bounds") for v in ds.variables} - {None}
    bounds |= {v for v in ds.variables if str(v).endswith(("_bnds", "_bounds"))}
    bounds |= {v for v in ds.variables if any(d in BOUNDS_DIMS for d in ds[v].dims)}
    ds = ds.drop_vars([b for b in bounds if b in ds.variables])
    aux = [c for c in ds.coords if c not in ds.dims]
    return ds.drop_vars(aux)


def decode_time(ds: xr.Dataset, source: str) -> xr.Dataset:
    """Make ``time`` a datetime64[ns] index (cftime standard calendars are converted)."""
    if TIME not in ds.dims:
        return ds
    index = ds.indexes[TIME]
    if isinstance(index, pd.DatetimeIndex):
        values = index.values.astype("datetime64[ns]")
    elif isinstance(index, xr.CFTimeIndex):
        try:
            values = index.to_datetimeindex(time_unit="ns").values
        except (ValueError, TypeError) as exc:
            raise DataInputError(
                f"time in calendar {index.calendar!r} cannot be converted to the standard calendar ({exc})",
                source=source,
                variable=TIME,
            ) from None
    else:
        raise DataInputError(
            f"time values {index[:3].tolist()} could not be decoded; expected CF 'units: <unit> since <date>'",
            source=source,
            variable=TIME,
        )
    return ds.assign_coords({TIME: values})


def check_time(ds: xr.Dataset, source: str) -> None:
    """Times must be unique and increasing."""
    if TIME not in ds.dims:
        return
    index = ds.indexes[TIME]
    if not index.is_unique:
        dup = index[index.duplicated()][0]
        raise DataInputError(f"duplicated time {dup}; expected unique times", source=source, variable=TIME)
    if not index.is_monotonic_increasing:
        bad = int(np.argmax(np.diff(index.values).astype("int64") < 0)) + 1
        raise DataInputError(
            f"time not increasing at {index[bad]} (after {index[bad - 1]}); expected increasing times",
            source=source,
            variable=TIME,
        )


def _check_regular(values: np.ndarray, name: str, source: str) -> None:
    if values.size < 2:
        return
    steps = np.diff(values)
    if np.any(steps == 0) or not (np.all(steps > 0) or np.all(steps < 0)):
        raise DataInputError(f"{name} is not strictly monotonic; expected a regular grid", source=source, variable=name)
    median = np.median(np.abs(steps))
    worst = np.max(np.abs(np.abs(steps) - median))
    if worst > REGULAR_RTOL * median + 1e-9:
        raise DataInputError(
            f"irregular {name} spacing (steps from {np.abs(steps).min():g} to"
            f" {np.abs(steps).max():g} degrees); expected a regular grid",
            source=source,
            variable=name,
        )


def orient(ds: xr.Dataset, source: str) -> xr.Dataset:
    """Latitude ascending, longitude rolled into 0..360, levels in hPa ascending."""
    for name in (LATITUDE, LONGITUDE):
        if name not in ds.dims:
            raise DataInputError(
                f"no {name} dimension (dimensions: {', '.join(map(str, ds.dims))}); expected a latitude-longitude grid",
                source=source,
            )
        _check_regular(ds[name].values.astype("float64"), name, source)
    lat = ds[LATITUDE].values
    if lat.min() < -90.001 or lat.max() > 90.001:
        raise DataInputError(
            f"latitude outside -90..90 ({lat.min():g}..{lat.max():g})", source=source, variable=LATITUDE
        )
    if lat[0] > lat[-1]:
        ds = ds.isel({LATITUDE: slice(None, None, -1)})
    ds = _roll_longitude(ds, source)
    if LEVEL in ds.dims:
        ds = _levels_in_hpa(ds)
    return ds.assign_coords(
        {
            LATITUDE: ds[LATITUDE].values.astype("float64"),
            LONGITUDE: ds[LONGITUDE].values.astype("float64"),
        }
    )


def _roll_longitude(ds: xr.Dataset, source: str) -> xr.Dataset:
    lon = ds[LONGITUDE].values.astype("float64")
    if lon[0] > lon[-1]:
        ds = ds.isel({LONGITUDE: slice(None, None, -1)})
        lon = lon[::-1]
    wrapped = np.mod(lon, 360.0)
    if np.unique(np.round(wrapped, 6)).size != wrapped.size:
        raise DataInputError(
            "longitude covers the same meridian twice (e.g. both 0 and 360); expected each longitude once",
            source=source,
            variable=LONGITUDE,
        )
    shift = int(np.argmin(wrapped))
    if shift:
        ds = ds.roll({LONGITUDE: -shift}, roll_coords=True)
        wrapped = np.roll(wrapped, -shift)
    return ds.assign_coords({LONGITUDE: wrapped})


def _levels_in_hpa(ds: xr.Dataset) -> xr.Dataset:
    level = ds[LEVEL]
    factor = level_factor(level.attrs.get("units"), float(np.max(level.values)))
    values = level.values.astype("float64") * factor
    if np.allclose(values, np.round(values)):
        values = np.round(values).astype("int64")  # WeatherBench 2 stores integer hPa
    ds = ds.assign_coords({LEVEL: values})
    if values.size > 1 and values[0] > values[-1]:
        ds = ds.isel({LEVEL: slice(None, None, -1)})
    return ds


def transpose_canonical(ds: xr.Dataset) -> xr.Dataset:
    """Order every variable's dimensions as in ``schema.DIM_ORDER``."""
    out = {}
    for name, da in ds.data_vars.items():
        order = [d for d in DIM_ORDER if d in da.dims] + [d for d in da.dims if d not in DIM_ORDER]
        out[name] = da.transpose(*order)
    return ds.assign(out)
