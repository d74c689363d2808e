"""Ingest any source into a canonical Zarr v3 store with statistics and a climatology.

Store layout (see docs/architecture.md):

- root group: the canonical dataset; time-dependent variables chunked ``(time=N, [all members,]
  all levels, whole latitude x longitude field)`` and compressed with Blosc-LZ4 (byte shuffle); static
  fields (``land_sea_mask``, ``geopotential_at_surface``) without a time dimension;
  provenance attributes (source, ingest options, package version, creation time).
- group ``statistics``: mean, std, diff_std per variable and level (``data_catalog.stats``), over
  every ensemble member.
- group ``climatology``: WeatherBench 2 layout (``data_catalog.climatology``), of the member mean.

Streaming: the record is processed in time order, in blocks of one time chunk (the source
is opened with dask chunks aligned with them, so each block is read once). A background
thread loads the next block with dask while the current one is written and folded into the
statistics and the climatology's daily sums (a scratch file; ``data_catalog.streaming``), and at most OPEN_FILES source
files stay open, so peak memory is a few blocks whatever the record's length. Everything is written into a temporary sibling and renamed at the end
(``data_catalog.store.atomic_store``); any failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from data_catalog.cf import CONVENTIONS, absolute_source, cf_attributes
from data_catalog.checks import check_plausible
from data_catalog.climatology import Climatology, band_rows, climatology_template, period_indices, stamp
from data_catalog.damage import reporting_damage
from data_catalog.errors import DataInputError
from data_catalog.redact import redact
from data_catalog.regrid import regrid, target_grid
from data_catalog.schema import LATITUDE, LEVEL, LONGITUDE, REALIZATION, STATIC_VARIABLES, TIME
from data_catalog.stats import CLIMATOLOGY_GROUP, STATISTICS_GROUP, StatisticsAccumulator
from data_catalog.store import atomic_store, check_target, consolidate
from data_catalog.streaming import (
    SCRATCH_DIR,
    Progress,
    diff_interval,
    level_axis,
    read_pieces,
    stream_pieces,
    whole_chunks,
)

TARGET_CHUNK_BYTES = 4 << 20  # a time chunk of the largest variable holds about this much
MAX_TIME_CHUNK = 64


def ingest(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    variables: list[str] | None = None,
    levels: list[float] | None = None,
    start: Any = None,
    end: Any = None,
    overwrite: bool = False,
    options: dict[str, Any] | None = None,
    catalog: str | os.PathLike | None = None,
    time_chunk: int | None = None,
    progress: Progress | None = None,
    climatology_period: Any = None,
    grid: str | None = None,
    regrid_method: str = "conservative",
) -> Path:
    """Open ``source`` (catalog name or path) in the canonical schema and write it to ``out``.

    ``grid``: regrid to ``LONxLAT`` (``64x32``, ``240x121``, ...), ``Ndeg`` or the grid of a store
    (``data_catalog.regrid.target_grid``) with ``regrid_method`` (conservative or bilinear);
    for the synthetic generator it names the generated grid's view, as its ``grid`` option.

    ``climatology_period``: ``"START:END"``, ``"START/END"`` or a pair of dates (inclusive); the
    climatology is built from those times only (default: the whole record), and the period is
    recorded in the climatology group's attributes. Returns the store's path. Raises
    DataInputError (nothing written) on bad input or when ``out`` exists and ``overwrite`` is false.
    """
    from data_catalog import open_dataset

    check_target(out, overwrite=overwrite)
    user_options = options
    target = None
    if grid is not None and is_synthetic(source, catalog):
        options = {**(options or {}), "grid": grid}
    elif grid is not None:
        target = target_grid(grid, catalog)

    def prepared(ds: xr.Dataset) -> xr.Dataset:
        return ds if target is None else regridded(ds, target, regrid_method)

    time = None if start is None and end is None else slice(start, end)
    selection = {"variables": variables, "levels": levels, "time": time, "catalog": catalog}
    rechunk = _can_rechunk_at_source(source, catalog, options)
    native = {**(options or {}), "chunks": {}}  # the source's own chunks: each decompressed once
    ds = prepared(open_dataset(source, options=native if rechunk else options, check_values=False, **selection))
    chunk = time_chunk or default_time_chunk(ds)
    if rechunk and read_pieces(ds, chunk) is None:  # too long: blocks of store chunks
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The specified chunks separate", category=UserWarning)
            ds = prepared(open_dataset(source, options=_with_chunks(options, chunk), check_values=False, **selection))
    settings = {
        "variables": variables,
        "levels": levels,
        "start": start,
        "end": end,
        "options": user_options,
        "catalog": None if catalog is None else absolute_source(catalog),
        "climatology_period": climatology_period,
        "grid": grid,
        "regrid_method": None if target is None else regrid_method,
    }
    with reporting_damage(source):  # a chunk that cannot be decoded is named as bad input
        return write_store(
            ds,
            out,
            source=absolute_source(source),
            settings=settings,
            overwrite=overwrite,
            time_chunk=chunk,
            progress=progress,
            climatology_period=climatology_period,
        )


def _can_rechunk_at_source(source: str | os.PathLike, catalog: Any, options: dict[str, Any] | None) -> bool:
    """Files and stores take a ``chunks`` option; the synthetic generator chooses its own."""
    if "chunks" in (options or {}):
        return False  # the caller chose
    return not is_synthetic(source, catalog)


def is_synthetic(source: str | os.PathLike, catalog: Any) -> bool:
    """Whether ``source`` is a catalog entry of the synthetic generator."""
    from data_catalog.catalog import find_entry

    entry = find_entry(os.fspath(source), catalog, readable_without=True)  # open_dataset reports a broken catalog
    return entry is not None and entry.driver == "synthetic"


def regridded(ds: xr.Dataset, target: tuple[np.ndarray, np.ndarray], method: str) -> xr.Dataset:
    """``ds`` regridded to ``target`` (latitudes, longitudes), the regridding noted in its attributes."""
    lat, lon = target
    out = regrid(ds, lat, lon, method)
    out.attrs["regridding"] = (
        f"{method} from {ds.sizes[LONGITUDE]}x{ds.sizes[LATITUDE]} to {lon.size}x{lat.size}"
        " (longitudes x latitudes) by climate-optics ingest"
    )
    return out


def _with_chunks(options: dict[str, Any] | None, chunk: int) -> dict[str, Any]:
    """Driver options asking for dask chunks of ``chunk`` time steps (native time names too)."""
    return {**(options or {}), "chunks": {"time": chunk, "valid_time": chunk}}


def write_store(
    ds: xr.Dataset,
    out: str | os.PathLike,
    *,
    source: str,
    settings: dict[str, Any] | None = None,
    overwrite: bool = False,
    time_chunk: int | None = None,
    progress: Progress | None = None,
    climatology_period: Any = None,
) -> Path:
    """Write a canonical dataset (lazy or in memory) as an ingested store; see the module docstring."""
    target = check_target(out, overwrite=overwrite)
    dynamic, static = _split(ds, source)
    check_plausible(ds, source)  # first and last time steps, before anything is written
    times = dynamic[TIME].values
    period = period_indices(times, climatology_period, source)
    chunk = time_chunk or default_time_chunk(dynamic)
    if chunk < 1:
        raise DataInputError(f"time chunk must be >= 1, got {chunk}", source=source)
    attrs = redact(dict(ds.attrs) | provenance(source, settings or {}, chunk))  # no credentials in attributes
    with atomic_store(target, overwrite=overwrite) as tmp:
        _initialise(dynamic, static, tmp, chunk, attrs)
        statistics = StatisticsAccumulator(
            levels=ds[LEVEL].values if LEVEL in ds.dims else None,
            has_level={name: LEVEL in da.dims for name, da in ds.data_vars.items()},
        )
        _write_static(static, tmp, statistics, source)
        climatology = stream_pieces(dynamic, tmp, chunk, statistics, source, progress, period)
        cf_attributes(
            statistics.to_dataset(static=tuple(static.data_vars), attrs=_statistics_attrs(times)), variables=False
        ).to_zarr(tmp, group=STATISTICS_GROUP, mode="w-", consolidated=False)
        if dynamic.data_vars:
            _write_climatology(tmp, dynamic, climatology, progress)
        shutil.rmtree(tmp / SCRATCH_DIR, ignore_errors=True)
        consolidate(tmp)
    return target


def default_time_chunk(ds: xr.Dataset) -> int:
    """Time steps per chunk: about TARGET_CHUNK_BYTES for the largest variable, 1..MAX_TIME_CHUNK."""
    per_step = max(
        (da.dtype.itemsize * da.size // max(da.sizes.get(TIME, 1), 1) for da in ds.data_vars.values()), default=1
    )
    return int(min(MAX_TIME_CHUNK, max(1, TARGET_CHUNK_BYTES // max(per_step, 1))))


def provenance(source: str, settings: dict[str, Any], time_chunk: int) -> dict[str, Any]:
    """Root attributes: source, ingest options, package version, creation time."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version("climate-optics")
    except PackageNotFoundError:
        package_version = "unknown"
    return {
        "source_dataset": source,
        "ingest_options": json.dumps(redact(settings | {"time_chunk": time_chunk}), sort_keys=True, default=str),
        "climate_optics_version": package_version,
        "python_version": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _split(ds: xr.Dataset, source: str) -> tuple[xr.Dataset, xr.Dataset]:
    """(time-dependent variables, static variables), validated and in canonical dim order."""
    if TIME not in ds.dims or ds.sizes[TIME] == 0:
        raise DataInputError("no time steps to ingest (check --start/--end); expected at least one", source=source)
    for dim in (LATITUDE, LONGITUDE):
        if dim not in ds.dims:
            raise DataInputError(f"dimension {dim!r} is missing; expected a canonical dataset", source=source)
    times = ds[TIME].values
    steps = np.diff(times)
    if (steps <= np.timedelta64(0)).any():
        bad = times[1:][steps <= np.timedelta64(0)][0]
        raise DataInputError(
            f"time is not strictly increasing at {bad}; expected unique, sorted times", source=source, variable=TIME
        )
    static_names = [n for n in ds.data_vars if n in STATIC_VARIABLES or TIME not in ds[n].dims]
    static = ds[static_names]
    if TIME in static.dims:
        static = static.isel({TIME: 0}, drop=True)
    dynamic = ds.drop_vars(static_names)
    order = (TIME, REALIZATION, LEVEL, LATITUDE, LONGITUDE)
    dynamic = dynamic.transpose(*[d for d in order if d in dynamic.dims], ...)
    static = static.transpose(*[d for d in order if d in static.dims], ...)
    return dynamic, static


def _encoding(ds: xr.Dataset, chunk: int) -> dict[str, dict[str, Any]]:
    codec = _codec()
    enc: dict[str, dict[str, Any]] = {}
    for name, da in ds.data_vars.items():
        chunks = tuple(min(chunk, s) if d == TIME else s for d, s in zip(da.dims, da.shape))
        enc[str(name)] = {"chunks": chunks, "compressors": [codec]}
    if TIME in ds.coords:
        whole_hours = bool((ds[TIME].values.astype("datetime64[s]").astype(np.int64) % 3600 == 0).all())
        enc[TIME] = {
            "units": "hours since 1900-01-01" if whole_hours else "seconds since 1900-01-01",
            "calendar": "proleptic_gregorian",
            "dtype": "int64",
        }
    return enc


def _codec() -> Any:
    """Blosc-LZ4 with byte shuffle, for the data and the climatology: on float32 fields 3-4x faster to
    compress and 3-4x faster to read than Blosc-zstd level 1, files 1-4% larger."""
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


def _initialise(dynamic: xr.Dataset, static: xr.Dataset, tmp: Path, chunk: int, attrs: dict[str, Any]) -> None:
    """Write metadata and coordinates of the root group (data arrives block by block)."""
    import dask.array as da

    template = xr.merge([dynamic, static], combine_attrs="drop_conflicts", join="exact")
    template = template.copy()
    for name in list(template.variables):
        template[name].encoding = {}
    lazy = {
        name: template[name].copy(data=da.zeros(v.shape, dtype=v.dtype, chunks=-1))
        for name, v in template.data_vars.items()
    }
    template = cf_attributes(template.assign(lazy))
    template.attrs = attrs | {"Conventions": CONVENTIONS}
    template.to_zarr(
        tmp, mode="w-", compute=False, encoding=_encoding(template, chunk), zarr_format=3, consolidated=False
    )


def _write_static(static: xr.Dataset, tmp: Path, statistics: StatisticsAccumulator, source: str) -> None:
    import zarr

    group = zarr.open_group(tmp, mode="r+")
    for name, da in static.load().data_vars.items():
        values = da.values
        if np.isnan(values).all():
            raise DataInputError("all values are NaN; expected a field with data", source=source, variable=str(name))
        group[str(name)][...] = values
        statistics.add(str(name), values[np.newaxis], None, level_axis=level_axis(("time", *da.dims)))


def _write_climatology(tmp: Path, dynamic: xr.Dataset, climatology: Climatology, progress: Progress | None) -> None:
    """Smooth the daily means, band by band, into the climatology group."""
    import zarr

    template = cf_attributes(climatology_template(dynamic, climatology.hours))
    used = dynamic[TIME].values[climatology.period]
    template.attrs.update(
        climatology_period_start=stamp(used[0]),
        climatology_period_end=stamp(used[-1]),
        climatology_time_steps=int(len(used)),
    )
    rows = band_rows(len(climatology.hours), dynamic.sizes[LONGITUDE])
    encoding = {
        str(name): {
            "compressors": [_codec()],
            "chunks": tuple(
                1 if d == LEVEL else min(rows, s) if d == LATITUDE else s for d, s in zip(var.dims, var.shape)
            ),
        }
        for name, var in template.data_vars.items()
    }
    template.to_zarr(tmp, group=CLIMATOLOGY_GROUP, mode="w-", compute=False, consolidated=False, encoding=encoding)
    group = zarr.open_group(tmp / CLIMATOLOGY_GROUP, mode="r+")
    done = None if progress is None else lambda bands, total: progress("climatology", bands, total)
    climatology.write({name: whole_chunks(group[name]) for name in climatology.sums}, done)


def _statistics_attrs(times: np.ndarray) -> dict[str, Any]:
    interval, _ = diff_interval(times)
    hours = float(interval / np.timedelta64(1, "h"))
    return {
        "statistics": "mean, std over time, latitude, longitude (unweighted, ddof=0, NaN skipped); "
        "diff_std = std of differences between fields diff_hours apart",
        "diff_hours": hours,
        "time_steps": int(len(times)),
    }
