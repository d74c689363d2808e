"""Map a native dataset's variables onto canonical names and units.

``to_canonical`` is the single entry point used by every reader: it normalises coordinates
(``data_catalog.coords``), renames variables (``data_catalog.mappings``), converts units
(``data_catalog.units``) and records every inference in the ``history`` attribute.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from data_catalog import coords, vertical
from data_catalog.errors import DataInputError
from data_catalog.mappings import ACCUMULATION_HOURS, canonical_name
from data_catalog.schema import LEVEL, TIME, VARIABLES
from data_catalog.units import conversion, known_spellings


def to_canonical(
    ds: xr.Dataset,
    *,
    source: str,
    overrides: dict[str, str] | None = None,
    history: list[str] | None = None,
    accumulate: bool = True,
) -> xr.Dataset:
    """Return ``ds`` in the canonical schema (lazy; nothing is computed).

    Notes on every inference are appended to ``history`` (and to the ``history`` attribute).
    With ``accumulate=False`` hourly accumulations are only marked (attribute
    ``accumulation_hours``), so that several files can be concatenated before
    ``accumulate_6h`` sums them.
    """
    notes = [] if history is None else history
    ds = vertical.promote_scalar_level(ds, source, notes)
    ds = vertical.name_pressure_dimension(ds, notes)
    heights = vertical.height_hints(ds)
    ds = coords.rename_coordinates(ds, source)
    ds = coords.drop_auxiliary(ds)
    ds = coords.decode_time(ds, source)
    coords.check_time(ds, source)
    ds = coords.orient(ds, source)
    out: dict[str, xr.DataArray] = {}
    for native, da in ds.data_vars.items():
        da = vertical.with_stated_level(da, str(native), notes)
        name, how = canonical_name(str(native), da.attrs.get("standard_name"), LEVEL in da.dims, overrides)
        if LEVEL not in da.dims:
            name = vertical.single_level_name(str(native), da, name, how, heights.get(str(native)), source, notes)
        if name is None:
            notes.append(f"dropped unmapped variable {native!r}")
            continue
        if name not in VARIABLES:
            raise DataInputError(
                f"mapped to unknown canonical name {name!r}; expected one of {', '.join(VARIABLES)}",
                source=source,
                variable=str(native),
            )
        if name in out:
            raise DataInputError(
                f"a second variable maps to {name!r}; expected one source per canonical variable",
                source=source,
                variable=str(native),
            )
        if da.dtype.kind not in NUMERIC_KINDS:
            raise DataInputError(
                f"holds {_dtype_words(da.dtype)}, not numbers; expected numeric values of {name}",
                source=source,
                variable=str(native),
            )
        if how != "canonical name":
            notes.append(f"{native} -> {name} ({how})")
        if VARIABLES[name].static and TIME in da.dims:
            da = da.isel({TIME: 0}, drop=True)  # invariant fields are often shipped with a time axis
            notes.append(f"{native}: static field, kept the first time step")
        da = _canonical_attrs(_convert_units(da, str(native), name, source, notes), name)
        if str(native) in ACCUMULATION_HOURS:
            da.attrs.update(accumulation_hours=ACCUMULATION_HOURS[str(native)], native_name=str(native))
        out[name] = da
    if not out:
        found = ", ".join(map(str, ds.data_vars)) or "none"
        raise DataInputError(
            f"no variable could be mapped (found: {found}); expected ERA5, NCEP,"
            " WeatherBench 2 names or CF standard_names",
            source=source,
        )
    result = coords.transpose_canonical(xr.Dataset(out))
    for name in result.variables:
        result[name].encoding = {}
    if accumulate:
        result = accumulate_6h(result, source=source, history=notes)
    result.attrs = {"source": source}
    if notes:
        result.attrs["history"] = "; ".join(dict.fromkeys(notes))
    return result


NUMERIC_KINDS = "fiub"  # float, signed and unsigned integer, boolean (a land-sea mask)


def _dtype_words(dtype: np.dtype) -> str:
    """'strings (dtype <U4)', 'Python objects (dtype object)', ... for a refusal."""
    words = {
        "U": "strings",
        "S": "byte strings",
        "O": "Python objects",
        "M": "dates",
        "m": "time spans",
        "c": "complex numbers",
    }
    return f"{words.get(dtype.kind, 'non-numeric values')} (dtype {dtype})"


def _convert_units(da: xr.DataArray, native: str, name: str, source: str, notes: list[str]) -> xr.DataArray:
    target = VARIABLES[name].units
    units = da.attrs.get("units")
    if units is None:
        standard = da.attrs.get("standard_name")
        if standard and standard in (VARIABLES[name].standard_name, name):
            notes.append(f"{native}: no units attribute; took {target!r} from standard_name {standard!r}")
            return da
        raise DataInputError(
            f"no units attribute and no CF standard_name to infer them from; expected units of {name} ({target})",
            source=source,
            variable=native,
        )
    factors = conversion(str(units), target)
    if factors is None:
        raise DataInputError(
            f"unknown units {units!r} for {name}; expected {target!r} or one of"
            f" {', '.join(repr(s) for s in known_spellings(target))}",
            source=source,
            variable=native,
        )
    scale, offset = factors
    if scale != 1.0 or offset != 0.0:
        notes.append(f"{native}: converted {units!r} to {target!r}")
        da = da * scale + offset  # Python floats keep float32 data float32
    return da


def accumulate_6h(ds: xr.Dataset, *, source: str, history: list[str]) -> xr.Dataset:
    """Sum variables marked with ``accumulation_hours`` (ERA5 ``tp``) over the trailing 6 hours."""
    for name, da in list(ds.data_vars.items()):
        hours = da.attrs.get("accumulation_hours")
        if hours is None:
            continue
        step = np.diff(ds[TIME].values[:2]).astype("timedelta64[h]").astype(int) if TIME in ds.dims else []
        if len(step) == 0 or int(step[0]) != hours:
            raise DataInputError(
                f"holds {hours}-hour accumulations; expected {hours}-hourly times to sum into {name}",
                source=source,
                variable=da.attrs.get("native_name", str(name)),
            )
        history.append(
            f"{da.attrs.get('native_name', name)}: summed {hours}-hour accumulations over the trailing 6 hours"
        )
        attrs = {k: v for k, v in da.attrs.items() if k not in ("accumulation_hours", "native_name")}
        ds[name] = da.rolling({TIME: 6 // hours}).sum().assign_attrs(attrs)
    return ds


def _canonical_attrs(da: xr.DataArray, name: str) -> xr.DataArray:
    var = VARIABLES[name]
    attrs = {"units": var.units, "long_name": var.long_name}
    if var.standard_name:
        attrs["standard_name"] = var.standard_name
    da = da.copy(deep=False)
    da.attrs = attrs
    return da
