"""Metrics against xskillscore, brute force and hand-worked WeatherBench 2 conventions."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from climate_optics.errors import UsageInputError
from climate_optics.evaluation import metrics as m
from data_catalog.errors import DataInputError

xs = pytest.importorskip("xskillscore")

LAT = np.linspace(-78.75, 78.75, 8)
LON = np.arange(16) * 22.5
TIMES = pd.date_range("2020-01-01", periods=3, freq="6h")
SPACE = ["latitude", "longitude"]


def field(seed, *extra, dims=()):
    """Random (time, *extra, latitude, longitude) field, optional trailing realization."""
    rng = np.random.default_rng(seed)
    shape = (len(TIMES), *extra, LAT.size, LON.size)
    all_dims = ("time", *dims, "latitude", "longitude")
    coords = {"time": TIMES, "latitude": LAT, "longitude": LON}
    if "realization" in dims:
        coords["realization"] = np.arange(extra[dims.index("realization")])
    return xr.DataArray(rng.normal(size=shape), dims=all_dims, coords=coords, name="temperature")


def grid2d(values):
    """Field on the hand-worked grid latitude (-45, 45), longitude (0, 180): weights [1, 1]."""
    return xr.DataArray(
        np.asarray(values, float), dims=SPACE, coords={"latitude": [-45.0, 45.0], "longitude": [0.0, 180.0]}
    )


@pytest.fixture(scope="module")
def pair():
    return field(0), field(1)


@pytest.fixture(scope="module")
def weights():
    return m.lat_weights(LAT)[:, None] * np.ones(LON.size)


def xs_weights(w):
    return xr.DataArray(w, dims=SPACE, coords={"latitude": LAT, "longitude": LON})


# ----------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    "ours, theirs",
    [(m.rmse, xs.rmse), (m.mae, xs.mae), (m.bias, xs.me), (m.mse, xs.mse)],
    ids=["rmse", "mae", "bias", "mse"],
)
def test_deterministic_metrics_match_xskillscore(pair, weights, ours, theirs):
    f, t = pair
    expected = theirs(f, t, dim=SPACE, weights=xs_weights(weights))
    got = ours(f, t)
    assert got.dims == ("time",)
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-6)


def test_standard_crps_matches_xskillscore(pair, weights):
    ens = field(2, 7, dims=("realization",))
    t = pair[1]
    expected = xs.crps_ensemble(t, ens, member_dim="realization", dim=SPACE, weights=xs_weights(weights))
    got = m.crps(ens, t, fair=False)
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-6)
    np.testing.assert_allclose(m.make_metric("crps_standard").compute_chunk(ens, t).values, expected.values, rtol=1e-6)


@pytest.mark.parametrize("members", [2, 5])
def test_fair_crps_matches_brute_force_over_member_pairs(members):
    rng = np.random.default_rng(members)
    f = rng.normal(size=(40, members))
    y = rng.normal(size=40)
    skill = np.abs(f - y[:, None]).mean(-1)
    pairs = np.abs(f[:, :, None] - f[:, None, :]).sum((-1, -2))
    fair = skill - pairs / (2 * members * (members - 1))
    standard = skill - pairs / (2 * members**2)
    np.testing.assert_allclose(m.crps_pointwise(f, y, fair=True), fair, rtol=1e-12)
    np.testing.assert_allclose(m.crps_pointwise(f, y, fair=False), standard, rtol=1e-12)


def test_fair_crps_of_exchangeable_truth_is_unbiased_and_default():
    """Truth drawn like the members: the fair CRPS matches the CRPS of the true N(0, 1)."""
    rng = np.random.default_rng(3)
    f, y = rng.normal(size=(200_000, 3)), rng.normal(size=200_000)
    exact = 1 / np.sqrt(np.pi)  # E CRPS(N(0,1), Y) = E|X - Y| - E|X - X'|/2 = 2/sqrt(pi) - 1/sqrt(pi)
    assert abs(m.crps_pointwise(f, y, fair=True).mean() - exact) < 0.005
    assert m.crps_pointwise(f, y, fair=False).mean() - exact > 0.04  # the standard estimator is biased
    assert m.CRPS().fair is True


# ----------------------------------------------------------------------------- WeatherBench 2 conventions by hand


def test_lat_weights_hand_worked():
    np.testing.assert_allclose(m.lat_weights(np.array([-45.0, 45.0])), [1.0, 1.0])
    np.testing.assert_allclose(m.lat_weights(np.array([-60.0, 0.0, 60.0])), [0.75, 1.5, 0.75])
    h = 1 - np.sqrt(0.5)  # cap area between the pole and 45 degrees
    np.testing.assert_allclose(m.lat_weights(np.array([-90.0, 0.0, 90.0])), np.array([h, 2 - 2 * h, h]) / (2 / 3))
    w = m.lat_weights(field(0))
    assert w.dims == ("latitude",) and abs(float(w.mean()) - 1) < 1e-12
    with pytest.raises(DataInputError, match="ascending"):
        m.lat_weights(np.array([45.0, -45.0]))


def test_rmse_takes_sqrt_after_time_mean():
    t = xr.concat([grid2d(np.zeros((2, 2)))] * 2, dim="time").assign_coords(time=TIMES[:2])
    f = t + xr.DataArray([1.0, 3.0], dims="time", coords={"time": TIMES[:2]})
    np.testing.assert_allclose(m.RMSE().compute(f, t).values, np.sqrt(5.0))
    np.testing.assert_allclose(m.RMSESqrtBeforeTimeMean().compute(f, t).values, 2.0)
    np.testing.assert_allclose(m.rmse(f, t).values, [1.0, 3.0])  # shortcut: per time


def test_acc_hand_worked_uncentred():
    f, t = grid2d([[1, 2], [3, 4]]), grid2d([[1, 0], [0, 1]])
    clim = grid2d(np.zeros((2, 2)))
    np.testing.assert_allclose(float(m.acc(f, t, climatology=clim)), 5 / np.sqrt(30 * 2))
    # anomalies are against the climatology: shifting all three leaves ACC unchanged
    np.testing.assert_allclose(float(m.acc(f + 7, t + 7, climatology=clim + 7)), 5 / np.sqrt(30 * 2))
    with pytest.raises(UsageInputError, match="climatology"):
        m.acc(f, t)


def test_acc_selects_climatology_by_dayofyear_and_hour():
    t = field(5)
    doy = np.arange(1, 367)
    clim = xr.DataArray(
        np.broadcast_to(
            doy[None, :, None, None] * 1.0 + np.array([0, 6, 12, 18])[:, None, None, None], (4, 366, 8, 16)
        ),
        dims=("hour", "dayofyear", *SPACE),
        coords={"hour": [0, 6, 12, 18], "dayofyear": doy, "latitude": LAT, "longitude": LON},
        name="temperature",
    )
    aligned = xr.DataArray(np.array([1.0, 7.0, 13.0])[:, None, None] + 0 * t.values, dims=t.dims, coords=t.coords)
    got = m.acc(t * 2, t, climatology=clim.to_dataset())
    np.testing.assert_allclose(got.values, m.acc(t * 2, t, climatology=aligned).values, rtol=1e-12)


def test_zonal_energy_spectrum_parseval():
    data = field(4)
    spec = m.zonal_energy_spectrum(data)
    assert spec.dims == ("time", "latitude", "zonal_wavenumber") and spec.sizes["zonal_wavenumber"] == 9
    circumference = 2 * np.pi * 6_371_000.0 * np.cos(np.deg2rad(LAT))
    discrete_integral = (data**2).sum("longitude") * xr.DataArray(
        circumference / LON.size, dims="latitude", coords={"latitude": LAT}
    )
    np.testing.assert_allclose(spec.sum("zonal_wavenumber").values, discrete_integral.values, rtol=1e-10)
    wave = xr.DataArray(
        np.cos(2 * np.pi * 3 * LON / 360)[None, :] * np.ones((LAT.size, 1)), dims=SPACE, coords=data.isel(time=0).coords
    )
    single = m.zonal_energy_spectrum(wave)
    assert int(np.argmax(single.isel(latitude=0).values)) == 3
    np.testing.assert_allclose(single.wavelength.isel(latitude=0, zonal_wavenumber=3), circumference[0] / 3)


# ----------------------------------------------------------------------------- ensemble metrics


def test_ensemble_mean_rmse_spread_and_ratio(weights):
    ens, t = field(6, 4, dims=("realization",)), field(7)
    w = weights / weights.sum()
    mean_err = ((ens.mean("realization") - t) ** 2 * w).sum(SPACE)
    var = (ens.var("realization", ddof=1) * w).sum(SPACE)
    np.testing.assert_allclose(m.ensemble_mean_rmse(ens, t).values, np.sqrt(mean_err.values), rtol=1e-10)
    np.testing.assert_allclose(m.ensemble_spread(ens, t).values, np.sqrt(var.values), rtol=1e-10)
    np.testing.assert_allclose(m.spread_skill_ratio(ens, t).values, np.sqrt(var / mean_err).values, rtol=1e-10)
    corrected = m.spread_skill_ratio(ens, t, ensemble_size_correction=True)
    np.testing.assert_allclose(corrected.values, np.sqrt(var / mean_err).values * np.sqrt(5 / 4), rtol=1e-10)
    # deterministic metrics of an ensemble forecast via the ensemble mean: same as rmse of the mean
    np.testing.assert_allclose(m.rmse(ens.mean("realization"), t).values, np.sqrt(mean_err.values), rtol=1e-10)


def test_rank_histogram_hand_worked():
    members = xr.DataArray(
        np.array([[[0.0, 1.0, 2.0]] * 2] * 2), dims=(*SPACE, "realization"), coords=grid2d(np.zeros((2, 2))).coords
    )
    truth = grid2d([[-1.0, 0.5], [1.5, 3.0]])  # ranks 0, 1, 2, 3 with equal area weights
    hist = m.rank_histogram(members, truth)
    np.testing.assert_allclose(hist.values, [0.25, 0.25, 0.25, 0.25])
    hist = m.rank_histogram(members, grid2d([[-1.0, -1.0], [-1.0, 9.0]]))
    np.testing.assert_allclose(hist.values, [0.75, 0, 0, 0.25])


def test_wind_vector_rmse():
    fu, fv, tu, tv = field(8), field(9), field(10), field(11)
    f = xr.Dataset({"u_component_of_wind": fu, "v_component_of_wind": fv})
    t = xr.Dataset({"u_component_of_wind": tu, "v_component_of_wind": tv})
    expected = np.sqrt(m.mse(fu, tu) + m.mse(fv, tv))
    np.testing.assert_allclose(m.wind_vector_rmse(f, t).values, expected.values, rtol=1e-12)


# ----------------------------------------------------------------------------- regions, spatial, laziness


def test_regions_match_explicit_selection(pair):
    f, t = pair
    got = m.mse(f, t, region=["global", "tropics", "europe"])
    assert list(got.region.values) == ["global", "tropics", "europe"]
    sq = (f - t) ** 2
    for name, lat_sel, lon_sel in [
        ("tropics", np.abs(LAT) <= 20, np.ones(LON.size, bool)),
        ("europe", (LAT >= 35) & (LAT <= 75), (LON >= 347.5) | (LON <= 42.5)),
    ]:
        part = sq.isel(latitude=np.flatnonzero(lat_sel), longitude=np.flatnonzero(lon_sel))
        expected = part.weighted(m.lat_weights(part)).mean(SPACE)
        np.testing.assert_allclose(got.sel(region=name).values, expected.values, rtol=1e-12)


def test_land_region_ignores_nan_over_sea_and_user_box(pair):
    f, t = pair
    lsm = xr.DataArray((np.arange(LON.size)[None, :] < 8) * np.ones((LAT.size, 1)), dims=SPACE)
    f_nan = f.where(lsm > 0.5)  # NaN over sea, as a land-only field would be
    land = m.mae(f_nan, t, region="land", land_sea_mask=lsm)
    box = m.mae(f, t, region="west=-90,90,0,170")  # the same eight longitudes
    assert np.isfinite(land.values).all()
    np.testing.assert_allclose(land.values, box.values, rtol=1e-12)
    with pytest.raises(DataInputError, match="land_sea_mask"):
        m.mae(f, t, region="land")
    with pytest.raises(UsageInputError, match="unknown region"):
        m.mae(f, t, region="atlantis")


def test_spatial_variants_skip_the_area_mean(pair):
    f, t = pair
    spatial = m.MSE(spatial=True).compute(f, t)
    assert spatial.dims == ("latitude", "longitude")
    np.testing.assert_allclose(spatial.values, ((f - t) ** 2).mean("time").values, rtol=1e-12)
    temporal_acc = m.ACC(climatology=xr.zeros_like(t), spatial=True).compute(f, t)
    expected = (f * t).mean("time") / np.sqrt((f * f).mean("time") * (t * t).mean("time"))
    np.testing.assert_allclose(temporal_acc.values, expected.values, rtol=1e-12)


def test_dask_gives_the_same_as_numpy_and_stays_lazy(pair):
    f, t = pair
    ens = field(12, 5, dims=("realization",))
    fd, td, ed = f.chunk({"time": 1}), t.chunk({"time": 2, "latitude": 4}), ens.chunk({"time": 1, "realization": 2})
    for fn, args_np, args_dask in [
        (m.rmse, (f, t), (fd, td)),
        (m.bias, (f, t), (fd, td)),
        (m.crps, (ens, t), (ed, td)),
        (m.spread_skill_ratio, (ens, t), (ed, td)),
        (m.rank_histogram, (ens, t), (ed, td)),
    ]:
        lazy = fn(*args_dask, region=["global", "tropics"])
        assert lazy.chunks is not None, fn.__name__
        np.testing.assert_allclose(lazy.compute().values, fn(*args_np, region=["global", "tropics"]).values, rtol=1e-12)
    np.testing.assert_allclose(m.zonal_energy_spectrum(fd).values, m.zonal_energy_spectrum(f).values, rtol=1e-12)


def test_datasets_are_scored_per_variable_and_grids_must_match(pair):
    f, t = pair
    got = m.rmse(f.to_dataset(), t.to_dataset())
    np.testing.assert_allclose(got["temperature"].values, m.rmse(f, t).values)
    with pytest.raises(DataInputError, match="truth has no variable"):
        m.rmse(f.to_dataset(), t.rename("geopotential").to_dataset())
    with pytest.raises(DataInputError, match="grids differ"):
        m.rmse(f, t.assign_coords(longitude=LON + 1))
    with pytest.raises(UsageInputError, match="unknown option"):
        m.rmse(f, t, fiar=True)
    with pytest.raises(UsageInputError, match="available"):
        m.make_metric("nope")


def test_metric_registry_names_are_class_names():
    for name, cls in m.METRICS.items():
        assert cls.name == name
    assert {"rmse", "mse", "bias", "mae", "acc", "crps", "crps_standard", "spread_skill_ratio"} <= set(m.METRICS)
