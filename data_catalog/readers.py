"""``open_dataset``: any catalog entry or file into the canonical schema, lazily.

Drivers (``zarr``, ``netcdf``, ``grib``, ``synthetic``) open the native data with dask
chunks; ``data_catalog.canonical.to_canonical`` maps names, units and coordinates; then
the selection (variables, levels, time) and the cheap value checks of
``data_catalog.checks`` run. Nothing is loaded eagerly apart from coordinates and the
two time slices the all-NaN check reads.
"""

from __future__ import annotations

import glob as globlib
import importlib
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import xarray as xr

from data_catalog.canonical import accumulate_6h, to_canonical
from data_catalog.catalog import CatalogArg, CatalogEntry, find_entry, load_catalog
from data_catalog.cf import absolute_source
from data_catalog.checks import check_not_all_nan, check_plausible
from data_catalog.coords import check_time
from data_catalog.errors import DataInputError
from data_catalog.grib_support import import_cfgrib
from data_catalog.schema import LEVEL, TIME, VARIABLES

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5")
GRIB_SUFFIXES = (".grib", ".grb", ".grib1", ".grib2", ".grb2")


def open_dataset(
    source: str | os.PathLike,
    *,
    variables: Sequence[str] | None = None,
    levels: Sequence[float] | None = None,
    time: Any = None,
    catalog: CatalogArg = None,
    options: dict[str, Any] | None = None,
    check_values: bool = True,
) -> xr.Dataset:
    """Open a catalog entry name or a path (NetCDF file or glob, Zarr store, GRIB file).

    Returns a lazy, dask-backed dataset in the canonical schema. ``variables`` are canonical
    names, ``levels`` hPa, ``time`` a slice or ``(start, end)`` of dates; ``options`` go to the
    driver over the entry's own options (e.g. ``chunks``, ``storage_options``; synthetic:
    ``years``, ``seed``, ``grid``). ``check_values=False`` skips the all-NaN and plausibility checks.
    Bad input raises ``DataInputError`` naming the file, the variable and what was expected.
    """
    entry = _resolve(source, catalog)
    opts = {**entry.options, **(options or {})}
    parts = DRIVERS[entry.driver](entry, opts)  # [(label, native dataset)]
    label = entry_label(name for name, _ in parts)
    notes: list[str] = []
    canonical = [
        to_canonical(ds, source=name, overrides=entry.variables, history=notes, accumulate=False) for name, ds in parts
    ]
    ds = _combine(canonical, [name for name, _ in parts])
    ds = ds[[name for name in VARIABLES if name in ds.data_vars]]  # schema order
    ds = accumulate_6h(ds, source=label, history=notes)
    where = entry_label(absolute_source(name) for name, _ in parts)  # provenance: not relative to the working directory
    ds.attrs = {"source": where if entry.name == entry.location else f"{entry.name} ({where})"}
    if notes:
        ds.attrs["history"] = "; ".join(dict.fromkeys(notes))
    ds = select(ds, variables=variables, levels=levels, time=time, source=label)
    if check_values:
        check_not_all_nan(ds, label)
        check_plausible(ds, label)
    return ds


def _resolve(source: str | os.PathLike, catalog: CatalogArg) -> CatalogEntry:
    text = os.fspath(source)
    driver = _driver_for_path(text)
    entry = find_entry(text, catalog, readable_without=driver is not None)  # a broken catalog spares plain paths
    if entry is not None:
        return entry
    if driver is None:
        raise DataInputError(
            f"not a catalog entry and no such file or directory; catalog entries:"
            f" {', '.join(sorted(load_catalog(catalog)))}",
            source=text,
        )
    return CatalogEntry(
        name=text,
        description=f"file {text}",
        driver=driver,
        location=text,
        licence="unknown (user file)",
        citation="unknown (user file)",
    )


def _driver_for_path(text: str) -> str | None:
    lower = text.lower().rstrip("/")
    if "://" in text:
        return "zarr" if lower.endswith(".zarr") else "netcdf"
    path = Path(text)
    if path.is_dir():
        return "zarr"
    if lower.endswith(GRIB_SUFFIXES):
        return "grib" if path.exists() else None
    if path.is_file() or globlib.has_magic(text) and globlib.glob(text):
        return "netcdf"
    return None


def _files(entry: CatalogEntry) -> list[str]:
    location = entry.location or ""
    if "://" in location:
        return [location]
    files = sorted(globlib.glob(location)) if globlib.has_magic(location) else [location]
    if not files:
        raise DataInputError("no file matches this glob; expected at least one file", source=location)
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise DataInputError("no such file; expected an existing file", source=missing[0])
    return files


def _open_each(files: list[str], opener: Callable[[str], xr.Dataset], kind: str) -> list[xr.Dataset]:
    datasets = []
    for path in files:
        try:
            datasets.append(opener(path))
        except DataInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - the backends raise many types for a bad file
            reason = " ".join(str(exc).split())[:200]
            raise DataInputError(
                f"unreadable or truncated file ({type(exc).__name__}: {reason}); expected a readable {kind} file",
                source=path,
            ) from None
    return datasets


def _combine(datasets: list[xr.Dataset], files: list[str]) -> xr.Dataset:
    """Merge canonical datasets of several files (by variable and along time); grids must match."""
    if len(datasets) == 1:
        return datasets[0]
    first = datasets[0]
    for ds, path in zip(datasets[1:], files[1:]):
        for name in ("latitude", "longitude", LEVEL):
            if name in first.indexes and name in ds.indexes and not first.indexes[name].equals(ds.indexes[name]):
                raise DataInputError(
                    f"{name} differs from {files[0]}; expected the same grid in every file", source=path, variable=name
                )
    try:
        combined = xr.combine_by_coords(
            datasets,
            join="outer",
            data_vars="minimal",
            coords="minimal",
            compat="no_conflicts",
            combine_attrs="drop_conflicts",
        )
    except ValueError as exc:
        raise DataInputError(
            f"files cannot be combined ({' '.join(str(exc).split())[:200]}); expected"
            " consecutive, non-overlapping times",
            source=entry_label(files),
        ) from None
    check_time(combined, entry_label(files))
    return combined


def entry_label(files: Iterable[str]) -> str:
    """A short name for one file or several."""
    files = list(files)
    return files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} more files)"


def _chunks(options: dict[str, Any]) -> Any:
    return options.get("chunks", "auto")


def _open_netcdf(entry: CatalogEntry, options: dict[str, Any]) -> xr.Dataset:
    files = _files(entry)
    chunks = _chunks(options)

    def opener(path: str) -> xr.Dataset:
        return xr.open_dataset(path, engine="netcdf4", chunks=chunks, cache=False, **options.get("open_kwargs", {}))

    return list(zip(files, _open_each(files, opener, "NetCDF")))


def _open_grib(entry: CatalogEntry, options: dict[str, Any]) -> xr.Dataset:
    try:
        import_cfgrib()
    except ImportError:
        raise DataInputError(
            "reading GRIB needs cfgrib and ecCodes; install climate-optics[grib]", source=entry.location
        ) from None
    files = _files(entry)
    chunks = _chunks(options)
    return list(zip(files, _open_each(files, lambda p: _open_grib_file(p, chunks), "GRIB")))


def _open_grib_file(path: str, chunks: Any) -> xr.Dataset:
    """One GRIB file; messages on several level types become one dataset per type, merged."""
    cfgrib = import_cfgrib()
    parts = cfgrib.open_datasets(path, backend_kwargs={"indexpath": ""}, chunks=chunks)
    if len(parts) == 1:
        return parts[0]
    kept = []
    for part in parts:
        scalar = [c for c in part.coords if part[c].ndim == 0 and c not in ("isobaricInhPa", "isobaricInPa", "time")]
        kept.append(part.drop_vars(scalar))
    try:
        return xr.merge(kept, compat="override", join="exact", combine_attrs="drop_conflicts")
    except ValueError as exc:
        raise DataInputError(f"GRIB messages do not share one grid and time axis ({exc})", source=path) from None


def _open_zarr(entry: CatalogEntry, options: dict[str, Any]) -> xr.Dataset:
    location = entry.location or ""
    storage = options.get("storage_options")
    if location.startswith(("gs://", "gcs://")):
        try:
            importlib.import_module("gcsfs")
        except ImportError:
            raise DataInputError(
                "opening Google Cloud Storage needs gcsfs; install climate-optics[cloud]", source=location
            ) from None
    elif not os.path.exists(location) and "://" not in location:
        raise DataInputError("no such Zarr store; expected a directory", source=location)
    try:
        return [(location, xr.open_zarr(location, chunks=options.get("chunks", {}), storage_options=storage))]
    except Exception as exc:  # noqa: BLE001 - zarr raises many types for a bad store
        reason = " ".join(str(exc).split())[:200]
        raise DataInputError(f"unreadable Zarr store ({type(exc).__name__}: {reason})", source=location) from None


def _open_synthetic(entry: CatalogEntry, options: dict[str, Any]) -> xr.Dataset:
    from data_catalog import synthetic  # the generator, imported only when the synthetic source is opened

    opts = dict(options)
    cache_dir = opts.pop("cache_dir", None)
    return [(entry.name, synthetic.open_synthetic(opts, cache_dir=cache_dir))]


Driver = Callable[[CatalogEntry, dict[str, Any]], list[tuple[str, xr.Dataset]]]
DRIVERS: dict[str, Driver] = {
    "netcdf": _open_netcdf,
    "grib": _open_grib,
    "zarr": _open_zarr,
    "synthetic": _open_synthetic,
}


def _time_bounds(time: Any) -> slice | None:
    if time is None or isinstance(time, slice):
        return time
    if isinstance(time, (tuple, list)) and len(time) == 2:
        return slice(time[0], time[1])
    raise DataInputError(f"time selection {time!r}; expected a slice or a (start, end) pair")


def select(
    ds: xr.Dataset,
    *,
    variables: Sequence[str] | None = None,
    levels: Sequence[float] | None = None,
    time: Any = None,
    source: str = "dataset",
) -> xr.Dataset:
    """Select canonical variables, pressure levels (hPa) and a time range, with clear errors."""
    if variables is not None:
        names = [variables] if isinstance(variables, str) else list(variables)
        for name in names:
            if name not in ds.data_vars:
                hint = "" if name in VARIABLES else f"; canonical names: {', '.join(VARIABLES)}"
                raise DataInputError(
                    f"variable not found (available: {', '.join(map(str, ds.data_vars))}){hint}",
                    source=source,
                    variable=name,
                )
        ds = ds[names]
    if levels is not None:
        wanted = [float(x) for x in ([levels] if isinstance(levels, (int, float)) else levels)]
        if LEVEL not in ds.dims:
            raise DataInputError(f"levels {wanted} requested but no variable has pressure levels", source=source)
        have = {float(x) for x in ds[LEVEL].values}
        absent = [x for x in wanted if x not in have]
        if absent:
            on = [str(v) for v in ds.data_vars if LEVEL in ds[v].dims]
            raise DataInputError(
                f"level {absent[0]:g} hPa not found (available: {', '.join(f'{x:g}' for x in sorted(have))})",
                source=source,
                variable=on[0] if len(on) == 1 else ", ".join(on),
            )
        ds = ds.sel({LEVEL: [x for x in ds[LEVEL].values if float(x) in set(wanted)]})
    bounds = _time_bounds(time)
    if bounds is not None and TIME in ds.dims:
        try:
            picked = ds.sel({TIME: bounds})
        except (KeyError, TypeError, ValueError) as exc:
            raise DataInputError(
                f"time selection {bounds.start}..{bounds.stop} not understood ({exc})", source=source, variable=TIME
            ) from None
        if picked.sizes[TIME] == 0:
            index = ds.indexes[TIME]
            raise DataInputError(
                f"no time in {bounds.start}..{bounds.stop}; the data covers {index[0]}..{index[-1]}",
                source=source,
                variable=TIME,
            )
        ds = picked
    return ds
