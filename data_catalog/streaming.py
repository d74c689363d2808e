"""Streaming a record into a store in time order: pieces read once, written in whole chunks,
checked, and folded into the statistics and the climatology's daily sums (see ``data_catalog.ingest``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr

from data_catalog.climatology import Climatology
from data_catalog.errors import DataInputError
from data_catalog.schema import LEVEL, REALIZATION, TIME
from data_catalog.stats import DIFF_HOURS, StatisticsAccumulator

SCRATCH_DIR = "_climatology_sums"  # removed before the store is renamed into place
OPEN_FILES = 4  # source files kept open while streaming (an open NetCDF file caches chunks)
MAX_READ_CHUNKS = 4  # a source chunk of up to this many store chunks is read whole (decompressed once)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def diff_interval(times: np.ndarray) -> tuple[np.timedelta64, int]:
    """(interval, lag in steps) for diff_std: 6 hours when the time step divides 6 hours, else one step."""
    six = np.timedelta64(DIFF_HOURS, "h").astype("timedelta64[ns]")
    if len(times) < 2:
        return six, 1
    step = np.diff(times.astype("datetime64[ns]")).min()
    if six % step == np.timedelta64(0, "ns"):
        return six, int(six // step)
    return step, 1


def blocks(n_time: int, chunk: int) -> list[tuple[int, int]]:
    """Chunk-aligned (start, stop) blocks in time order (the order sources are laid out in)."""
    return [(start, min(start + chunk, n_time)) for start in range(0, n_time, chunk)]


def read_pieces(dynamic: xr.Dataset, chunk: int) -> list[tuple[int, int]] | None:
    """(start, stop) time ranges on the source's own dask chunk edges (each chunk read once, whole),
    consecutive small ones merged to at least ``chunk`` steps (fewer dask computations).

    None when the data are in memory or a source chunk is longer than MAX_READ_CHUNKS store
    chunks (memory); the caller then reads store-chunk blocks.
    """
    if TIME not in dynamic.dims:
        return None
    edges = {0, dynamic.sizes[TIME]}
    for da in dynamic.data_vars.values():
        if TIME not in da.dims:
            continue
        if da.chunks is None:
            return None
        sizes = da.chunks[da.get_axis_num(TIME)]
        if max(sizes) > MAX_READ_CHUNKS * chunk:
            return None
        edges.update(np.cumsum(sizes).tolist())
    pieces, start = [], 0
    for edge in sorted(edges)[1:]:
        if edge - start >= chunk or edge == dynamic.sizes[TIME]:
            pieces.append((start, edge))
            start = edge
    return pieces


class _VariableStream:
    """One variable's pieces, in time order: written in whole store chunks, checked and folded.

    A piece's trailing part of a chunk waits for the next piece (the last piece writes it all),
    so no chunk is written twice; the last ``lag`` steps stay for the next piece's differences.
    """

    def __init__(self, name: str, array: Any, dynamic: xr.Dataset, chunk: int, source: str):
        self.name, self.array, self.chunk, self.source = name, array, chunk, source
        self.dims = dynamic[name].dims
        self.level_axis = level_axis(self.dims)
        self.member_axis = self.dims.index(REALIZATION) if REALIZATION in self.dims else None
        self.times = dynamic[TIME].values
        self.interval, self.lag = diff_interval(self.times)
        self.carry: tuple[int, np.ndarray] | None = None  # (first step, steps not yet written)
        self.tail: np.ndarray | None = None  # the last `lag` steps before the next piece

    def fold(self, start: int, block: np.ndarray, statistics: StatisticsAccumulator, climatology: Climatology) -> None:
        """Check, write and fold the piece ``block`` (time, ...) of times start.. ."""
        _check_fields(block, self.times[start : start + len(block)], self.name, self.dims, self.source)
        self._write(start, block)
        statistics.add(self.name, block, None, level_axis=self.level_axis)
        for diffs in self._differences(start, block):
            statistics.add_differences(self.name, diffs, level_axis=self.level_axis)
        climatology.add(self.name, start, block if self.member_axis is None else member_mean(block, self.member_axis))

    def _write(self, start: int, block: np.ndarray) -> None:
        n_time = len(self.times)
        if self.carry is not None:  # complete the chunk the previous piece began
            first, kept = self.carry
            stop = min(first + self.chunk, n_time)
            need = stop - start
            kept = np.concatenate([kept, block[:need]])
            if first + len(kept) < stop:  # a piece shorter than the gap
                self.carry = (first, kept)
                return
            self.array[first:stop] = kept
            self.carry, start, block = None, stop, block[need:]
        # start is on a chunk boundary here
        stop = start + len(block)
        whole = stop if stop == n_time else start + len(block) // self.chunk * self.chunk
        if whole > start:
            self.array[start:whole] = block[: whole - start]
        if whole < stop:
            self.carry = (whole, block[whole - start :].copy())

    def _differences(self, start: int, block: np.ndarray) -> list[np.ndarray]:
        """Differences ``lag`` steps apart ending in this piece, pairs across gaps left out."""
        lag, parts, found = self.lag, [(start, block)], []
        if self.tail is not None:  # pairs across the boundary with the previous piece
            parts.insert(0, (start - len(self.tail), np.concatenate([self.tail, block[:lag]])))
        for first, values in parts:
            if len(values) <= lag:
                continue
            stamps = self.times[first : first + len(values)]
            pairs = (stamps[lag:] - stamps[:-lag]) == self.interval
            if pairs.any():
                diffs = values[lag:] - values[:-lag]
                found.append(diffs if pairs.all() else diffs[pairs])
        recent = block if self.tail is None or len(block) >= lag else np.concatenate([self.tail, block])
        self.tail = recent[-lag:].copy()
        return found


def stream_pieces(
    dynamic: xr.Dataset,
    tmp: Path,
    chunk: int,
    statistics: StatisticsAccumulator,
    source: str,
    progress: Progress | None,
    period: slice,
) -> Climatology:
    """Write every piece and fold it into the statistics and the climatology's daily sums."""
    import zarr

    times = dynamic[TIME].values
    todo = read_pieces(dynamic, chunk) or blocks(len(times), chunk)
    root = zarr.open_group(tmp, mode="r+")
    (tmp / SCRATCH_DIR).mkdir()
    fields = {
        str(name): tuple(n for d, n in da.sizes.items() if d not in (TIME, REALIZATION))
        for name, da in dynamic.data_vars.items()
    }  # members are averaged into the climatology
    climatology = Climatology(times, tmp / SCRATCH_DIR, fields, period)
    streams = {
        str(name): _VariableStream(str(name), whole_chunks(root[str(name)]), dynamic, chunk, source)
        for name in dynamic.data_vars
    }

    # On a dask.distributed client (climate-optics ingest --dask-workers/--dask-address) the cluster reads the pieces.
    scheduler = None if dask.config.get("scheduler", None) == "dask.distributed" else "synchronous"

    def load(piece: tuple[int, int]) -> xr.Dataset:
        return dynamic.isel({TIME: slice(*piece)}).compute(scheduler=scheduler)

    # Few open files: an open NetCDF file keeps its decompressed chunks cached (HDF5 chunk cache).
    # One thread loads the next piece while the others fold the current one, a variable each.
    workers = max(1, min(len(streams), os.cpu_count() or 1))
    with (
        xr.set_options(file_cache_maxsize=OPEN_FILES),
        ThreadPoolExecutor(max_workers=1) as reader,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        pending = reader.submit(load, todo[0]) if todo else None
        for position, (start, _) in enumerate(todo):
            loaded = pending.result()
            pending = reader.submit(load, todo[position + 1]) if position + 1 < len(todo) else None
            jobs = [
                pool.submit(stream.fold, start, loaded[name].values, statistics, climatology)
                for name, stream in streams.items()
            ]
            for job in jobs:
                job.result()  # re-raises the first error (e.g. an all-NaN field)
            del loaded, jobs
            if progress is not None:
                progress("write", position + 1, len(todo))
    return climatology


def level_axis(dims: tuple) -> int | None:
    """Position of ``level`` among a block's dims (None without levels)."""
    return dims.index(LEVEL) if LEVEL in dims else None


def member_mean(block: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ensemble members, NaN skipped (NaN where every member is): the climatology's input."""
    missing = np.isnan(block)
    if not missing.any():
        return block.mean(axis=axis, dtype=np.float64).astype(block.dtype)
    count = (~missing).sum(axis=axis)
    total = np.where(missing, 0, block).sum(axis=axis, dtype=np.float64)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(block.dtype)


def whole_chunks(array: Any) -> Any:
    """The array writing every chunk: skips zarr's per-chunk comparison with the fill value (no chunk is empty)."""
    return array.with_config({"write_empty_chunks": True})


def _check_fields(block: np.ndarray, times: np.ndarray, name: str, dims: tuple, source: str) -> None:
    """Reject a time step whose whole (member's, level's) field is NaN."""
    empty = np.isnan(block).all(axis=(-2, -1))  # (time[, realization][, level])
    if empty.any():
        index = np.argwhere(empty)[0]
        where = f" at time {np.datetime_as_string(times[index[0]], unit='m')}"
        for dim, position in zip(dims[1:-2], index[1:]):
            where += f", {dim} index {position}"
        raise DataInputError(f"all values are NaN{where}; expected a field with data", source=source, variable=name)
