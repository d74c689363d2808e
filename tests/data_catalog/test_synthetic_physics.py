"""Physical realism of the session's synthetic run (the ``synthetic_store`` fixtures, see conftest)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_catalog.regrid import coarsen_conservative
from data_catalog.schema import GRAVITY
from data_catalog.synthetic.validation import (
    geostrophic_correlation,
    persistence_ratio,
    zonal_energy_spectrum,
    zonal_spectrum_slope,
)

SETTLE = slice(np.datetime64("2000-01-11"), None)  # skip 10 more days after the spin-up


@pytest.fixture(scope="module")
def coarse(synthetic_store):
    return xr.open_zarr(synthetic_store).sel(time=SETTLE).load()


@pytest.fixture(scope="module")
def fine(synthetic_hires_store):
    return xr.open_zarr(synthetic_hires_store).sel(time=SETTLE)


def test_fixture_is_long_enough_and_has_statistics(coarse, synthetic_store):
    from data_catalog.stats import read_climatology, read_statistics

    days = (coarse.time.values[-1] - coarse.time.values[0]) / np.timedelta64(1, "D")
    assert days >= 120 and coarse.sizes["latitude"] == 32 and coarse.sizes["longitude"] == 64
    stats = read_statistics(synthetic_store)
    assert set(stats.statistic.values) == {"mean", "std", "diff_std"} and "geopotential" in stats
    assert "dayofyear" in read_climatology(synthetic_store).dims


def test_predictability_band_of_z500(coarse):
    z500 = coarse.geopotential.sel(level=500)
    r24, r72 = persistence_ratio(z500, 24), persistence_ratio(z500, 72)
    assert 0.3 <= r24 <= 0.8, r24
    assert 0.7 <= r72 <= 1.05, r72
    assert r24 < r72 < persistence_ratio(z500, 240)  # errors keep growing towards sqrt(2)


@pytest.mark.parametrize("level", [500, 850])
def test_winds_are_geostrophically_balanced_in_midlatitudes(coarse, level):
    sel = coarse.sel(level=level)
    assert geostrophic_correlation(sel.geopotential, sel.u_component_of_wind) > 0.8
    assert geostrophic_correlation(sel.geopotential, sel.u_component_of_wind, band=(-10, 10)) < 0.8  # not where f -> 0


def test_kinetic_energy_spectrum_falls_off(fine):
    sel = fine.sel(level=500).isel(time=slice(None, None, 8)).load()
    energy = zonal_energy_spectrum(sel.u_component_of_wind, sel.v_component_of_wind)
    assert energy[2:8].mean() > 10 * energy[20:30].mean()
    assert zonal_spectrum_slope(sel.u_component_of_wind, sel.v_component_of_wind) < -2.0


def test_values_are_in_realistic_ranges(coarse):
    z500 = coarse.geopotential.sel(level=500) / GRAVITY
    assert 4400 < float(z500.min()) and float(z500.max()) < 6200  # ERA5 extremes: about 4600-6000 gpm
    assert 5400 < float(z500.weighted(np.cos(np.deg2rad(coarse.latitude))).mean()) < 5700
    t850 = coarse.temperature.sel(level=850)
    assert 225 < float(t850.min()) and float(t850.max()) < 305
    assert float(coarse.temperature.sel(level=500).mean()) < float(t850.mean()) - 15
    assert 200 < float(coarse["2m_temperature"].min()) and float(coarse["2m_temperature"].max()) < 325
    mslp = coarse.mean_sea_level_pressure
    assert 94_000 < float(mslp.min()) and float(mslp.max()) < 108_000
    assert float(abs(coarse.u_component_of_wind).max()) < 120
    lsm, orog = coarse.land_sea_mask, coarse.geopotential_at_surface / GRAVITY
    assert float(lsm.min()) >= 0 and float(lsm.max()) <= 1 and 0.2 < float(lsm.mean()) < 0.45
    assert float(orog.min()) >= 0 and 2000 < float(orog.max()) < 6000


def test_temperature_gradient_seasons_and_diurnal_cycle(coarse):
    t850 = coarse.temperature.sel(level=850).mean("longitude")
    tropics, arctic = t850.sel(latitude=slice(-10, 10)).mean(), t850.sel(latitude=slice(65, 90)).mean()
    assert float(tropics - arctic) > 20
    nh = t850.sel(latitude=slice(30, 60)).mean("latitude")
    assert (
        float(nh.sel(time=slice("2000-04-20", None)).mean() - nh.sel(time=slice(None, "2000-02-10")).mean()) > 3
    )  # spring warming
    t2m = coarse["2m_temperature"].sel(latitude=slice(-45, 45))
    daily = t2m.coarsen(time=4, boundary="trim").mean()
    diurnal = (
        t2m.isel(time=slice(0, daily.sizes["time"] * 4)).coarsen(time=4).construct(time=("day", "hour"))
        - daily.rename(time="day")
    ).std(("day", "hour"))
    lsm = coarse.land_sea_mask.sel(latitude=slice(-45, 45))
    assert float(diurnal.where(lsm > 0.9).mean()) > 4 * float(diurnal.where(lsm < 0.1).mean())


def test_coarse_store_is_the_conservative_coarsening_of_the_fine_one(coarse, fine):
    window = slice(coarse.time.values[0], coarse.time.values[9])
    expected = coarsen_conservative(fine.sel(time=window)[["geopotential", "2m_temperature"]].load(), 2)
    for name in ("geopotential", "2m_temperature"):
        np.testing.assert_allclose(coarse[name].sel(time=window).values, expected[name].values, rtol=1e-6)
    np.testing.assert_allclose(coarse.latitude, expected.latitude)
