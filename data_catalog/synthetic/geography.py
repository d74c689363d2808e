"""Idealised geography: smooth continents and mountain ranges as analytic functions of (lat, lon).

The layout is a cartoon of the real one (a Eurasia-like and an America-like block in the
north, Africa, South America, Australia, Antarctica) so that land-sea contrasts, stationary
waves and diurnal cycles sit where a reader of the maps expects them. Edges are smooth
(``tanh`` over about 2 degrees) so spectral truncation of the orography rings little.
Values on a grid are cell means from ``SUPERSAMPLE x SUPERSAMPLE`` sub-points, so the land
fraction and the surface geopotential coarsen conservatively like every other field.
"""

from __future__ import annotations

import numpy as np

from data_catalog.schema import GRAVITY

SUPERSAMPLE = 4
EDGE_WIDTH_DEG = 2.0

# (lon_west, lon_east, lat_south, lat_north) boxes, degrees east / north; west > east wraps 0.
CONTINENTS: tuple[tuple[float, float, float, float], ...] = (
    (-10.0, 140.0, 35.0, 72.0),  # Eurasia
    (60.0, 120.0, 8.0, 40.0),  # South and East Asia
    (345.0, 50.0, -34.0, 35.0),  # Africa
    (235.0, 300.0, 15.0, 68.0),  # North America
    (280.0, 322.0, -54.0, 10.0),  # South America
    (114.0, 152.0, -38.0, -14.0),  # Australia
    (0.0, 360.0, -90.0, -70.0),  # Antarctica
)

# (lon_centre, lat_centre, lon_half_width, lat_half_width, height_m): elliptical Gaussian ridges.
MOUNTAINS: tuple[tuple[float, float, float, float, float], ...] = (
    (88.0, 33.0, 14.0, 5.0, 4500.0),  # Tibetan plateau
    (245.0, 45.0, 5.0, 14.0, 2500.0),  # Rocky Mountains
    (290.0, -25.0, 3.0, 22.0, 3500.0),  # Andes
    (0.0, -82.0, 180.0, 8.0, 2800.0),  # Antarctic dome (zonally uniform)
    (20.0, 0.0, 18.0, 14.0, 900.0),  # African highlands
)
CONTINENTAL_BASE_M = 250.0  # mean elevation of land outside the ranges


def _wrap(dlon: np.ndarray) -> np.ndarray:
    return (dlon + 180.0) % 360.0 - 180.0


def _box(lat: np.ndarray, lon: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    west, east, south, north = box
    width = (east - west) % 360.0 or 360.0
    if width >= 360.0:
        in_lon = np.ones_like(lon)
    else:
        centre = west + width / 2.0
        dist = np.abs(_wrap(lon - centre)) - width / 2.0  # < 0 inside
        in_lon = 0.5 * (1.0 - np.tanh(dist / EDGE_WIDTH_DEG))
    in_lat = (
        0.5 * (1.0 - np.tanh((south - lat) / EDGE_WIDTH_DEG)) * 0.5 * (1.0 - np.tanh((lat - north) / EDGE_WIDTH_DEG))
    )
    return in_lon * in_lat


def land_fraction_at(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Smooth land indicator in [0, 1] at points (broadcasting lat, lon in degrees)."""
    lat, lon = np.broadcast_arrays(np.asarray(lat, float), np.asarray(lon, float))
    land = np.zeros(lat.shape)
    for box in CONTINENTS:
        land = np.maximum(land, _box(lat, lon, box))
    return land


def orography_at(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Surface height in metres at points (zero over the ocean)."""
    lat, lon = np.broadcast_arrays(np.asarray(lat, float), np.asarray(lon, float))
    height = np.full(lat.shape, CONTINENTAL_BASE_M)
    for lon0, lat0, half_lon, half_lat, top in MOUNTAINS:
        height += top * np.exp(-((_wrap(lon - lon0) / half_lon) ** 2) - ((lat - lat0) / half_lat) ** 2)
    return height * land_fraction_at(lat, lon)


def _cell_means(func, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Means of func over SUPERSAMPLE^2 sub-points of each cell of a regular grid: (n_lat, n_lon)."""
    dlat = 180.0 / lat.size
    dlon = 360.0 / lon.size
    offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    sub_lat = (lat[:, None] + offsets[None, :] * dlat).reshape(-1)
    sub_lon = (lon[:, None] + offsets[None, :] * dlon).reshape(-1)
    weights = np.cos(np.deg2rad(sub_lat))[:, None]
    values = func(sub_lat[:, None], sub_lon[None, :]) * weights
    values = values.reshape(lat.size, SUPERSAMPLE, lon.size, SUPERSAMPLE).sum(axis=(1, 3))
    return values / (weights.reshape(lat.size, SUPERSAMPLE).sum(axis=1)[:, None] * SUPERSAMPLE)


def static_fields(lat: np.ndarray, lon: np.ndarray) -> dict[str, np.ndarray]:
    """``land_sea_mask`` [1] and ``geopotential_at_surface`` [m2 s-2] as cell means on an equiangular grid."""
    return {
        "land_sea_mask": _cell_means(land_fraction_at, lat, lon),
        "geopotential_at_surface": GRAVITY * _cell_means(orography_at, lat, lon),
    }
