"""The area-weighted spatial mean used by every metric, and the blockwise engine that applies kernels.

Weights are the latitude weights of ``weights.py`` times each region's mask. A spatial mean
over several regions is one matrix product: ``(..., lat*lon) @ (lat*lon, region)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import xarray as xr

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
        """Weights for ``regions`` ({name: Region}) on a grid; regions that select no point are an error.
        Without a land-sea mask the weights of a grid and regions are made once (read-only, shared)."""
        lat = np.asarray(getattr(latitude, "values", latitude), dtype=np.float64)
        lon = np.asarray(getattr(longitude, "values", longitude), dtype=np.float64)
        if land_sea_mask is None:
            try:
                return _area_on_grid(lat.tobytes(), lon.tobytes(), tuple(regions.items()))
            except TypeError:  # a region that cannot be hashed: made anew
                pass
        return cls._make(lat, lon, regions, land_sea_mask)

    @classmethod
    def _make(cls, lat: np.ndarray, lon: np.ndarray, regions: Mapping[str, Any], land_sea_mask: Any) -> "AreaMean":
        band = lat_weights(lat)[:, None] * np.ones((1, lon.size))  # (Y, X)
        stack = []
        for name, region in regions.items():
            w = band * region.mask(lat, lon, land_sea_mask)
            total = w.sum()
            if not total > 0:
                raise DataInputError(f"region {name!r} contains no grid point of this {lat.size}x{lon.size} grid")
            stack.append(w / total)
        weights = np.stack(stack)
        weights.setflags(write=False)
        return cls(weights, tuple(regions))

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


@lru_cache(maxsize=32)
def _area_on_grid(lat: bytes, lon: bytes, regions: tuple[tuple[str, Any], ...]) -> AreaMean:
    return AreaMean._make(np.frombuffer(lat), np.frombuffer(lon), dict(regions), None)


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
            a, b = _coordinate(first, dim), _coordinate(da, dim)
            if a is b or (a.shape == b.shape and np.array_equal(a, b)):
                continue
            if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
                raise DataInputError(
                    f"{dim} grids differ: {a.size} points {a.min():g}..{a.max():g} vs {b.size} points {b.min():g}..{b.max():g}",
                    variable=da.name,
                )


def _coordinate(da: Any, dim: str) -> np.ndarray:
    """The values of ``da``'s coordinate ``dim`` (its positions where it has none), without a DataArray per call."""
    variable = da.coords.variables.get(dim)
    return np.arange(da.sizes[dim]) if variable is None else variable.values


def whole_core(da: Any, core: list[str]) -> Any:
    """Dask arrays need each core dimension in one chunk."""
    if da.chunks is not None and any(len(da.chunksizes[d]) > 1 for d in core):
        return da.chunk({d: -1 for d in core})
    return da


@dataclass(frozen=True)
class _Reduced:
    """kernel then area mean: (..., S, Y, X) -> (..., S, R); a kernel with ``parts`` (a list of
    (..., S_i, Y, X) whose concatenation is its result) is reduced part by part."""

    kernel: Any
    area: AreaMean

    def __call__(self, *blocks: np.ndarray) -> np.ndarray:
        parts = getattr(self.kernel, "parts", None)
        if parts is None:
            return self.area.reduce(self.kernel(*blocks))
        # each part's area mean, then the small results stacked: the fields are never concatenated
        return stack_broadcast([self.area.reduce(p) for p in parts(*blocks)], axis=-2)


def stack_broadcast(parts: list[np.ndarray], axis: int) -> np.ndarray:
    """Concatenate along ``axis`` (negative) after broadcasting the dimensions before it."""
    shape = np.broadcast_shapes(*(p.shape[:axis] for p in parts))
    return np.concatenate([np.broadcast_to(p, shape + p.shape[axis:]) for p in parts], axis=axis)


def apply_kernel(kernel: Any, inputs: list[tuple[Any, list[str]]], n_stats: int, area: AreaMean | None) -> Any:
    """Run a numpy ``kernel`` block by block, then (unless ``area`` is None) the area mean.

    ``inputs``: (DataArray, core dims) pairs; core dims end with (latitude, longitude)
    [+ realization]. ``kernel(*blocks) -> (..., n_stats, lat, lon)``. Returns a DataArray with
    dims (..., _stat, region), or (..., _stat, latitude, longitude) when ``area`` is None.
    Dask inputs give a lazy result (one task per block, ``xarray.apply_ufunc``); numpy inputs
    compute at once, through the same broadcasting without xarray's per-call machinery.
    """

    arrays = [whole_core(da, core) for da, core in inputs]
    check_same_grid(arrays)
    cores = [core for _, core in inputs]
    if area is None:
        func, out_core, sizes = kernel, [STAT, *LAT_LON], {STAT: n_stats}
    else:
        func, out_core, sizes = _Reduced(kernel, area), [STAT, REGION], {STAT: n_stats, REGION: len(area.names)}
    regions = {} if area is None else {REGION: list(area.names)}
    if not any(da.chunks is not None for da in arrays):
        out = _in_memory(func, arrays, cores, out_core, regions)
        if out is not None:
            return out
    out = xr.apply_ufunc(
        func,
        *arrays,
        input_core_dims=cores,
        output_core_dims=[out_core],
        dask="parallelized",
        output_dtypes=[np.result_type(*(a.dtype for a in arrays), np.float32)],
        dask_gufunc_kwargs={"output_sizes": sizes},
    )
    return out.assign_coords(regions) if regions else out


@lru_cache(maxsize=64)
def _index_coordinate(name: str, values: tuple) -> Any:
    """``xarray.Coordinates({name: values})`` with its index, made once (coordinates and indexes are immutable)."""

    return xr.Coordinates({name: list(values)})


def _in_memory(func: Any, arrays: list[Any], cores: list[list[str]], out_core: list[str], extra: dict[str, Any]) -> Any:
    """``apply_ufunc``'s result for numpy-backed inputs, or None where its alignment or coordinate
    merging has a decision to make (indexes or coordinates that differ): the caller then asks it.

    As there: broadcast dims in order of appearance, missing ones as length-1 axes before the
    core dims; coordinates merged from the inputs, except those on dims the output drops; the
    first input's name and attributes.
    """

    if not _apply_ufunc_keeps_first(xr.get_options()["keep_attrs"]):
        return None
    core_dims = {d for core in cores for d in core}
    loop: list[str] = []
    for da in arrays:
        loop += [d for d in da.dims if d not in core_dims and d not in loop]
    sizes = [dict(zip(da.dims, da.shape)) for da in arrays]
    for d in loop:
        if len({size[d] for size in sizes if d in size}) > 1:  # conflicting sizes: xarray's error
            return None
    kept = set(loop) | set(out_core)
    variables: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    for da in arrays:
        for name, variable in da.coords.variables.items():
            if not set(variable.dims) <= kept:
                continue
            if name not in variables:
                variables[name] = variable
                if name in da.xindexes:
                    indexes[name] = da.xindexes[name]  # reused: no new pandas index per call
                    if len(da.xindexes.get_all_coords(name)) > 1:  # a multi-coordinate index: xarray's rules
                        return None
            elif variables[name] is not variable and not variables[name].equals(
                variable
            ):  # join="exact", or a conflict
                return None
    blocks = []
    for da, size, core in zip(arrays, sizes, cores):
        own = [d for d in loop if d in size]
        data = da.transpose(*own, *core).data if list(da.dims) != own + list(core) else da.data
        blocks.append(data.reshape([size.get(d, 1) for d in loop] + [size[d] for d in core]))
    result = func(*blocks)  # (*loop, *out_core)
    for name, values in extra.items():
        added = _index_coordinate(name, tuple(values))
        variables[name], indexes[name] = added.variables[name], added.xindexes[name]
    return xr.DataArray(
        result,
        dims=[*loop, *out_core],
        coords=xr.Coordinates(variables, indexes=indexes),
        name=arrays[0].name,
        attrs=dict(arrays[0].attrs),
    )


@lru_cache(maxsize=4)
def _apply_ufunc_keeps_first(option: Any) -> bool:
    """Whether ``apply_ufunc`` under the ``keep_attrs`` option gives the first input's name and attributes
    (combine_attrs "override", its default in this xarray), the one behaviour the in-memory path copies."""

    a = xr.DataArray([1.0], dims="x", coords={"x": xr.Variable("x", [0], {"c": 1})}, name="a", attrs={"k": 1})
    b = xr.DataArray([1.0], dims="x", coords={"x": xr.Variable("x", [0], {"c": 2})}, name="b", attrs={"k": 2})
    out = xr.apply_ufunc(np.add, a, b)
    return out.name == "a" and out.attrs == {"k": 1} and out["x"].attrs == {"c": 1}
