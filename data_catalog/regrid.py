"""Regridding on regular latitude-longitude grids: cell bounds, cell areas, conservative remapping.

``regrid`` takes a dataset to any other latitude-longitude grid (``grid_from_spec``: the
WeatherBench 2 grids ``64x32``, ``240x121``, ..., or ``Ndeg``): conservatively, with the exact
overlap areas of the cells on the sphere (two matrices, see ``conservative_weights``), or
bilinearly. ``coarsen_conservative`` is the special case of whole blocks of cells, computed
by the same remapping (one conservative path for ingest, the downscaler's coarse/fine pairs in
training, inference and skill scoring).

Grids follow the canonical schema: ``latitude`` ascending (cell centres, or centres plus the
two poles as in the 0.25/1.5 degree WeatherBench 2 grids), ``longitude`` ascending on 0..360.
A cell's latitude bounds are the midpoints between neighbouring centres, clipped to +-90;
its area on the unit sphere is ``dlon * (sin(lat_north) - sin(lat_south))``.

``coarsen_conservative`` merges ``factor x factor`` blocks of cells into one and gives the
new cell the area-weighted mean of the old ones: the integral of every field over the sphere
is preserved exactly (first-order conservative remapping, as in ESMF/xESMF "conservative"
when the coarse cells are unions of fine cells). Missing values are left out of the mean
and the rest renormalised.
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
    "conservative_weights",
    "grid_from_spec",
    "target_grid",
    "regrid",
]


def equiangular_latitudes(n_lat: int) -> np.ndarray:
    """Cell-centre latitudes of an equiangular grid with ``n_lat`` rows, ascending from the south."""
    step = 180.0 / n_lat
    return -90.0 + step * (np.arange(n_lat) + 0.5)


def equiangular_longitudes(n_lon: int) -> np.ndarray:
    """Longitudes 0, 360/n, ... of an equiangular grid with ``n_lon`` columns."""
    return np.arange(n_lon) * (360.0 / n_lon)


def _edges_1d(x: np.ndarray) -> np.ndarray:
    """(n, 2) bounds of a non-periodic axis: midpoints, outer cells as wide as their neighbours."""
    mid = 0.5 * (x[1:] + x[:-1])
    edges = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    return np.stack([edges[:-1], edges[1:]], axis=-1)


def latitude_bounds(lat: np.ndarray) -> np.ndarray:
    """(n_lat, 2) south/north bounds: midpoints between centres, outer edges clipped to +-90."""
    lat = np.asarray(lat, dtype=np.float64)
    if lat.ndim != 1 or lat.size < 2 or np.any(np.diff(lat) <= 0):
        raise DataInputError("latitude must be 1-D, ascending, with at least two values", variable=LATITUDE)
    return np.clip(_edges_1d(lat), -90.0, 90.0)


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

    The conservative remapping of ``regrid`` (the same overlap matrices and the same arithmetic)
    onto the grid whose cells are exactly the blocks: each coarse cell's bounds are those of
    its fine cells, so it is the area-weighted mean of the valid fine values it covers. The
    coarse latitude is the centre of the merged cell's latitude bounds; the coarse longitude
    the mean of its fine centres. Variables without both horizontal dimensions pass through.
    Raises DataInputError when the grid does not divide into whole blocks.
    """
    if not isinstance(factor, (int, np.integer)) or isinstance(factor, bool) or factor < 1:
        raise DataInputError(f"coarsening factor must be a positive integer, got {factor!r}")
    if factor == 1:
        return ds
    for dim in (LATITUDE, LONGITUDE):
        if dim not in ds.dims:
            raise DataInputError(f"cannot coarsen: dimension {dim!r} is missing (dims: {tuple(ds.dims)})")
        if ds.sizes[dim] % factor:
            raise DataInputError(
                f"cannot coarsen {dim} of size {ds.sizes[dim]} by a factor {factor}: not a whole number of blocks"
            )
    lon = np.asarray(ds[LONGITUDE].values, dtype=np.float64)
    lat_b = latitude_bounds(ds[LATITUDE].values)
    lon_b = longitude_bounds(lon) if _is_global(lon) else _edges_1d(lon)  # a region: its own outer edges
    blocks_lat = np.stack([lat_b[::factor, 0], lat_b[factor - 1 :: factor, 1]], axis=-1)  # (n_lat / factor, 2)
    blocks_lon = np.stack([lon_b[::factor, 0], lon_b[factor - 1 :: factor, 1]], axis=-1)
    w_lat, w_lon = _band_overlaps(lat_b, blocks_lat), _arc_overlaps(lon_b, blocks_lon, periodic=False)
    new_lat, new_lon = blocks_lat.mean(axis=1), blocks_lon.mean(axis=1)
    if isinstance(ds, xr.DataArray):
        name = ds.name if ds.name is not None else "_field"
        out = _remap(ds.to_dataset(name=name), w_lat, w_lon, new_lat, new_lon)[name]
        out.name = ds.name
        return out
    return _remap(ds, w_lat, w_lon, new_lat, new_lon)


# ----------------------------------------------------------------------------- regridding to any grid

# WeatherBench 2 grids by name (longitudes x latitudes): an odd row count includes both poles.
NAMED_GRIDS = ("64x32", "128x64", "240x121", "360x181", "1440x721")
METHODS = ("conservative", "bilinear")


def grid_from_spec(spec: str) -> tuple[np.ndarray, np.ndarray]:
    """(latitudes, longitudes) of ``LONxLAT`` (e.g. ``64x32``, ``240x121``) or ``Ndeg`` (e.g. ``1.5deg``).

    ``LONxLAT``: longitudes 0, 360/LON, ...; an odd LAT gives rows from pole to pole (-90, ..., 90),
    an even LAT cell centres (64x32: +-87.1875). ``Ndeg``: the WeatherBench 2 convention, cell
    centres when 180/N is a power of two (5.625deg = 64x32, 2.8125deg = 128x64), else pole to pole
    (1.5deg = 240x121, 0.25deg = 1440x721).
    """
    text = str(spec).strip().lower()
    try:
        if text.endswith("deg"):
            step = float(text[:-3])
            n_lon, n_rows = 360.0 / step, 180.0 / step
            if step <= 0 or abs(n_lon - round(n_lon)) > 1e-9 or abs(n_rows - round(n_rows)) > 1e-9:
                raise ValueError
            n_lon, n_rows = int(round(n_lon)), int(round(n_rows))
            n_lat = n_rows if n_rows & (n_rows - 1) == 0 else n_rows + 1
        else:
            n_lon, n_lat = (int(part) for part in text.split("x"))
    except ValueError:
        raise DataInputError(
            f"grid {spec!r}; expected LONxLAT (one of {', '.join(NAMED_GRIDS)}, or any other),"
            " Ndeg with N dividing 180 (e.g. 1.5deg), or a store to match"
        ) from None
    if n_lon < 4 or n_lat < 2:
        raise DataInputError(f"grid {spec!r} is too coarse; expected at least 4 longitudes and 2 latitudes")
    lat = np.linspace(-90.0, 90.0, n_lat) if n_lat % 2 else equiangular_latitudes(n_lat)
    return lat, equiangular_longitudes(n_lon)


def target_grid(spec: str, catalog=None) -> tuple[np.ndarray, np.ndarray]:
    """(latitudes, longitudes) of a grid name (``grid_from_spec``) or of an existing store or file to match."""
    import os

    if os.path.exists(str(spec)):
        from data_catalog.readers import open_dataset

        ds = open_dataset(spec, catalog=catalog, check_values=False)
        return ds[LATITUDE].values.astype(np.float64), ds[LONGITUDE].values.astype(np.float64)
    return grid_from_spec(spec)


def _is_global(lon: np.ndarray) -> bool:
    """Whether equally spaced longitudes go all the way round."""
    step = np.median(np.diff(lon)) if lon.size > 1 else 360.0
    return abs(lon.size * step - 360.0) < 0.5 * step


def _band_overlaps(src_bounds: np.ndarray, dst_bounds: np.ndarray) -> np.ndarray:
    """(n_dst, n_src) overlap in sin(latitude) of latitude bands given as (n, 2) bounds in degrees."""
    s, d = np.sin(np.deg2rad(src_bounds)), np.sin(np.deg2rad(dst_bounds))
    return np.clip(np.minimum(d[:, None, 1], s[None, :, 1]) - np.maximum(d[:, None, 0], s[None, :, 0]), 0.0, None)


def _arc_overlaps(src_bounds: np.ndarray, dst_bounds: np.ndarray, periodic: bool) -> np.ndarray:
    """(n_dst, n_src) overlap in radians of longitude intervals given as (n, 2) bounds in degrees."""
    total = np.zeros((len(dst_bounds), len(src_bounds)))
    for shift in (-360.0, 0.0, 360.0) if periodic else (0.0,):
        total += np.clip(
            np.minimum(dst_bounds[:, None, 1], src_bounds[None, :, 1] + shift)
            - np.maximum(dst_bounds[:, None, 0], src_bounds[None, :, 0] + shift),
            0.0,
            None,
        )
    return np.deg2rad(total)


def latitude_overlaps(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(n_dst, n_src) overlap of latitude bands in sin(latitude): the area on the unit sphere per radian of longitude."""
    return _band_overlaps(latitude_bounds(src), latitude_bounds(dst))


def longitude_overlaps(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(n_dst, n_src) overlap of longitude intervals in radians; a global grid wraps around 360 degrees."""
    periodic = _is_global(src) and _is_global(dst)
    s = longitude_bounds(src) if periodic else _edges_1d(np.asarray(src, dtype=np.float64))
    d = longitude_bounds(dst) if periodic else _edges_1d(np.asarray(dst, dtype=np.float64))
    return _arc_overlaps(s, d, periodic)


def conservative_weights(src_lat, src_lon, dst_lat, dst_lon) -> tuple[np.ndarray, np.ndarray]:
    """(W_lat, W_lon): overlap areas of destination and source cells are ``W_lat[I, i] * W_lon[J, j]``.

    Latitude-longitude cells are bounded by meridians and parallels, so the spherical area of the
    intersection of two cells is exactly the product of their latitude overlap in sin(latitude)
    and their longitude overlap in radians: first-order conservative remapping (as ESMF
    "conserve" on such cells) is two small matrices.
    """
    return latitude_overlaps(np.asarray(src_lat), np.asarray(dst_lat)), longitude_overlaps(
        np.asarray(src_lon), np.asarray(dst_lon)
    )


def _conservative_apply(x: np.ndarray, w_lat: np.ndarray, w_lon: np.ndarray) -> np.ndarray:
    """Area-weighted mean of the valid source values over each destination cell, (..., lat, lon) -> (..., LAT, LON)."""
    values = np.asarray(x, dtype=np.float64)
    valid = ~np.isnan(values)
    numerator = w_lat @ np.where(valid, values, 0.0) @ w_lon.T  # (..., LAT, LON)
    if valid.all():
        denominator = np.outer(w_lat.sum(axis=1), w_lon.sum(axis=1))  # covered area of each cell
    else:
        denominator = w_lat @ valid.astype(np.float64) @ w_lon.T  # NaNs renormalised: the valid area only
    with np.errstate(invalid="ignore", divide="ignore"):
        out = numerator / denominator
    return np.where(denominator > 0, out, np.nan).astype(x.dtype if x.dtype.kind == "f" else np.float64)


def regrid(ds: xr.Dataset, lat: np.ndarray, lon: np.ndarray, method: str = "conservative") -> xr.Dataset:
    """``ds`` (canonical) on the grid ``lat`` x ``lon``, lazily for dask-backed input.

    ``conservative``: area-weighted means over the exact overlaps (any ratio, poles and the periodic
    longitude included; missing values left out and the rest renormalised; NaN where a cell
    overlaps no valid value). ``bilinear``: linear in latitude and longitude (periodic when global),
    the edge rows held beyond the outermost source latitudes.
    """
    if method not in METHODS:
        raise DataInputError(f"regridding method {method!r}; expected one of {', '.join(METHODS)}")
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    if method == "bilinear":
        return _bilinear(ds, lat, lon)
    w_lat, w_lon = conservative_weights(ds[LATITUDE].values, ds[LONGITUDE].values, lat, lon)
    return _remap(ds, w_lat, w_lon, lat, lon)


def _remap(ds: xr.Dataset, w_lat: np.ndarray, w_lon: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> xr.Dataset:
    """Every horizontal field of ``ds`` remapped with the overlap matrices onto ``lat`` x ``lon`` (lazily for dask)."""
    out = {}
    for name, da in ds.data_vars.items():
        if LATITUDE not in da.dims or LONGITUDE not in da.dims:
            out[name] = da
            continue
        da = da.chunk({LATITUDE: -1, LONGITUDE: -1}) if da.chunks is not None else da
        new = xr.apply_ufunc(
            _conservative_apply,
            da,
            kwargs={"w_lat": w_lat, "w_lon": w_lon},
            input_core_dims=[[LATITUDE, LONGITUDE]],
            output_core_dims=[["_lat", "_lon"]],
            dask="parallelized",
            output_dtypes=[da.dtype],
            dask_gufunc_kwargs={"output_sizes": {"_lat": lat.size, "_lon": lon.size}},
        )
        out[name] = new.rename({"_lat": LATITUDE, "_lon": LONGITUDE}).transpose(*da.dims).assign_attrs(da.attrs)
    result = xr.Dataset(out, attrs=ds.attrs).assign_coords({LATITUDE: lat, LONGITUDE: lon})
    for dim in (LATITUDE, LONGITUDE):
        result[dim].attrs = dict(ds[dim].attrs)
    return result


def _bilinear(ds: xr.Dataset, lat: np.ndarray, lon: np.ndarray) -> xr.Dataset:
    src_lat, src_lon = ds[LATITUDE].values, ds[LONGITUDE].values
    if _is_global(src_lon):  # one wrapped column each side, so the seam at 360 degrees interpolates
        ds = xr.concat(
            [
                ds.isel({LONGITUDE: [-1]}).assign_coords({LONGITUDE: [src_lon[-1] - 360.0]}),
                ds,
                ds.isel({LONGITUDE: [0]}).assign_coords({LONGITUDE: [src_lon[0] + 360.0]}),
            ],
            dim=LONGITUDE,
            data_vars="minimal",
            coords="minimal",
        )
        ds = ds.chunk({LONGITUDE: -1}) if any(v.chunks is not None for v in ds.data_vars.values()) else ds
    wrapped = np.mod(lon - ds[LONGITUDE].values[0], 360.0) + ds[LONGITUDE].values[0]
    clamped = np.clip(lat, src_lat.min(), src_lat.max())  # beyond the outermost rows: the edge value
    out = ds.interp({LATITUDE: clamped, LONGITUDE: wrapped}, method="linear")
    return out.assign_coords({LATITUDE: lat, LONGITUDE: lon})
