"""Latitude weights: the one area weighting used by every metric and by the training loss.

The weight of a latitude row is the area of its cells, ``sin(north) - sin(south)`` with bounds
half-way between grid latitudes (outer bounds half a spacing out, clipped to the poles;
``data_catalog.regrid.cell_area_weights``, which conservative regridding uses too), normalised
to mean 1. On equiangular grids this is WeatherBench 2's weighting; without pole rows it equals
cos(latitude) normalised to mean 1, the weighting the training loss used before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_catalog.errors import DataInputError
from data_catalog.regrid import cell_area_weights
from data_catalog.schema import LATITUDE


def lat_weights(latitude: Any) -> Any:
    """Cell-area weights per latitude row, normalised to mean 1.

    ``latitude``: an xarray object with a latitude coordinate (returns a DataArray on
    ``latitude``) or an array of latitudes in degrees, ascending (returns an ndarray).
    """
    lat = np.asarray(
        getattr(latitude[LATITUDE] if hasattr(latitude, "coords") else latitude, "values", latitude), dtype=np.float64
    )
    if lat.ndim != 1 or lat.size == 0:
        raise DataInputError(f"latitude must be a non-empty 1-D coordinate, got shape {lat.shape}", variable=LATITUDE)
    if lat.size > 1 and not np.all(np.diff(lat) > 0):
        raise DataInputError("latitude must be strictly ascending (canonical schema: -90..90)", variable=LATITUDE)
    if lat[0] < -90 or lat[-1] > 90:
        raise DataInputError(f"latitude must lie in [-90, 90], got {lat[0]}..{lat[-1]}", variable=LATITUDE)
    weights = cell_area_weights(lat) if lat.size > 1 else np.ones(1)
    if hasattr(latitude, "coords"):
        import xarray as xr

        return xr.DataArray(weights, dims=(LATITUDE,), coords={LATITUDE: lat}, name="lat_weights")
    return weights
