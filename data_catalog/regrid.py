"""Regridding on regular latitude-longitude grids: cell bounds, cell areas, conservative coarsening.

Grids follow the canonical schema: ``latitude`` ascending (cell centres, or centres plus the
two poles as in the 0.25/1.5 degree WeatherBench 2 grids), ``longitude`` ascending on 0..360.
A cell's latitude bounds are the midpoints between neighbouring centres, clipped to +-90;
its area on the unit sphere is ``dlon * (sin(lat_north) - sin(lat_south))``.

``coarsen_conservative`` merges ``factor x factor`` blocks of cells into one and gives the
new cell the area-weighted mean of the old ones: the integral of every field over the sphere
is preserved exactly (first-order conservative remapping, as in ESMF/xESMF "conservative"
when the coarse cells are unions of fine cells). Missing values are left out of the mean.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.schema import LATITUDE, LONGITUDE

__all__ = [
    "latitude_bounds",
    "longitude_bounds",
    "cell_area_weights",
    "equiangular_latitudes",
    "equiangular_longitudes",
    "coarsen_conservative",
]


def equiangular_latitudes(n_lat: int) -> np.ndarray:
    """Cell-centre latitudes of an equiangular grid with ``n_lat`` rows, ascending from the south."""
    step = 180.0 / n_lat
    return -90.0 + step * (np.arange(n_lat) + 0.5)


def equiangular_longitudes(n_lon: int) -> np.ndarray:
    """Longitudes 0, 360/n, ... of an equiangular grid with ``n_lon`` columns."""
    return np.arange(n_lon) * (360.0 / n_lon)


def latitude_bounds(lat: np.ndarray) -> np.ndarray:
    """(n_lat, 2) south/north bounds: midpoints between centres, outer edges clipped to +-90."""
    lat = np.asarray(lat, dtype=np.float64)
    if lat.ndim != 1 or lat.size < 2 or np.any(np.diff(lat) <= 0):
        raise DataInputError("latitude must be 1-D, ascending, with at least two values", variable=LATITUDE)
    mid = 0.5 * (lat[1:] + lat[:-1])
    edges = np.concatenate([[lat[0] - (mid[0] - lat[0])], mid, [lat[-1] + (lat[-1] - mid[-1])]])
    edges = np.clip(edges, -90.0, 90.0)
    return np.stack([edges[:-1], edges[1:]], axis=-1)


def longitude_bounds(lon: np.ndarray) -> np.ndarray:
    """(n_lon, 2) west/east bounds: midpoints between centres (periodic grid)."""
    lon = np.asarray(lon, dtype=np.float64)
    if lon.ndim != 1 or lon.size < 2 or np.any(np.diff(lon) <= 0):
        raise DataInputError("longitude must be 1-D, ascending, with at least two values", variable=LONGITUDE)
    wrapped = np.concatenate([[lon[-1] - 360.0], lon, [lon[0] + 360.0]])
    mid = 0.5 * (wrapped[1:] + wrapped[:-1])
    return np.stack([mid[:-1], mid[1:]], axis=-1)


def cell_area_weights(lat: np.ndarray) -> np.ndarray:
    """Relative cell areas per latitude row: ``sin(north) - sin(south)``, normalised to mean 1."""
    bounds = np.deg2rad(latitude_bounds(lat))
    area = np.sin(bounds[:, 1]) - np.sin(bounds[:, 0])
    return area / area.mean()


def coarsen_conservative(ds: xr.Dataset | xr.DataArray, factor: int) -> xr.Dataset | xr.DataArray:
    """Area-weighted mean over ``factor x factor`` blocks of cells (lazy for dask-backed input).

    Variables without both horizontal dimensions (static scalars, time series) pass through.
    The coarse latitude is the centre of the merged cell's latitude bounds; the coarse
    longitude the mean of its fine centres. Raises DataInputError when the grid does not
    divide into whole blocks.
    """
    if not isinstance(factor, (int, np.integer)) or isinstance(factor, bool) or factor < 1:
        raise DataInputError(f"coarsening factor must be a positive integer, got {factor!r}")
    if factor == 1:
        return ds
    for dim in (LATITUDE, LONGITUDE):
        if dim not in ds.dims:
            raise DataInputError(f"cannot coarsen: dimension {dim!r} is missing (dims: {tuple(ds.dims)})")
        if ds.sizes[dim] % factor:
            raise DataInputError(f"cannot coarsen {dim} of size {ds.sizes[dim]} by a factor {factor}: not a whole number of blocks")
    lat = ds[LATITUDE].values
    lon = ds[LONGITUDE].values
    lat_b = latitude_bounds(lat)
    lon_b = longitude_bounds(lon)
    area = xr.DataArray(cell_area_weights(lat), dims=[LATITUDE], coords={LATITUDE: lat}) * xr.DataArray(
        (lon_b[:, 1] - lon_b[:, 0]) / (360.0 / lon.size), dims=[LONGITUDE], coords={LONGITUDE: lon}
    )
    coarse_lat_b = lat_b.reshape(-1, factor, 2)
    new_lat = 0.5 * (coarse_lat_b[:, 0, 0] + coarse_lat_b[:, -1, 1])
    new_lon = 0.5 * (lon_b[::factor, 0] + lon_b[factor - 1 :: factor, 1])

    def _coarsen(da: xr.DataArray) -> xr.DataArray:
        if LATITUDE not in da.dims or LONGITUDE not in da.dims:
            return da
        valid = da.notnull()
        weights = area * valid
        num = (da.fillna(0) * area).coarsen({LATITUDE: factor, LONGITUDE: factor}).sum()
        den = weights.coarsen({LATITUDE: factor, LONGITUDE: factor}).sum()
        out = (num / den.where(den > 0)).astype(da.dtype)
        out = out.assign_coords({LATITUDE: new_lat, LONGITUDE: new_lon}).transpose(*da.dims)
        out.attrs = dict(da.attrs)
        return out

    if isinstance(ds, xr.DataArray):
        return _coarsen(ds)
    out = ds.map(_coarsen, keep_attrs=True)
    out = out.assign_coords({LATITUDE: new_lat, LONGITUDE: new_lon})
    for dim in (LATITUDE, LONGITUDE):
        out[dim].attrs = dict(ds[dim].attrs)
    return out
