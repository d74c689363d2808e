"""The seasonal climatology behind ``persistence_ratio`` (synthetic fields, no model run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.synthetic.validation import climatology_harmonics, persistence_ratio, seasonal_climatology


def _field(days: int, seasonal_amplitude: float, seed: int = 0) -> tuple[xr.DataArray, np.ndarray]:
    """Seasonal cosine + AR(1) weather (6-hourly, 5-day memory) on a 4x8 grid; returns (field, true seasonal part)."""
    time = pd.date_range("2000-01-01", periods=days * 4, freq="6h").values
    t = (time - time[0]) / np.timedelta64(1, "D")  # (T,)
    lat, lon = np.linspace(-60, 60, 4), np.arange(8) * 45.0
    season = (
        5000.0
        + seasonal_amplitude
        * np.cos(2 * np.pi * (t - 15.0) / 365.2425)[:, None, None]
        * np.sin(np.deg2rad(lat))[None, :, None]
    )
    rng = np.random.default_rng(seed)
    phi = np.exp(-0.25 / 5.0)
    noise = np.zeros((len(t), 4, 8))
    for i in range(1, len(t)):
        noise[i] = phi * noise[i - 1] + np.sqrt(1 - phi**2) * rng.standard_normal((4, 8))
    values = np.broadcast_to(season, noise.shape) + 100.0 * noise
    coords = {"time": time, "latitude": lat, "longitude": lon}
    return xr.DataArray(values, coords=coords, dims=("time", "latitude", "longitude")), np.broadcast_to(
        season, noise.shape
    )


def test_harmonics_follow_the_record_span():
    assert [climatology_harmonics(d) for d in (60, 119.9, 120, 300, 364.9, 365, 730)] == [0, 0, 1, 1, 1, 2, 2]


def test_fit_recovers_the_seasonal_cycle_not_the_weather():
    field, season = _field(300, seasonal_amplitude=800.0)
    clim = seasonal_climatology(field)
    assert clim.attrs["climatology_harmonics"] == 1 and clim.dims == field.dims
    assert np.sqrt(np.mean((clim.values - season) ** 2)) < 50.0  # weather std is 100, the season's range 1600
    weather = field.values - season
    assert np.std(field.values - clim.values) > 0.9 * np.std(weather)  # the fit leaves the weather alone


def test_seasonal_reference_removes_the_seasonal_inflation():
    field, _ = _field(300, seasonal_amplitude=800.0)
    plain, _ = _field(300, seasonal_amplitude=0.0)
    seasonal, time_mean = persistence_ratio(field, 72), persistence_ratio(field, 72, climatology="time-mean")
    assert time_mean < 0.5 * seasonal  # the time mean counts the season as error
    assert seasonal == pytest.approx(persistence_ratio(plain, 72), rel=0.05)


def test_short_records_use_the_time_mean():
    field, _ = _field(90, seasonal_amplitude=800.0)
    assert persistence_ratio(field, 24) == persistence_ratio(field, 24, climatology="time-mean")
    with pytest.raises(DataInputError, match="climatology"):
        persistence_ratio(field, 24, climatology="daily")
