"""A WeatherBench 2-layout climatology, computed while streaming through the record.

Layout: every time-dependent variable with dims ``(hour, dayofyear, [level], latitude,
longitude)``; ``hour`` holds the hours of day present in the record, ``dayofyear`` is 1..366.

Method (the same idea as WeatherBench 2's hourly climatology, computed in two passes that
each hold a bounded amount of data):

1. Daily sums. Each block of time steps (read in time order, as the source is laid out) is
   scattered into per-(day of year, hour) float64 sums of the days it covers and added to a
   scratch file (``DailySums``); days not yet in the file are written without reading it back,
   so a record of up to a year never reads the file. Memory holds a block and its days' sums,
   whatever the record's length.
2. Smoothing. Along ``dayofyear`` (circular: 31 December neighbours 1 January) the raw means
   are averaged with a triangular window of half-width 30 days, each day weighted by its
   number of time steps: ``clim[d] = sum_k w_k n[d+k] m[d+k] / sum_k w_k n[d+k]`` with
   ``w_k = 1 - |k| / 31``. Since ``n m`` is the day's sum, the numerator is the window sum of
   the daily sums and the denominator that of the step counts, one small array for the whole
   grid. The window is two circular running sums (O(n), over whole rows of the grid). This
   runs band by band (one level, a few latitude rows, all days), so memory is bounded by the
   band size (``BAND_VALUES``), not by the grid or the record.

``ingest --climatology-period START:END`` builds it from those times only (an out-of-sample
climatology, as WeatherBench 2 scores 2020 against 1990-2019); the group's attributes record
the period used (``climatology_period_start``/``_end``) so that evaluation can check it.

Days with no data within the window are NaN (records shorter than a year). A cell with
missing values keeps its day's full weight when at least one value is present: its sum is
scaled to ``n`` steps (``n * mean``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from data_catalog.errors import DataInputError

HALF_WIDTH_DAYS = 30
DAYS = 366
BAND_VALUES = 1 << 20  # values per smoothing band and stored climatology chunk: 4 MiB of float32, as the data's
SUMS_IN_MEMORY_BYTES = 1 << 30  # daily sums of all variables up to this size stay in memory, else scratch files


def stamp(value: np.datetime64) -> str:
    """A time as an ISO string to the second."""
    return str(np.datetime_as_string(np.datetime64(value, "ns"), unit="s"))


def parse_period(period: Any, source: str) -> tuple[str, str]:
    """``"START:END"`` (dates), ``"START/END"`` (any ISO times) or a (start, end) pair -> (start, end)."""
    if isinstance(period, (tuple, list)) and len(period) == 2:
        return str(period[0]), str(period[1])
    text = str(period)
    parts = text.split("/") if "/" in text else text.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise DataInputError(
            f"climatology period {text!r}; expected START:END dates (e.g. 1990-01-01:2019-12-31)"
            " or START/END ISO times",
            source=source,
        )
    return parts[0].strip(), parts[1].strip()


def period_indices(times: np.ndarray, period: Any, source: str) -> slice:
    """The time indices inside ``period`` (both ends inclusive, dates cover their whole day); all if None."""
    import pandas as pd

    if period is None:
        return slice(0, len(times))
    start, end = parse_period(period, source)
    try:
        chosen = pd.DatetimeIndex(times).slice_indexer(start, end)
    except (ValueError, TypeError, KeyError) as exc:
        raise DataInputError(f"climatology period {start}..{end} not understood ({exc})", source=source) from None
    first, stop, _ = chosen.indices(len(times))
    if stop <= first:
        raise DataInputError(
            f"climatology period {start}..{end} holds no time of the record ({stamp(times[0])}.."
            f"{stamp(times[-1])}); expected a period inside it",
            source=source,
        )
    return slice(first, stop)


def window_weights(half_width: int = HALF_WIDTH_DAYS) -> np.ndarray:
    """Triangular weights w_k = 1 - |k| / (half_width + 1), k = -half_width..half_width."""
    k = np.arange(-half_width, half_width + 1)
    return 1.0 - np.abs(k) / (half_width + 1)


def hours_and_days(times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hours present, hour index per time, day of year 1..366 per time)."""
    stamps = xr.DataArray(np.asarray(times, dtype="datetime64[ns]"), dims="time").dt
    hour = stamps.hour.values
    hours = np.unique(hour)
    return hours, np.searchsorted(hours, hour), stamps.dayofyear.values


def day_runs(day: np.ndarray) -> list[tuple[int, int]]:
    """(first, stop) of each run of consecutive days among ``day`` (0-based days of year)."""
    days = np.unique(day)
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(days, np.flatnonzero(np.diff(days) != 1) + 1)]


def unique_slots(day: np.ndarray, hour: np.ndarray, n_hour: int) -> bool:
    """Whether every (day, hour) pair occurs once (a block shorter than a year: the usual case)."""
    key = day.astype(np.int64) * n_hour + hour
    return len(np.unique(key)) == len(key)


def whole_days(day: np.ndarray, hour: np.ndarray, values: np.ndarray, n_hour: int) -> np.ndarray | None:
    """``values`` (time, level, lat, lon) viewed as (days, level, hour, lat, lon) when the steps are
    every hour of days 0, 1, ... in order (a regular record cut at midnight), else None."""
    if len(day) == 0 or len(day) % n_hour:
        return None
    n_day = len(day) // n_hour
    if not (
        np.array_equal(hour, np.tile(np.arange(n_hour), n_day))
        and np.array_equal(day, np.repeat(np.arange(n_day), n_hour))
    ):
        return None
    return values.reshape(n_day, n_hour, *values.shape[1:]).swapaxes(1, 2)


class DaySlabs:
    """A (dayofyear, level, hour, lat, lon) array of zeros-initialised sums, updated day range by day range.

    Held in anonymous memory (``path`` None) or in a sparse scratch file that is read back
    only where a later year adds to days already written, so the process holds a block's
    days, not the array. Anonymous memory is mapped with ``mmap`` rather than allocated by
    numpy, which would ask for transparent huge pages: their first touch cost 2-3 times more
    on the virtual machine this was measured on, and these pages are touched once.
    """

    def __init__(self, shape: tuple[int, ...], dtype: type, path: Path | None):
        import mmap

        self.shape, self.dtype, self.path = shape, np.dtype(dtype), path
        self.written = np.zeros(shape[0], dtype=bool)  # days holding sums
        nbytes = int(np.prod(shape)) * self.dtype.itemsize
        if path is None:
            self.memory: np.ndarray | None = np.frombuffer(
                mmap.mmap(-1, max(nbytes, 1)), self.dtype, count=int(np.prod(shape))
            ).reshape(shape)
        else:
            self.memory = None
            with path.open("wb") as handle:
                handle.truncate(nbytes)  # sparse: zeros until written

    def add(self, first: int, stop: int, day: np.ndarray, hour: np.ndarray, values: np.ndarray) -> None:
        """Add ``values`` (time, level, lat, lon) at slots (first + day, hour) of days first..stop-1."""
        fresh = not self.written[first:stop].any()
        once = unique_slots(day, hour, self.shape[2])
        region = (
            self.memory[first:stop]
            if self.memory is not None
            else np.zeros((stop - first, *self.shape[1:]), self.dtype)
        )
        slots = (day, slice(None), hour)
        days = whole_days(day, hour, values, self.shape[2])  # (days, level, hour, lat, lon) view, or None
        if days is not None and len(days) == len(region):  # no gather or scatter
            if fresh or self.memory is None:
                region[...] = days
            else:
                region += days
        elif once and (fresh or self.memory is None):
            region[slots] = values  # zeros there: assigning is adding
        elif once:
            region[slots] += values
        else:  # a (day, hour) more than once in the block (e.g. monthly steps over several years)
            np.add.at(region, slots, values)
        if self.memory is None:
            with self.path.open("r+b") as handle:
                handle.seek(first * region[0].nbytes)
                if not fresh:  # a later year: add to what is there
                    region += np.fromfile(handle, self.dtype, count=region.size).reshape(region.shape)
                    handle.seek(first * region[0].nbytes)
                region.tofile(handle)
        self.written[first:stop] = True

    def band(self, level: int, rows: slice) -> np.ndarray:
        """The sums of one level and latitude rows, (dayofyear, hour, rows, lon); a view when in memory."""
        if self.memory is not None:
            return self.memory[:, level, :, rows]
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r", shape=self.shape)
        try:
            return np.array(mapped[:, level, :, rows])
        finally:
            del mapped


class DailySums:
    """Sums per (day of year, hour) of one variable, updated block by block.

    Layout (dayofyear, level, hour, lat, lon): the days a block covers are one contiguous
    region. Sums are float64, or the data's own float type when ``once`` says that every
    (day, hour) slot receives at most one value (a record of up to a year): the "sum" is then
    the value itself, exact, in half the memory. Per-cell counts of missing values are kept
    alongside, from the first NaN seen. ``path`` None keeps them in memory, else in scratch
    files ``path`` and ``path.missing``.
    """

    def __init__(self, path: str | os.PathLike | None, n_hour: int, field: tuple[int, ...], once: bool = False):
        self.path = None if path is None else Path(path)
        self.has_level = len(field) == 3
        self.shape = (DAYS, field[0] if self.has_level else 1, n_hour, *field[-2:])
        self.once = once
        self.sums: DaySlabs | None = None  # created by the first block, in its dtype when `once`
        self.missing: DaySlabs | None = None

    def _slabs(self, dtype: np.dtype) -> DaySlabs:
        if self.sums is None:
            exact = self.once and dtype.kind == "f" and dtype.itemsize <= 8
            self.sums = DaySlabs(self.shape, dtype.type if exact else np.float64, self.path)
        return self.sums

    def add(self, doy: np.ndarray, hour: np.ndarray, values: np.ndarray) -> None:
        """Add ``values`` (time, [level], lat, lon) at days ``doy`` (1..366) and hour indices ``hour``."""
        values = values if self.has_level else values[:, np.newaxis]  # (time, level, lat, lon)
        sums = self._slabs(values.dtype)
        missing = np.isnan(values)
        has_missing = bool(missing.any())
        if has_missing:
            values = np.where(missing, 0, values)
            if self.missing is None:
                self.missing = DaySlabs(
                    self.shape, np.int32, None if self.path is None else self.path.with_suffix(".missing")
                )
        day = np.asarray(doy) - 1
        for first, stop in day_runs(day):
            rows = (day >= first) & (day < stop)
            every = bool(rows.all())
            d, h = day[rows] - first, hour[rows]
            sums.add(first, stop, d, h, values if every else values[rows])
            lost = missing if every else missing[rows]
            if has_missing and lost.any():
                self.missing.add(first, stop, d, h, lost)

    def read_band(self, level: int, rows: slice) -> tuple[np.ndarray, np.ndarray | None]:
        """(sums, missing-value counts or None when nothing was missing), each (dayofyear, hour, rows, lon)."""
        sums = self._slabs(np.dtype(np.float64))  # zeros if no block came
        return sums.band(level, rows), None if self.missing is None else self.missing.band(level, rows)


class Climatology:
    """Streaming climatology of a record: daily sums per variable, then smoothing into a store."""

    def __init__(
        self, times: np.ndarray, directory: Path, fields: dict[str, tuple[int, ...]], period: slice | None = None
    ):
        """``fields``: each variable's field shape ([level,] lat, lon); scratch files go to ``directory``;
        ``period``: the time indices the climatology is built from (default: all)."""
        self.period = slice(*(period or slice(0, len(times))).indices(len(times)))
        used = times[self.period]
        self.hours, hour_index, doy = hours_and_days(used)
        self.hour_index = np.zeros(len(times), dtype=np.int64)
        self.doy = np.ones(len(times), dtype=np.int64)
        self.hour_index[self.period], self.doy[self.period] = hour_index, doy
        self.steps = np.zeros((len(self.hours), DAYS), dtype=np.int64)  # time steps per (hour, day)
        np.add.at(self.steps, (hour_index, doy - 1), 1)
        n_hour = len(self.hours)
        nbytes = sum(DAYS * n_hour * int(np.prod(field)) * 8 for field in fields.values())
        in_memory = nbytes <= SUMS_IN_MEMORY_BYTES  # the same for any record length: memory stays flat
        once = bool(self.steps.max() <= 1)  # one value per (hour, day): sums kept in the data's dtype
        self.sums = {
            name: DailySums(None if in_memory else directory / f"{name}.sums", n_hour, field, once)
            for name, field in fields.items()
        }

    def add(self, name: str, start: int, values: np.ndarray) -> None:
        """Add a block of one variable: ``values`` (time, *field) for times start.. (those in the period)."""
        first, stop = max(start, self.period.start), min(start + len(values), self.period.stop)
        if first >= stop:
            return
        if (first, stop) != (start, start + len(values)):
            values = values[first - start : stop - start]
        self.sums[name].add(self.doy[first:stop], self.hour_index[first:stop], values)

    def write(self, arrays: dict, done: Callable[[int, int], None] | None = None) -> None:
        """Smooth every variable band by band into ``arrays[name]`` (bands in parallel threads).

        ``done(bands finished, bands in all)`` is called after each band.
        """
        from concurrent.futures import ThreadPoolExecutor

        steps = self.steps.T.astype(np.float64)  # (dayofyear, hour)
        weight = circular_window_sum(steps, HALF_WIDTH_DAYS, axis=0)  # (dayofyear, hour), cells with no NaN

        def one(name: str, level: int, band: slice) -> None:
            sums = self.sums[name]
            total, missing = sums.read_band(level, band)  # (dayofyear, hour, rows, lon)
            if missing is None:  # the usual case: smoothed, divided and cast in one pass, in the stored order
                smoothed = smooth_into(total, weight, arrays[name].dtype)  # (hour, dayofyear, rows, lon)
            else:
                smoothed = smooth_sums(total, steps, missing, weight).transpose(1, 0, 2, 3).astype(arrays[name].dtype)
            target = (slice(None), slice(None), level, band) if sums.has_level else (slice(None), slice(None), band)
            arrays[name][target] = smoothed

        jobs = []
        for name, sums in self.sums.items():
            _, n_level, n_hour, n_lat, n_lon = sums.shape
            rows = band_rows(n_hour, n_lon)  # one stored chunk per band
            jobs += [
                (name, level, slice(start, min(start + rows, n_lat)))
                for level in range(n_level)
                for start in range(0, n_lat, rows)
            ]
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            for count, _ in enumerate(pool.map(lambda job: one(*job), jobs), start=1):  # numpy and zarr release the GIL
                if done is not None:
                    done(count, len(jobs))


def _circular_box_sum(x: np.ndarray, radius: int) -> np.ndarray:
    """sum_{k=-radius..radius} x[(i + k) mod n] along axis 0 (float64), as a running sum over whole rows."""
    n = len(x)
    out = np.empty(x.shape, dtype=np.float64)
    out[0] = x[np.arange(-radius, radius + 1) % n].sum(axis=0, dtype=np.float64)  # the window around row 0
    for i in range(1, n):  # each step a whole row: vectorised over the grid, written in place
        np.add(out[i - 1], x[(i + radius) % n], out=out[i])
        out[i] -= x[(i - radius - 1) % n]
    return out


def circular_window_sum(x: np.ndarray, half_width: int, axis: int) -> np.ndarray:
    """sum_k w_k x[(i + k) mod n] with the triangular ``window_weights(half_width)``.

    The triangle 1 - |k| / (h + 1) is a box of width h + 1 convolved with itself, divided by
    h + 1: two circular running sums give it in O(n) (h must be even so that the box is centred).
    """
    if half_width % 2:
        raise ValueError(f"half_width must be even, got {half_width}")
    rows = np.moveaxis(np.asarray(x), axis, 0)  # float32 sums are widened row by row
    once = _circular_box_sum(rows, half_width // 2)
    twice = _circular_box_sum(once, half_width // 2)
    twice /= half_width + 1
    return np.moveaxis(twice, 0, axis)


def smooth_into(total: np.ndarray, weight: np.ndarray, dtype: Any, half_width: int = HALF_WIDTH_DAYS) -> np.ndarray:
    """``smooth_sums`` without missing values, as (hour, dayofyear, ...) in ``dtype``: the second running
    sum divides each day by its window weight (``weight`` (dayofyear, hour)) and casts it into place."""
    if half_width % 2:
        raise ValueError(f"half_width must be even, got {half_width}")
    radius, n = half_width // 2, len(total)
    once = _circular_box_sum(total, radius)  # (dayofyear, hour, ...) float64
    with np.errstate(divide="ignore"):
        scale = np.where(weight > 0, 1.0 / ((half_width + 1) * weight), np.nan)  # NaN: no data in the window
    scale = scale.reshape(scale.shape + (1,) * (total.ndim - 2))  # (dayofyear, hour, 1, ...)
    out = np.empty((total.shape[1], n, *total.shape[2:]), dtype=dtype)
    running = once[np.arange(-radius, radius + 1) % n].sum(axis=0)  # (hour, ...): the window around day 1
    for i in range(n):
        if i:
            running += once[(i + radius) % n]
            running -= once[(i - radius - 1) % n]
        np.multiply(running, scale[i], out=out[:, i], casting="same_kind")
    return out


def smooth_sums(
    total: np.ndarray,
    steps: np.ndarray,
    missing: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    half_width: int = HALF_WIDTH_DAYS,
) -> np.ndarray:
    """Smoothed climatology (dayofyear, hour, ...) from daily sums ``total`` (dayofyear, hour, ...).

    ``steps`` (dayofyear, hour) counts the time steps summed per day and hour; ``missing``
    (like ``total``) the values missing per cell, None when none was; ``weight`` is
    the window sum of ``steps`` (computed when not given). NaN where the window holds no data.
    """
    n = steps.reshape(steps.shape + (1,) * (total.ndim - 2))  # (dayofyear, hour, 1, ...)
    if missing is None:
        numerator = total
        if weight is None:
            weight = circular_window_sum(steps, half_width, axis=0)
        weight = weight.reshape(n.shape)
    else:  # n * mean where a value is present, the day's full weight there
        present = n - missing
        has = present > 0
        numerator = np.where(has, total * (n / np.maximum(present, 1)), 0.0)
        weight = circular_window_sum(has * n, half_width, axis=0)
    smoothed = circular_window_sum(numerator, half_width, axis=0)
    empty = weight <= 0
    np.divide(smoothed, np.where(empty, 1.0, weight), out=smoothed)
    if empty.any():
        smoothed[np.broadcast_to(empty, smoothed.shape)] = np.nan
    return smoothed


def band_rows(n_hour: int, n_lon: int) -> int:
    """Latitude rows per smoothing band and stored climatology chunk (about BAND_VALUES values)."""
    return max(1, BAND_VALUES // (n_hour * DAYS * n_lon))


def climatology_template(dynamic: xr.Dataset, hours: np.ndarray) -> xr.Dataset:
    """The climatology group's layout (lazy zeros, never computed), for writing metadata."""
    import dask.array as da

    out = {}
    for name, var in dynamic.data_vars.items():
        field = [d for d in var.dims if d not in ("time", "realization")]  # ensemble members are averaged
        dims = ("hour", "dayofyear", *field)
        shape = (len(hours), DAYS, *(var.sizes[d] for d in field))
        out[name] = xr.Variable(dims, da.zeros(shape, dtype=var.dtype, chunks=-1), dict(var.attrs))
    coords = {"hour": hours, "dayofyear": np.arange(1, DAYS + 1)}
    coords |= {d: dynamic[d].values for d in dynamic.dims if d not in ("time", "realization")}
    return xr.Dataset(
        out,
        coords=coords,
        attrs={
            "method": "raw (hour, dayofyear) means smoothed along dayofyear with a circular triangular window of "
            f"half-width {HALF_WIDTH_DAYS} days, each day weighted by its number of time steps",
            "window_half_width_days": HALF_WIDTH_DAYS,
        },
    )
