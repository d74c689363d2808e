"""A WeatherBench 2-layout climatology, computed while streaming through the record.

Layout: every time-dependent variable with dims ``(hour, dayofyear, [level], latitude,
longitude)``; ``hour`` holds the hours of day present in the record, ``dayofyear`` is 1..366.

Method (the same idea as WeatherBench 2's hourly climatology, computed in two passes that
each hold a bounded amount of data):

1. Daily sums. Each block of time steps (read in time order, as the source is laid out) is
   added to per-(day of year, hour) sums kept in a float64 scratch file, one day's slab at
   a time; memory holds a block and one day, whatever the record's length.
2. Smoothing. Along ``dayofyear`` (circular: 31 December neighbours 1 January) the raw means
   are averaged with a triangular window of half-width 30 days, each day weighted by its
   number of time steps: ``clim[d] = sum_k w_k n[d+k] m[d+k] / sum_k w_k n[d+k]`` with
   ``w_k = 1 - |k| / 31`` (two running-mean box filters). This runs band by band (one level,
   a few latitude rows, all days; one stored chunk each), so memory is bounded by the band
   size (``band_rows``), not by the grid or the record.

Days with no data within the window are NaN (records shorter than a year). A cell with
missing values keeps its day's full weight when at least one value is present.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

HALF_WIDTH_DAYS = 30
DAYS = 366
BAND_VALUES = 1 << 18  # values per smoothing band (and stored chunk): 1 MiB of float32


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


class DailySums:
    """Sums per (day of year, hour) of one variable in a float64 scratch file, updated block by block.

    Layout (dayofyear, level, hour, lat, lon): a day's sums are one contiguous slab, read,
    added to and written back when a block touches that day. Per-cell counts of missing
    values go to a second file, created only if a NaN is ever seen.
    """

    def __init__(self, path: str | os.PathLike, n_hour: int, field: tuple[int, ...]):
        self.path = Path(path)
        self.has_level = len(field) == 3
        self.shape = (DAYS, field[0] if self.has_level else 1, n_hour, *field[-2:])
        self.missing_path: Path | None = None
        self._create(self.path)

    def _create(self, path: Path) -> None:
        with path.open("wb") as handle:
            handle.truncate(int(np.prod(self.shape)) * 8)  # sparse: zeros until written

    def _update(self, path: Path, dtype: type, first_doy: int, increment: np.ndarray) -> None:
        """Add ``increment`` (days, *slab) to consecutive days starting at ``first_doy``."""
        offset = (first_doy - 1) * int(np.prod(self.shape[1:])) * 8
        with path.open("r+b") as handle:
            handle.seek(offset)
            current = np.frombuffer(handle.read(increment.size * 8), dtype=dtype).reshape(increment.shape)
            handle.seek(offset)
            handle.write((current + increment).astype(dtype).tobytes())

    def add(self, doy: np.ndarray, hour: np.ndarray, values: np.ndarray) -> None:
        """Add ``values`` (time, [level], lat, lon) at days ``doy`` (1..366) and hour indices ``hour``."""
        values = values if self.has_level else values[:, np.newaxis]  # (time, level, lat, lon)
        missing = np.isnan(values)
        has_missing = bool(missing.any())
        if has_missing and self.missing_path is None:
            self.missing_path = self.path.with_suffix(".missing")
            self._create(self.missing_path)
        days = np.unique(doy)
        for run in np.split(days, np.flatnonzero(np.diff(days) != 1) + 1):  # consecutive days: one read/write
            total = np.zeros((len(run), *self.shape[1:]))
            lost = np.zeros(total.shape, dtype=np.int64)
            for i, d in enumerate(run):
                for h in np.unique(hour[doy == d]):
                    rows = (doy == d) & (hour == h)
                    if has_missing:
                        lost[i, :, h] = missing[rows].sum(axis=0)
                        total[i, :, h] = np.where(missing[rows], 0.0, values[rows]).sum(axis=0)
                    else:
                        total[i, :, h] = values[rows].sum(axis=0, dtype=np.float64)
            self._update(self.path, np.float64, int(run[0]), total)
            if self.missing_path is not None and lost.any():
                self._update(self.missing_path, np.int64, int(run[0]), lost)

    def read_mean(self, level: int, rows: slice, steps: np.ndarray) -> np.ndarray:
        """Raw means (hour, dayofyear, rows, lon) of one level; NaN where nothing was added.

        ``steps`` (hour, dayofyear) counts the time steps added per day and hour.
        """
        mapped = np.memmap(self.path, dtype=np.float64, mode="r", shape=self.shape)
        total = np.array(mapped[:, level, :, rows])  # (dayofyear, hour, rows, lon)
        del mapped
        n = np.broadcast_to(steps.T[:, :, None, None], total.shape).astype(np.int64)
        if self.missing_path is not None:
            mapped = np.memmap(self.missing_path, dtype=np.int64, mode="r", shape=self.shape)
            n = n - mapped[:, level, :, rows]
            del mapped
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        return np.moveaxis(mean, 0, 1)


class Climatology:
    """Streaming climatology of a record: daily sums per variable, then smoothing into a store."""

    def __init__(self, times: np.ndarray, directory: Path, fields: dict[str, tuple[int, ...]]):
        self.hours, self.hour_index, self.doy = hours_and_days(times)
        self.steps = np.zeros((len(self.hours), DAYS), dtype=np.int64)  # time steps per (hour, day)
        np.add.at(self.steps, (self.hour_index, self.doy - 1), 1)
        self.sums = {name: DailySums(directory / f"{name}.f64", len(self.hours), field)
                     for name, field in fields.items()}

    def add(self, name: str, start: int, values: np.ndarray) -> None:
        """Add a block of one variable: ``values`` (time, *field) for times start.. ."""
        stop = start + len(values)
        self.sums[name].add(self.doy[start:stop], self.hour_index[start:stop], values)

    def write(self, name: str, array) -> None:
        """Smooth one variable band by band (one stored chunk each, bands in parallel) into ``array``."""
        from concurrent.futures import ThreadPoolExecutor

        sums = self.sums[name]
        _, n_level, n_hour, n_lat, n_lon = sums.shape
        rows = band_rows(n_hour, n_lon)

        def one(level: int, band: slice) -> None:
            smoothed = smooth_days(sums.read_mean(level, band, self.steps), self.steps).astype(array.dtype)
            if sums.has_level:
                array[:, :, level, band] = smoothed
            else:
                array[:, :, band] = smoothed

        bands = [(level, slice(start, min(start + rows, n_lat)))
                 for level in range(n_level) for start in range(0, n_lat, rows)]
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            list(pool.map(lambda job: one(*job), bands))  # numpy, scipy and zarr release the GIL


def circular_window_sum(x: np.ndarray, half_width: int, axis: int) -> np.ndarray:
    """sum_k w_k x[(i + k) mod n] with the triangular ``window_weights(half_width)``.

    The triangle 1 - |k| / (h + 1) is a box of width h + 1 convolved with itself, divided by
    h + 1: two running-mean passes (scipy's ``uniform_filter1d``, periodic) give it in O(n)
    (h must be even so that the box is centred).
    """
    from scipy.ndimage import uniform_filter1d

    if half_width % 2:
        raise ValueError(f"half_width must be even, got {half_width}")
    width = half_width + 1
    once = uniform_filter1d(np.asarray(x, dtype=np.float64), width, axis=axis, mode="wrap")
    return uniform_filter1d(once, width, axis=axis, mode="wrap") * width


def smooth_days(raw: np.ndarray, counts: np.ndarray, half_width: int = HALF_WIDTH_DAYS) -> np.ndarray:
    """Smoothed climatology of raw means (hour, dayofyear, ...) weighted by (hour, dayofyear) step counts."""
    raw = np.ascontiguousarray(np.moveaxis(raw, 1, 0))  # (dayofyear, hour, ...): cumsum on the leading axis
    n = counts.T.reshape(counts.T.shape + (1,) * (raw.ndim - 2)).astype(np.float64)
    present = ~np.isnan(raw)
    cells = tuple(range(2, raw.ndim))
    day_present = present.all(axis=cells)  # (dayofyear, hour)
    total = circular_window_sum(np.where(present, raw, 0.0) * n, half_width, axis=0)
    if (day_present == present.any(axis=cells)).all():  # days are missing everywhere or nowhere
        weight = circular_window_sum(day_present * counts.T, half_width, axis=0).reshape(n.shape)
    else:
        weight = circular_window_sum(present * n, half_width, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        smoothed = np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), np.nan)
    return np.moveaxis(smoothed, 0, 1)


def band_rows(n_hour: int, n_lon: int) -> int:
    """Latitude rows per smoothing band and per stored climatology chunk (about BAND_VALUES values)."""
    return max(1, BAND_VALUES // (n_hour * DAYS * n_lon))


def climatology_template(dynamic: xr.Dataset, hours: np.ndarray) -> xr.Dataset:
    """The climatology group's layout (lazy zeros, never computed), for writing metadata."""
    import dask.array as da

    out = {}
    for name, var in dynamic.data_vars.items():
        dims = ("hour", "dayofyear", *var.dims[1:])
        shape = (len(hours), DAYS, *var.shape[1:])
        out[name] = xr.Variable(dims, da.zeros(shape, dtype=var.dtype, chunks=-1), dict(var.attrs))
    coords = {"hour": hours, "dayofyear": np.arange(1, DAYS + 1)}
    coords |= {d: dynamic[d].values for d in dynamic.dims if d != "time"}
    return xr.Dataset(out, coords=coords, attrs={
        "method": "raw (hour, dayofyear) means smoothed along dayofyear with a circular triangular window of "
                  f"half-width {HALF_WIDTH_DAYS} days, each day weighted by its number of time steps",
        "window_half_width_days": HALF_WIDTH_DAYS,
    })
