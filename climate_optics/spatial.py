"""Area weights and the area-weighted spatial mean used by every metric.

Weights follow WeatherBench 2: the area of each latitude band, from cell bounds half-way
between grid latitudes (and the poles), normalised to mean 1. A spatial mean over several
regions is one matrix product: ``(..., lat*lon) @ (lat*lon, region)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from data_catalog.errors import DataInputError
from data_catalog.schema import LATITUDE, LONGITUDE

LAT_LON = (LATITUDE, LONGITUDE)


def _latitudes(obj: Any) -> np.ndarray:
    latitude = obj[LATITUDE] if hasattr(obj, "coords") else obj
    return np.asarray(getattr(latitude, "values", latitude), dtype=np.float64)


def lat_weights(latitude: Any) -> Any:
    """Cell-area weights from latitude bounds, normalised to mean 1.

    ``latitude``: an xarray object with a latitude coordinate (returns a DataArray on
    ``latitude``) or an array of latitudes in degrees, ascending (returns an ndarray).
    """
    lat = _latitudes(latitude)
    if lat.ndim != 1 or lat.size == 0:
        raise DataInputError(f"latitude must be a non-empty 1-D coordinate, got shape {lat.shape}", variable=LATITUDE)
    if lat.size > 1 and not np.all(np.diff(lat) > 0):
        raise DataInputError("latitude must be strictly ascending (canonical schema: -90..90)", variable=LATITUDE)
    if lat[0] < -90 or lat[-1] > 90:
        raise DataInputError(f"latitude must lie in [-90, 90], got {lat[0]}..{lat[-1]}", variable=LATITUDE)
    rad = np.deg2rad(lat)
    bounds = np.concatenate([[-np.pi / 2], (rad[:-1] + rad[1:]) / 2, [np.pi / 2]])
    area = np.sin(bounds[1:]) - np.sin(bounds[:-1])  # integral of cos(lat) over each band
    weights = area / area.mean()
    if hasattr(latitude, "coords"):
        import xarray as xr

        return xr.DataArray(weights, dims=(LATITUDE,), coords={LATITUDE: lat}, name="lat_weights")
    return weights


@dataclass(frozen=True)
class AreaMean:
    """Area-weighted means over (latitude, longitude) for several regions at once.

    ``weights``: (R, lat, lon), each region's weights summing to 1.
    """

    weights: np.ndarray
    names: tuple[str, ...]

    @classmethod
    def build(cls, latitude: Any, longitude: Any, regions: Mapping[str, Any], land_sea_mask: Any = None) -> "AreaMean":
        """Weights for ``regions`` ({name: Region}) on a grid; regions that select no point are an error."""
        lat = _latitudes(latitude)
        lon = np.asarray(getattr(longitude, "values", longitude), dtype=np.float64)
        band = lat_weights(lat)[:, None] * np.ones((1, lon.size))  # (Y, X)
        stack = []
        for name, region in regions.items():
            w = band * region.mask(lat, lon, land_sea_mask)
            total = w.sum()
            if not total > 0:
                raise DataInputError(f"region {name!r} contains no grid point of this {lat.size}x{lon.size} grid")
            stack.append(w / total)
        return cls(np.stack(stack), tuple(regions))

    def reduce(self, x: np.ndarray) -> np.ndarray:
        """(..., lat, lon) -> (..., region); NaN outside a region does not leak into it."""
        w = self.weights.astype(np.result_type(x.dtype, np.float32), copy=False)
        out = np.tensordot(x, w, axes=([-2, -1], [1, 2]))
        missing = np.isnan(out)
        if missing.any():  # WeatherBench 2 semantics: zero-weight points are ignored, NaN inside propagates
            for r in np.flatnonzero(missing.reshape(-1, len(self.names)).any(axis=0)):
                inside = self.weights[r] > 0
                out[..., r] = np.tensordot(np.where(inside, x, 0), w[r], axes=([-2, -1], [0, 1]))
        return out


# ----------------------------------------------------------------------------- blockwise engine

STAT = "_stat"
REGION = "region"


def check_same_grid(arrays: list[Any]) -> None:
    """Every array has latitude and longitude, on the same grid as the first."""
    first = arrays[0]
    for dim in LAT_LON:
        for da in arrays:
            if dim not in da.dims:
                raise DataInputError(f"no {dim!r} dimension (dims: {', '.join(map(str, da.dims))})", variable=da.name)
            a, b = first[dim].values, da[dim].values
            if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
                raise DataInputError(
                    f"{dim} grids differ: {a.size} points {a.min():g}..{a.max():g} vs {b.size} points {b.min():g}..{b.max():g}",
                    variable=da.name,
                )


def whole_core(da: Any, core: list[str]) -> Any:
    """Dask arrays need each core dimension in one chunk."""
    if da.chunks is not None and any(len(da.chunksizes[d]) > 1 for d in core):
        return da.chunk({d: -1 for d in core})
    return da


@dataclass(frozen=True)
class _Reduced:
    """kernel then area mean: (..., S, Y, X) -> (..., S, R)."""

    kernel: Any
    area: AreaMean

    def __call__(self, *blocks: np.ndarray) -> np.ndarray:
        return self.area.reduce(self.kernel(*blocks))


def apply_kernel(kernel: Any, inputs: list[tuple[Any, list[str]]], n_stats: int, area: AreaMean | None) -> Any:
    """Run a numpy ``kernel`` block by block, then (unless ``area`` is None) the area mean.

    ``inputs``: (DataArray, core dims) pairs; core dims end with (latitude, longitude)
    [+ realization]. ``kernel(*blocks) -> (..., n_stats, lat, lon)``. Returns a DataArray with
    dims (..., _stat, region), or (..., _stat, latitude, longitude) when ``area`` is None.
    Dask inputs give a lazy result (one task per block); numpy inputs compute at once.
    """
    import xarray as xr

    arrays = [whole_core(da, core) for da, core in inputs]
    check_same_grid(arrays)
    dtype = np.result_type(*(a.dtype for a in arrays), np.float32)
    if area is None:
        func, out_core, sizes = kernel, [STAT, *LAT_LON], {STAT: n_stats}
    else:
        func, out_core, sizes = _Reduced(kernel, area), [STAT, REGION], {STAT: n_stats, REGION: len(area.names)}
    out = xr.apply_ufunc(
        func,
        *arrays,
        input_core_dims=[core for _, core in inputs],
        output_core_dims=[out_core],
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs={"output_sizes": sizes},
    )
    return out if area is None else out.assign_coords({REGION: list(area.names)})
