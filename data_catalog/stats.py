"""Normalisation statistics of an ingested store, computed in one streaming pass.

The statistics group of a canonical store holds, for every variable, a DataArray with dims
``("statistic", ["level"])`` and ``statistic = ["mean", "std", "diff_std"]``: the mean and
standard deviation over time, latitude and longitude (every grid point weighs the same;
``ddof=0``; NaN values are skipped) and the standard deviation of the differences between
fields 6 hours apart (GraphCast-style residual normalisation). Static fields get their
spatial mean and std and ``diff_std = 0``.

``Moments`` merges per-block moments with the pairwise update of Chan, Golub & LeVeque
(1979), so the result does not depend on how the record is split into blocks and memory
does not grow with the record's length. The climatology lives in ``data_catalog.climatology``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.schema import LEVEL

STATISTICS: tuple[str, ...] = ("mean", "std", "diff_std")
STATISTICS_GROUP = "statistics"
CLIMATOLOGY_GROUP = "climatology"
DIFF_HOURS = 6  # diff_std is the std of differences between fields this many hours apart


@dataclass
class Moments:
    """Running count, mean and sum of squared deviations, one entry per level (or a scalar)."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> "Moments":
        return cls(np.zeros(shape), np.zeros(shape), np.zeros(shape))

    def add(self, values: np.ndarray, keep_axis: int | None) -> None:
        """Fold in a block of values, reducing every axis except ``keep_axis`` (NaN skipped)."""
        values = np.asarray(values)
        finite = self._finite_block(values, keep_axis)
        if finite is not None:
            self._merge(*finite)
            return
        rows = values.shape[keep_axis] if keep_axis is not None else 1
        x = np.moveaxis(values, keep_axis, 0) if keep_axis is not None else values
        x = np.array(x, dtype=np.float64, order="C").reshape(rows, -1)  # (kept, reduced), one private copy
        missing = np.isnan(x)
        has_missing = bool(missing.any())
        if has_missing:
            x[missing] = 0.0
            n = (~missing).sum(axis=1).astype(np.float64)
        else:
            n = np.full(rows, float(x.shape[1]))
        block_mean = np.divide(x.sum(axis=1), n, out=np.zeros(rows), where=n > 0)
        x -= block_mean[:, None]
        if has_missing:
            x[missing] = 0.0
        block_m2 = np.einsum("ij,ij->i", x, x)
        self._merge(n, block_mean, block_m2)

    @staticmethod
    def _finite_block(values: np.ndarray, keep_axis: int | None) -> tuple[np.ndarray, ...] | None:
        """(count, mean, m2) per kept row, one row's float64 copy at a time (cache-sized); None when a
        value is NaN or infinite (the caller then takes the NaN-skipping path)."""
        x = np.moveaxis(values, keep_axis, 0) if keep_axis is not None else values[np.newaxis]
        n, mean, m2 = np.empty(len(x)), np.empty(len(x)), np.empty(len(x))
        for i in range(len(x)):
            row = np.array(x[i], dtype=np.float64).ravel()
            total = row.sum()
            if not np.isfinite(total) or row.size == 0:
                return None
            n[i], mean[i] = row.size, total / row.size
            row -= mean[i]
            m2[i] = np.einsum("i,i->", row, row)
        return n, mean, m2

    def _merge(self, n: np.ndarray, block_mean: np.ndarray, block_m2: np.ndarray) -> None:
        """Chan et al.'s pairwise update with one block's (count, mean, m2) per row."""
        shape = self.count.shape
        n, block_mean, block_m2 = n.reshape(shape), block_mean.reshape(shape), block_m2.reshape(shape)
        merged = self.count + n
        delta = block_mean - self.mean
        safe = np.where(merged > 0, merged, 1.0)
        self.mean = self.mean + delta * n / safe
        self.m2 = self.m2 + block_m2 + delta**2 * self.count * n / safe
        self.count = merged

    @property
    def std(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, np.sqrt(self.m2 / np.where(self.count > 0, self.count, 1)), np.nan)

    @property
    def mean_or_nan(self) -> np.ndarray:
        return np.where(self.count > 0, self.mean, np.nan)


@dataclass
class StatisticsAccumulator:
    """Per-variable moments of the values and of their 6-hour differences."""

    levels: np.ndarray | None
    has_level: dict[str, bool]
    values: dict[str, Moments] = field(default_factory=dict)
    diffs: dict[str, Moments] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, with_level in self.has_level.items():
            shape = (len(self.levels),) if with_level else ()
            self.values[name] = Moments.empty(shape)
            self.diffs[name] = Moments.empty(shape)

    def add(self, name: str, values: np.ndarray, diffs: np.ndarray | None, *, level_axis: int | None) -> None:
        """Fold in a block (``values``) and the valid differences that end inside it."""
        self.values[name].add(values, level_axis)
        if diffs is not None:
            self.add_differences(name, diffs, level_axis=level_axis)

    def add_differences(self, name: str, diffs: np.ndarray, *, level_axis: int | None) -> None:
        """Fold in more valid differences (e.g. those across a block boundary)."""
        if diffs.size:
            self.diffs[name].add(diffs, level_axis)

    def to_dataset(self, *, static: tuple[str, ...] = (), attrs: dict | None = None) -> xr.Dataset:
        """The statistics group: one DataArray per variable, dims ("statistic", ["level"])."""
        out = {}
        for name, with_level in self.has_level.items():
            v, d = self.values[name], self.diffs[name]
            diff_std = np.zeros_like(v.mean) if name in static else d.std
            data = np.stack([v.mean_or_nan, v.std, diff_std]).astype(np.float64)
            dims = ("statistic", LEVEL) if with_level else ("statistic",)
            out[name] = (dims, data)
        coords: dict[str, object] = {"statistic": np.array(STATISTICS, dtype=object)}  # variable-length strings
        if self.levels is not None and any(self.has_level.values()):
            coords[LEVEL] = self.levels
        return xr.Dataset(out, coords=coords, attrs=attrs or {})


def read_statistics(store: str | os.PathLike) -> xr.Dataset:
    """The statistics group of an ingested store, loaded (it is small)."""
    return _open_group(store, STATISTICS_GROUP).load()


def read_climatology(store: str | os.PathLike) -> xr.Dataset:
    """The climatology group of an ingested store, lazily (dims hour, dayofyear, [level], lat, lon)."""
    return _open_group(store, CLIMATOLOGY_GROUP)


def _consolidated(store: str | os.PathLike) -> bool | None:
    """True for stores written by ingest (consolidated), None (let xarray try) otherwise."""
    import json

    try:
        with open(os.path.join(store, "zarr.json")) as handle:
            return True if json.load(handle).get("consolidated_metadata") else False
    except (OSError, ValueError):
        return None


def _open_group(store: str | os.PathLike, group: str) -> xr.Dataset:
    if not os.path.exists(store):
        raise DataInputError("store does not exist; expected a store written by `climate-optics ingest`", source=store)
    try:
        return xr.open_zarr(store, group=group, consolidated=_consolidated(store))
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise DataInputError(
            f"no {group!r} group ({type(exc).__name__}); expected a store written by `climate-optics ingest`",
            source=store,
        ) from None
