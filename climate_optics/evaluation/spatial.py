"""The area-weighted spatial mean used by every metric, and the blockwise engine that applies kernels.

Weights are the latitude weights of ``weights.py`` times each region's mask. A spatial mean
over several regions is one matrix product: ``(..., lat*lon) @ (lat*lon, region)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from climate_optics.evaluation.weights import lat_weights
from data_catalog.errors import DataInputError
from data_catalog.schema import LATITUDE, LONGITUDE

LAT_LON = (LATITUDE, LONGITUDE)


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
        lat = np.asarray(getattr(latitude, "values", latitude), dtype=np.float64)
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
