"""Where a variable sits vertically: on a pressure level, or near the surface (2 m, 10 m, sea level).

Levels are never lost: a scalar pressure coordinate (found by name, ``standard_name:
air_pressure``, or ``positive``/``axis: Z`` with pressure units) or a pressure level stated in
a variable's attributes (``level_desc: "500 mbar"``, ``GRIB_typeOfLevel: isobaricInhPa`` with
``GRIB_level``) becomes a length-1 ``level`` dimension. A name that means a pressure-level
variable on levels and a near-surface one without (NCEP ``air``, CF ``air_temperature``) is
read as near-surface only when something says so: a scalar ``height`` coordinate, the
variable's attributes, or the source's file naming (``air.2m``, ``uwnd.10m``, ``hgt.sfc``).
When nothing decides it, the reader stops and names the file and the variable.
"""

from __future__ import annotations

import os
import re

import numpy as np
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.mappings import lookup_pair
from data_catalog.schema import LEVEL, TIME, VARIABLES
from data_catalog.units import LEVEL_TO_HPA, level_factor, normalise

PRESSURE_NAMES = {
    "air_pressure",
    "pressure",
    "pressure_level",
    "plev",
    "level",
    "lev",
    "isobaricinhpa",
    "isobaricinpa",
    "p",
}
HEIGHT_NAMES = {"height", "heightaboveground", "height_above_ground", "height2m", "height10m"}
SURFACE_LEVEL_TYPES = {"heightaboveground", "surface", "meansea", "sfc"}
SURFACE_WORDS = re.compile(r"\b(2|10) ?m(etre|eter)?s?\b|\bsurface\b|\bsea level\b|\bsfc\b|\bnear.surface\b", re.I)
STATED_LEVEL = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(hpa|mbar|mb|millibars?|pa|kpa)\s*$", re.I)
FILE_TOKENS = {"2m", "10m", "sfc", "surface", "msl"}


def is_pressure(name: str, attrs: dict) -> bool:
    """Whether a coordinate holds pressure: by name, standard_name, or positive/axis with pressure units."""
    units = normalise(str(attrs.get("units", "")))
    if attrs.get("standard_name") == "air_pressure":
        return True
    if str(name).lower() in PRESSURE_NAMES:
        return not units or units in LEVEL_TO_HPA
    vertical = str(attrs.get("positive", "")).lower() in ("up", "down") or str(attrs.get("axis", "")).upper() == "Z"
    return vertical and units in LEVEL_TO_HPA


def is_height(name: str, attrs: dict) -> bool:
    """Whether a coordinate is a height above ground in metres (CF ``height``, cfgrib ``heightAboveGround``)."""
    units = normalise(str(attrs.get("units", "m")))
    named = str(name).lower() in HEIGHT_NAMES or attrs.get("standard_name") == "height"
    return named and units in ("m", "metre", "meter", "metres", "meters")


def promote_scalar_level(ds: xr.Dataset, source: str, notes: list[str]) -> xr.Dataset:
    """A scalar pressure coordinate -> a length-1 ``level`` (hPa) dimension of the variables carrying it."""
    scalars = [str(c) for c in ds.coords if ds[c].ndim == 0 and is_pressure(str(c), ds[c].attrs)]
    if not scalars:
        return ds
    values = {c: _hpa(ds[c]) for c in scalars}
    if len(set(values.values())) > 1:
        raise DataInputError(f"scalar pressure coordinates disagree ({values}); expected one level", source=source)
    if LEVEL in ds.dims:
        raise DataInputError(
            f"scalar pressure coordinate {scalars[0]!r} next to a level dimension; expected one vertical coordinate",
            source=source,
            variable=scalars[0],
        )
    hpa = values[scalars[0]]
    carriers = [name for name in _carriers(ds, scalars) if not _single_level_by_name(name, ds[name])]
    ds = ds.drop_vars(scalars)
    expanded = {name: ds[name].expand_dims({LEVEL: [hpa]}, axis=_level_axis(ds[name])) for name in carriers}
    notes.append(f"scalar pressure coordinate {scalars[0]!r} = {hpa:g} hPa kept as a level dimension")
    return ds.assign(expanded)


def name_pressure_dimension(ds: xr.Dataset, notes: list[str]) -> xr.Dataset:
    """A pressure dimension under another name (``pres`` with ``axis: Z``, ``standard_name: air_pressure``) -> ``level``."""
    if LEVEL in ds.variables:
        return ds
    found = [
        str(d)
        for d in ds.dims
        if d in ds.coords
        and ds[d].ndim == 1
        and str(d).lower() not in PRESSURE_NAMES
        and is_pressure(str(d), ds[d].attrs)
    ]
    if len(found) != 1:
        return ds
    notes.append(f"pressure coordinate {found[0]!r} (by its attributes) taken as the level")
    return ds.rename({found[0]: LEVEL})


def _single_level_by_name(native: str, da: xr.DataArray) -> bool:
    """Whether the name alone says single level (ERA5 t2m, msl; canonical 2m_temperature)."""
    if native in VARIABLES:
        return not VARIABLES[native].has_level
    pair = lookup_pair(native, da.attrs.get("standard_name"))
    return pair is not None and pair[0] is None


def stated_level(da: xr.DataArray) -> float | None:
    """A pressure level (hPa) stated in a variable's attributes, or None."""
    attrs = da.attrs
    if str(attrs.get("GRIB_typeOfLevel", "")).lower() == "isobaricinhpa" and "GRIB_level" in attrs:
        return float(attrs["GRIB_level"])
    for key in ("level_desc", "level", "pressure_level"):
        match = STATED_LEVEL.match(str(attrs.get(key, "")))
        if match:
            return float(match.group(1)) * LEVEL_TO_HPA.get(normalise(match.group(2)).rstrip("s"), 1.0)
    return None


def with_stated_level(da: xr.DataArray, native: str, notes: list[str]) -> xr.DataArray:
    """``da`` with a length-1 level dimension when its attributes state a pressure level."""
    if LEVEL in da.dims:
        return da
    hpa = stated_level(da)
    if hpa is None:
        return da
    notes.append(f"{native}: pressure level {hpa:g} hPa stated in its attributes kept as a level dimension")
    return da.expand_dims({LEVEL: [_integer(hpa)]}, axis=_level_axis(da))


def height_hints(ds: xr.Dataset) -> dict[str, str]:
    """{variable: 'height 2 m'} for variables carrying a scalar height coordinate (read before coordinates go)."""
    heights = [str(c) for c in ds.coords if ds[c].ndim == 0 and is_height(str(c), ds[c].attrs)]
    hints = {}
    for name in _carriers(ds, heights) if heights else []:
        hints[name] = f"height {float(ds[heights[0]].values):g} m"
    return hints


def single_level_name(
    native: str, da: xr.DataArray, name: str | None, how: str, hint: str | None, source: str, notes: list[str]
) -> str | None:
    """The canonical name of a variable without a level dimension, decided by evidence (see module doc)."""
    pair = (
        lookup_pair(native, da.attrs.get("standard_name")) if how not in ("catalog mapping", "canonical name") else None
    )
    if pair is None:
        return name
    on_levels, near_surface = pair
    if near_surface is None:
        raise DataInputError(
            f"is {on_levels} on pressure levels, but the file has no level dimension, scalar"
            " pressure coordinate or level attribute; expected one",
            source=source,
            variable=native,
        )
    if on_levels is None:
        return near_surface  # the source's own name says single level (ERA5 t2m, u10, msl)
    evidence = hint or _attribute_evidence(da) or _file_evidence(source)
    if evidence is None and TIME not in da.dims and near_surface in ("geopotential_at_surface", "land_sea_mask"):
        evidence = "no time dimension (an invariant field)"
    if evidence is None:
        raise DataInputError(
            f"cannot tell whether this is {on_levels} on a pressure level or {near_surface}: no"
            " level dimension or scalar pressure coordinate, and neither its attributes nor the"
            " file name say near-surface; expected a level coordinate, a height/level attribute or"
            " a catalog entry mapping the variable",
            source=source,
            variable=native,
        )
    notes.append(f"{native}: taken as {near_surface} ({evidence})")
    return near_surface


def _attribute_evidence(da: xr.DataArray) -> str | None:
    level_type = str(da.attrs.get("GRIB_typeOfLevel", "")).lower()
    if level_type in SURFACE_LEVEL_TYPES:
        return f"GRIB_typeOfLevel {da.attrs['GRIB_typeOfLevel']}"
    for key in ("level_desc", "long_name"):
        text = str(da.attrs.get(key, ""))
        if SURFACE_WORDS.search(text):
            return f"{key} {text!r}"
    return None


def _file_evidence(source: str) -> str | None:
    stem = os.path.basename(str(source).split(" (+")[0])
    tokens = set(re.split(r"[._\-]", stem.lower()))
    found = tokens & FILE_TOKENS
    return f"file name {stem!r}" if found else None


def _carriers(ds: xr.Dataset, coords: list[str]) -> list[str]:
    """Data variables that list one of ``coords`` in their CF ``coordinates`` (all of them if none lists any)."""
    listed = {
        name: str(da.encoding.get("coordinates", da.attrs.get("coordinates", ""))).split()
        for name, da in ds.data_vars.items()
    }
    if not any(listed.values()):
        return [str(n) for n in ds.data_vars]
    return [str(n) for n, names in listed.items() if set(names) & set(coords)]


def _level_axis(da: xr.DataArray) -> int:
    """Where ``level`` goes: just before the horizontal dimensions."""
    return max(0, da.ndim - 2)


def _hpa(coord: xr.DataArray) -> float:
    value = float(np.asarray(coord.values))
    return _integer(value * level_factor(coord.attrs.get("units"), value))


def _integer(value: float) -> float:
    return int(round(value)) if abs(value - round(value)) < 1e-9 else value
