"""A WeatherBench 2-layout climatology, computed while streaming through the record.

Layout: every time-dependent variable with dims ``(hour, dayofyear, [level], latitude,
longitude)``; ``hour`` holds the hours of day present in the record, ``dayofyear`` is 1..366.

Method (the same idea as WeatherBench 2's hourly climatology, computed in two passes that
each hold a bounded amount of data):

1. Raw means. Each time step is added to the sum for its (hour, day of year); a day's sums
   are complete once the last block that touches it has been processed (blocks arrive in
   day-of-year order), and its raw mean is then written to a scratch group and forgotten.
2. Smoothing. Along ``dayofyear`` (circular: 31 December neighbours 1 January) the raw means
   are averaged with a triangular window of half-width 30 days, each day weighted by its
   number of time steps: ``clim[d] = sum_k w_k n[d+k] m[d+k] / sum_k w_k n[d+k]`` with
   ``w_k = 1 - |k| / 31``. This runs as a dask ``map_overlap`` over day-of-year chunks.

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
DOY_CHUNK = 61  # 366 = 6 x 61; must be >= HALF_WIDTH_DAYS for the overlap


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
    """Raw daily means of one variable in a flat scratch file, laid out (dayofyear, hour, *field).

    Each day is written once with one ``write``; days never written read as NaN. Indexing
    (``raw[a:b]`` along the day axis) reads only those days, so dask can stream it in chunks.
    """

    def __init__(self, path: str | os.PathLike, n_hour: int, field: tuple[int, ...]):
        self.path = Path(path)
        self.shape = (DAYS, n_hour, *field)
        self.dtype = np.dtype("float32")
        self.ndim = len(self.shape)
        self._day_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self._written = np.zeros(DAYS, dtype=bool)
        self.path.touch()

    def write(self, doy: int, raw: np.ndarray) -> None:
        with self.path.open("r+b") as handle:
            handle.seek((doy - 1) * self._day_bytes)
            handle.write(np.ascontiguousarray(raw, dtype=self.dtype).tobytes())
        self._written[doy - 1] = True

    def __getitem__(self, key: tuple) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        days = range(DAYS)[key[0]]
        out = np.full((len(days), *self.shape[1:]), np.nan, dtype=self.dtype)
        with self.path.open("rb") as handle:
            for i, d in enumerate(days):
                if self._written[d]:
                    handle.seek(d * self._day_bytes)
                    out[i] = np.frombuffer(handle.read(self._day_bytes), dtype=self.dtype).reshape(self.shape[1:])
        return out[(slice(None), *key[1:])]

    def to_dataarray(self, dims: tuple[str, ...], chunk_days: int = 61) -> xr.DataArray:
        """Lazy (hour, dayofyear, *field) DataArray over the file."""
        import dask.array as da

        arr = da.from_array(self, chunks=(chunk_days, *self.shape[1:]), lock=False, asarray=True)
        return xr.DataArray(arr, dims=("dayofyear", "hour", *dims)).transpose("hour", "dayofyear", ...)


def _window_sum(block: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """sum_k w_k block[i + k] along ``axis``; the ``half`` edge entries are left at zero (trimmed)."""
    half = len(weights) // 2
    n = block.shape[axis]
    out = np.zeros(block.shape, dtype=np.float64)
    inner = [slice(None)] * block.ndim
    inner[axis] = slice(half, n - half)
    for k, w in enumerate(weights):
        source = [slice(None)] * block.ndim
        source[axis] = slice(k, n - 2 * half + k)
        out[tuple(inner)] += w * block[tuple(source)]
    return out


def circular_smooth(data: xr.DataArray, half_width: int = HALF_WIDTH_DAYS) -> xr.DataArray:
    """Weighted window sum along ``dayofyear``, periodic; lazy (dask map_overlap)."""
    import dask.array as da

    axis = data.dims.index("dayofyear")
    arr = data.data if isinstance(data.data, da.Array) else da.from_array(data.values, chunks=-1)
    if min(arr.chunks[axis]) < half_width:
        arr = arr.rechunk({axis: DOY_CHUNK})
    result = da.map_overlap(
        _window_sum, arr, depth={axis: half_width}, boundary={axis: "periodic"},
        dtype=np.float64, weights=window_weights(half_width), axis=axis,
    )
    return data.copy(data=result)


def smooth_climatology(raw: xr.Dataset, counts: np.ndarray, hours: np.ndarray,
                       half_width: int = HALF_WIDTH_DAYS) -> xr.Dataset:
    """Smoothed climatology from raw (hour, dayofyear, ...) means and (hour, dayofyear) step counts."""
    n = xr.DataArray(counts.astype(np.float64), dims=("hour", "dayofyear"))
    out = {}
    for name, mean in raw.data_vars.items():
        weighted = circular_smooth(mean.fillna(0.0) * n, half_width)
        weight = circular_smooth(mean.notnull() * n, half_width)
        clim = (weighted / weight.where(weight > 0)).astype(mean.dtype)
        clim.attrs = dict(mean.attrs)
        out[name] = clim
    result = xr.Dataset(out, coords={"hour": hours, "dayofyear": np.arange(1, DAYS + 1)})
    result.attrs = {
        "method": f"raw (hour, dayofyear) means smoothed along dayofyear with a circular triangular window "
                  f"of half-width {half_width} days, each day weighted by its number of time steps",
        "window_half_width_days": half_width,
    }
    return result
