"""Fixtures for the climate_optics tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr


def advecting_waves(n_time: int, n_lat: int = 16, n_lon: int = 32, seed: int = 0) -> xr.Dataset:
    """A learnable canonical dataset: planetary waves drifting east at latitude-dependent speeds.

    Geopotential and temperature at 500/850 hPa and 2 m temperature share the wave pattern,
    so a forecaster can beat persistence by learning the drift; land-sea mask is static.
    """
    rng = np.random.default_rng(seed)
    step = 180.0 / n_lat
    lat = np.linspace(-90 + step / 2, 90 - step / 2, n_lat)
    lon = np.arange(n_lon) * 360.0 / n_lon
    hours = np.arange(n_time) * 6.0
    phi, lam = np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]
    pattern = np.zeros((n_time, n_lat, n_lon))
    for m, amp, speed in ((2, 1.0, 8.0), (3, 0.7, 12.0), (5, 0.5, 16.0)):  # speed in degrees/day at the equator
        phase = rng.uniform(0, 2 * np.pi)
        omega = np.deg2rad(speed) * m / 24.0 * (0.5 + np.cos(phi))  # (H, 1) radians/hour
        pattern += amp * np.cos(phi) ** 2 * np.cos(m * lam - omega[None] * hours[:, None, None] + phase)
    pattern += 0.05 * rng.standard_normal(pattern.shape)
    levels = np.array([500, 850])
    z = np.stack([5.5e4 + 800 * pattern, 1.4e4 + 500 * pattern], axis=1)
    t = np.stack([255 + 4 * pattern, 280 + 5 * pattern], axis=1)
    coords = {
        "time": pd.date_range("2000-01-01", periods=n_time, freq="6h").values,
        "level": levels,
        "latitude": lat,
        "longitude": lon,
    }
    dims4, dims3 = ("time", "level", "latitude", "longitude"), ("time", "latitude", "longitude")
    return xr.Dataset(
        {
            "geopotential": (dims4, z.astype(np.float32), {"units": "m2 s-2"}),
            "temperature": (dims4, t.astype(np.float32), {"units": "K"}),
            "2m_temperature": (dims3, (288 + 6 * pattern).astype(np.float32), {"units": "K"}),
            "land_sea_mask": (
                ("latitude", "longitude"),
                (np.cos(3 * lam) * np.cos(phi) > 0.2).astype(np.float32),
                {"units": "1"},
            ),
        },
        coords=coords,
    )


@pytest.fixture(scope="session")
def waves_store(tmp_path_factory):
    """An ingested store (statistics + climatology groups) of 60 days of ``advecting_waves``."""
    from data_catalog.ingest import write_store

    path = tmp_path_factory.mktemp("waves") / "waves.zarr"
    return write_store(advecting_waves(240), path, source="advecting-waves-test", time_chunk=8)
