"""A WeatherBench 2-layout climatology, computed while streaming through the record.

Layout: every time-dependent variable with dims ``(hour, dayofyear, [level], latitude,
longitude)``; ``hour`` holds the hours of day present in the record, ``dayofyear`` is 1..366.

Method (the same idea as WeatherBench 2's hourly climatology, computed in two passes that
each hold a bounded amount of data):

1. Raw means. Each time step is added to the sum for its (hour, day of year); a day's sums
   are complete once the last block that touches it has been processed (blocks arrive in
   day-of-year order), and its raw mean is then written to a scratch file and forgotten.
2. Smoothing. Along ``dayofyear`` (circular: 31 December neighbours 1 January) the raw means
   are averaged with a triangular window of half-width 30 days, each day weighted by its
   number of time steps: ``clim[d] = sum_k w_k n[d+k] m[d+k] / sum_k w_k n[d+k]`` with
   ``w_k = 1 - |k| / 31`` (two cumulative-sum box filters). This runs band by band (one level,
   a few latitude rows, all days; one stored chunk each), so memory is bounded by the band
   size (``band_rows``), not by the grid or the record.

Days with no data within the window are NaN (records shorter than a year). A cell with
missing values keeps its day's full weight when at least one value is present.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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


class RawClimatology:
    """Sums per (hour, day of year), flushed as raw means once a day can no longer change.

    ``blocks`` are (start, stop) index ranges into ``times`` in the order they will be added;
    ``sink(name, doy, raw_mean)`` receives a (n_hour, *field) float32 array per day and variable.
    """

    def __init__(self, times: np.ndarray, blocks: Sequence[tuple[int, int]],
                 sink: Callable[[str, int, np.ndarray], None]):
        self.hours, self.hour_index, self.doy = hours_and_days(times)
        self.counts = np.zeros((len(self.hours), DAYS), dtype=np.int64)  # time steps per (hour, day)
        np.add.at(self.counts, (self.hour_index, self.doy - 1), 1)
        self.last_block = np.full(DAYS + 1, -1)
        for position, (start, stop) in enumerate(blocks):
            self.last_block[np.unique(self.doy[start:stop])] = position
        self.sink = sink
        self._open: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}

    def add(self, name: str, start: int, values: np.ndarray) -> None:
        """Add a block of one variable: ``values`` (time, *field) for times start.. ."""
        doy = self.doy[start:start + len(values)]
        hour = self.hour_index[start:start + len(values)]
        field_shape = values.shape[1:]
        for d in np.unique(doy):
            sums, counts = self._open.setdefault(int(d), {}).setdefault(
                name,
                (np.zeros((len(self.hours), *field_shape)), np.zeros((len(self.hours), *field_shape), np.int32)),
            )
            for h in np.unique(hour[doy == d]):
                rows = np.asarray(values[(doy == d) & (hour == h)], dtype=np.float64)
                valid = ~np.isnan(rows)
                sums[h] += np.where(valid, rows, 0.0).sum(axis=0)
                counts[h] += valid.sum(axis=0, dtype=np.int32)

    def finish_block(self, position: int) -> None:
        """Flush every day whose last block was ``position``."""
        for d in [d for d in self._open if self.last_block[d] == position]:
            for name, (sums, counts) in self._open.pop(d).items():
                with np.errstate(invalid="ignore", divide="ignore"):
                    raw = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).astype(np.float32)
                self.sink(name, d, raw)

    @property
    def open_days(self) -> int:
        return len(self._open)


class RawDays:
    """Raw daily means of one variable in a flat scratch file, laid out (level, dayofyear, hour, lat, lon).

    Each day is written once; days never written read as NaN. ``read(level, rows)`` returns one
    level and a band of latitude rows for every day, so smoothing holds one band at a time.
    The file is mapped only for the duration of each call.
    """

    def __init__(self, path: str | os.PathLike, n_hour: int, field: tuple[int, ...]):
        self.path = Path(path)
        self.has_level = len(field) == 3
        n_level = field[0] if self.has_level else 1
        self.shape = (n_level, DAYS, n_hour, *field[-2:])
        self.written = np.zeros(DAYS, dtype=bool)
        np.memmap(self.path, dtype=np.float32, mode="w+", shape=self.shape).flush()  # sparse file

    def _map(self, mode: str) -> np.memmap:
        return np.memmap(self.path, dtype=np.float32, mode=mode, shape=self.shape)

    def write(self, doy: int, raw: np.ndarray) -> None:
        """``raw``: (hour, [level], lat, lon) means of day ``doy`` (1..366)."""
        mapped = self._map("r+")
        mapped[:, doy - 1] = np.moveaxis(raw, 1, 0) if self.has_level else raw[np.newaxis]
        mapped.flush()
        del mapped
        self.written[doy - 1] = True

    def read(self, level: int, rows: slice) -> np.ndarray:
        """(hour, dayofyear, rows, lon) float64, NaN on days never written."""
        mapped = self._map("r")
        band = np.array(mapped[level, :, :, rows], dtype=np.float64)
        del mapped
        band[~self.written] = np.nan
        return np.moveaxis(band, 0, 1)


def circular_box_sum(x: np.ndarray, half: int, axis: int) -> np.ndarray:
    """sum_{|k| <= half} x[(i + k) mod n] along ``axis``, by a cumulative sum (O(n))."""
    n = x.shape[axis]
    ends = (np.take(x, range(n - half, n), axis), x, np.take(x, range(half), axis))
    padded = np.cumsum(np.concatenate(ends, axis=axis), axis=axis, dtype=np.float64)
    zero = np.zeros_like(np.take(padded, [0], axis))
    padded = np.concatenate([zero, padded], axis=axis)
    upper, lower = [slice(None)] * x.ndim, [slice(None)] * x.ndim
    upper[axis], lower[axis] = slice(2 * half + 1, 2 * half + 1 + n), slice(0, n)
    return padded[tuple(upper)] - padded[tuple(lower)]


def circular_window_sum(x: np.ndarray, half_width: int, axis: int) -> np.ndarray:
    """sum_k w_k x[(i + k) mod n] with the triangular ``window_weights(half_width)``.

    The triangle 1 - |k| / (h + 1) is a box of width h + 1 convolved with itself, divided by
    h + 1, so two cumulative-sum box filters give it in O(n) (h must be even).
    """
    if half_width % 2:
        raise ValueError(f"half_width must be even, got {half_width}")
    box = half_width // 2
    return circular_box_sum(circular_box_sum(x, box, axis), box, axis) / (half_width + 1)


def smooth_days(raw: np.ndarray, counts: np.ndarray, half_width: int = HALF_WIDTH_DAYS) -> np.ndarray:
    """Smoothed climatology of raw means (hour, dayofyear, ...) weighted by (hour, dayofyear) step counts."""
    raw = np.ascontiguousarray(np.moveaxis(raw, 1, 0))  # (dayofyear, hour, ...): cumsum on the leading axis
    n = counts.T.reshape(counts.T.shape + (1,) * (raw.ndim - 2)).astype(np.float64)
    present = ~np.isnan(raw)
    total = circular_window_sum(np.where(present, raw, 0.0) * n, half_width, axis=0)
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


def write_smoothed(raw: RawDays, counts: np.ndarray, array) -> None:
    """Smooth ``raw`` band by band (one stored chunk each) into the zarr ``array``."""
    n_level, _, n_hour, n_lat, n_lon = raw.shape
    rows = band_rows(n_hour, n_lon)
    for level in range(n_level):
        for start in range(0, n_lat, rows):
            band = slice(start, min(start + rows, n_lat))
            smoothed = smooth_days(raw.read(level, band), counts).astype(array.dtype)
            if raw.has_level:
                array[:, :, level, band] = smoothed
            else:
                array[:, :, band] = smoothed
