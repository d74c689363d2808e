"""Spherical-harmonic transform and conservative regridding: exact identities checked two ways."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.regrid import (
    cell_area_weights,
    coarsen_conservative,
    equiangular_latitudes,
    equiangular_longitudes,
    latitude_bounds,
    longitude_bounds,
)
from data_catalog.synthetic.sht import SphericalHarmonics


@pytest.fixture(scope="module")
def sh():
    return SphericalHarmonics(21, 32, 64, radius=2.0)


def random_spectrum(sh, rng, batch=()):
    c = (rng.standard_normal(batch + sh.valid.shape) + 1j * rng.standard_normal(batch + sh.valid.shape)) * sh.valid
    c[..., 0, :] = c[..., 0, :].real
    return c


def test_round_trip_is_exact_for_band_limited_fields(sh):
    c = random_spectrum(sh, np.random.default_rng(0), (3,))
    assert np.abs(sh.analysis(sh.synthesis(c)) - c).max() < 1e-11


def test_solid_body_rotation_winds_and_vorticity(sh):
    lat = np.deg2rad(sh.lat)[:, None] + 0 * np.deg2rad(sh.lon)[None, :]
    psi = sh.analysis(-2.0 * np.sin(lat))  # u = cos(lat) on a sphere of radius 2
    u, v = sh.winds_from_streamfunction(psi)
    np.testing.assert_allclose(u, np.cos(lat), atol=1e-10)
    np.testing.assert_allclose(v, 0.0, atol=1e-12)
    zeta = sh.synthesis(sh.vorticity(u * np.cos(lat), v * np.cos(lat)))
    np.testing.assert_allclose(zeta, np.sin(lat), atol=1e-9)  # 2 sin(lat) / radius


def test_vorticity_and_divergence_match_the_laplacian(sh):
    c = random_spectrum(sh, np.random.default_rng(1))
    lap = sh.lap_eigen * c
    u, v = sh.winds_from_streamfunction(c)
    cos = sh.cos_lat[:, None]
    assert np.abs(sh.vorticity(u * cos, v * cos) - lap).max() < 1e-10 * np.abs(lap).max()
    east, north = sh.scaled_gradient(c)
    assert np.abs(sh.divergence(east, north) - lap).max() < 1e-10 * np.abs(lap).max()
    np.testing.assert_allclose(sh.invert_laplacian(lap)[..., 1:], c[..., 1:] * (sh.l[..., 1:] > 0), atol=1e-12)


def test_synthesis_at_other_latitudes_matches_the_analytic_field(sh):
    lat = equiangular_latitudes(20)
    lon = equiangular_longitudes(48)
    field = lambda la, lo: np.sin(la) * np.cos(la) ** 2 * np.cos(2 * lo) + np.cos(la) ** 5 * np.sin(5 * lo)  # noqa: E731
    la, lo = np.deg2rad(sh.lat)[:, None], np.deg2rad(sh.lon)[None, :]
    spec = sh.analysis(field(la, lo))
    out = sh.synthesis(spec, sh.tables_at(lat, lon.size))
    np.testing.assert_allclose(out, field(np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]), atol=1e-12)


# -- regridding --------------------------------------------------------------------------------


def test_bounds_tile_the_sphere():
    lat = equiangular_latitudes(32)
    b = latitude_bounds(lat)
    assert b[0, 0] == -90 and b[-1, 1] == 90 and np.all(b[1:, 0] == b[:-1, 1])
    lb = longitude_bounds(equiangular_longitudes(64))
    assert lb[-1, 1] - lb[0, 0] == pytest.approx(360.0)
    area = cell_area_weights(lat)
    assert area.mean() == pytest.approx(1.0) and area[16] > area[0]
    with pytest.raises(DataInputError, match="latitude"):
        latitude_bounds(lat[::-1])


def _grid_ds(n_lat, n_lon, values):
    return xr.Dataset(
        {"x": (("time", "latitude", "longitude"), values), "s": ("time", np.arange(values.shape[0]))},
        coords={"latitude": equiangular_latitudes(n_lat), "longitude": equiangular_longitudes(n_lon)},
    )


def test_coarsening_conserves_the_area_integral_and_constants():
    rng = np.random.default_rng(0)
    ds = _grid_ds(64, 128, rng.standard_normal((3, 64, 128)))
    out = coarsen_conservative(ds, 2)
    w_fine = cell_area_weights(ds.latitude.values)[:, None]
    w_coarse = cell_area_weights(out.latitude.values)[:, None]
    np.testing.assert_allclose(
        (ds.x * w_fine).mean(("latitude", "longitude")), (out.x * w_coarse).mean(("latitude", "longitude")), atol=1e-12
    )
    np.testing.assert_allclose(out.latitude, equiangular_latitudes(32))
    assert out.sizes == {"time": 3, "latitude": 32, "longitude": 64} and (out.s == ds.s).all()
    const = coarsen_conservative(_grid_ds(64, 128, np.full((1, 64, 128), 7.5)), 4)
    np.testing.assert_allclose(const.x, 7.5)


def _band_mean_of_sin(lat):
    """Exact cell means of sin(lat): (sin^2 N - sin^2 S) / (2 (sin N - sin S))."""
    b = np.sin(np.deg2rad(latitude_bounds(lat)))
    return (b[:, 1] ** 2 - b[:, 0] ** 2) / (2 * (b[:, 1] - b[:, 0]))


def test_coarsening_of_exact_cell_means_gives_exact_cell_means_lazily():
    fine = _band_mean_of_sin(equiangular_latitudes(64))
    ds = _grid_ds(64, 128, np.broadcast_to(fine[None, :, None], (2, 64, 128)).copy())
    lazy = coarsen_conservative(ds.chunk({"time": 1}), 4)
    assert lazy.x.chunks is not None
    np.testing.assert_allclose(
        lazy.x.isel(time=0, longitude=0).values, _band_mean_of_sin(lazy.latitude.values), atol=1e-12
    )


def test_coarsening_skips_missing_values_and_rejects_bad_factors():
    values = np.ones((1, 4, 8))
    values[0, 0, 0] = np.nan
    values[0, 1, 1] = 3.0
    out = coarsen_conservative(_grid_ds(4, 8, values), 2)
    assert np.isfinite(out.x).all()
    assert float(out.x[0, 0, 0]) > 1.0  # the NaN cell is left out, the 3 counts
    with pytest.raises(DataInputError, match="factor 3"):
        coarsen_conservative(_grid_ds(4, 8, values), 3)
    with pytest.raises(DataInputError, match="positive integer"):
        coarsen_conservative(_grid_ds(4, 8, values), 0)
