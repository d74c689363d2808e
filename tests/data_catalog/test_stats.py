"""Statistics and climatology of an ingested store, checked against direct in-memory computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_catalog import testing
from data_catalog.climatology import DAYS, Climatology, circular_window_sum, smooth_into, smooth_sums, window_weights
from data_catalog.errors import DataInputError
from data_catalog.ingest import write_store
from data_catalog.stats import Moments, read_climatology, read_statistics
from data_catalog.streaming import blocks, diff_interval

VARIABLES = ["temperature", "2m_temperature", "land_sea_mask"]


@pytest.fixture(scope="module")
def two_years(tmp_path_factory):
    """Two years, 6-hourly, on a 4x8 grid with a seasonal cycle; ingested with small chunks."""
    ds = testing.canonical_dataset(
        n_time=2 * 1460, n_lat=4, n_lon=8, levels=(500, 850), variables=VARIABLES, start="2019-01-01"
    )
    day = ds["time"].dt.dayofyear
    cycle = 10.0 * np.cos(2 * np.pi * day / 365.25) + 2.0 * (ds["time"].dt.hour == 12)
    ds["temperature"] = (ds["temperature"] + cycle).astype("float32")
    ds["2m_temperature"] = (ds["2m_temperature"] + cycle).astype("float32")
    ds["2m_temperature"][5, 1, 2] = np.nan  # a missing value is skipped, not propagated
    store = write_store(ds.chunk(time=100), tmp_path_factory.mktemp("stats") / "s.zarr", source="test", time_chunk=48)
    return ds, store


def test_moments_merge_equals_numpy_on_any_split():
    rng = np.random.default_rng(1)
    x = 5e5 + 1e3 * rng.standard_normal((37, 3, 4, 5))  # geopotential-sized values
    x[3, 1, 0, 0] = np.nan
    moments = Moments.empty((3,))
    for a, b in [(0, 1), (1, 9), (9, 30), (30, 37)]:
        moments.add(x[a:b], keep_axis=1)
    np.testing.assert_allclose(moments.mean, np.nanmean(x, axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(moments.std, np.nanstd(x, axis=(0, 2, 3)), rtol=1e-9)
    assert moments.count.tolist() == [37 * 20, 37 * 20 - 1, 37 * 20]


def test_statistics_equal_in_memory_numpy(two_years):
    ds, store = two_years
    stats = read_statistics(store)
    assert list(stats["statistic"].values) == ["mean", "std", "diff_std"]
    assert stats["temperature"].dims == ("statistic", "level")
    assert stats["2m_temperature"].dims == ("statistic",)
    t = ds["temperature"].values.astype("float64")
    np.testing.assert_allclose(stats["temperature"].sel(statistic="mean"), t.mean(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(stats["temperature"].sel(statistic="std"), t.std(axis=(0, 2, 3)), rtol=1e-8)
    np.testing.assert_allclose(
        stats["temperature"].sel(statistic="diff_std"), np.diff(t, axis=0).std(axis=(0, 2, 3)), rtol=1e-8
    )
    s = ds["2m_temperature"].values.astype("float64")
    np.testing.assert_allclose(
        stats["2m_temperature"].values, [np.nanmean(s), np.nanstd(s), np.nanstd(np.diff(s, axis=0))], rtol=1e-8
    )
    mask = ds["land_sea_mask"].values.astype("float64")
    np.testing.assert_allclose(stats["land_sea_mask"].values, [mask.mean(), mask.std(), 0.0], rtol=1e-10)
    assert stats.attrs["diff_hours"] == 6.0


def direct_climatology(da: xr.DataArray, half_width: int = 30) -> np.ndarray:
    """Groupby (hour, dayofyear) in memory, then an explicit circular weighted window average."""
    frame = da.assign_coords(hour=da["time"].dt.hour, dayofyear=da["time"].dt.dayofyear)
    key = frame["hour"] * 1000 + frame["dayofyear"]
    grouped = frame.groupby(key.rename("key"))
    sums, counts = grouped.sum("time", skipna=True), grouped.count("time")
    hours = np.unique(frame["hour"].values)
    shape = (len(hours), DAYS) + da.shape[1:]
    s, n = np.zeros(shape), np.zeros(shape)
    keys = sums["key"].values
    h, d = np.searchsorted(hours, keys // 1000), keys % 1000 - 1
    s[h, d], n[h, d] = sums.transpose("key", ...).values, counts.transpose("key", ...).values
    weights = window_weights(half_width)
    num, den = np.zeros(shape), np.zeros(shape)
    for k, w in zip(range(-half_width, half_width + 1), weights):
        num += w * np.roll(s, -k, axis=1)  # num[:, d] += w * s[:, (d + k) % DAYS]
        den += w * np.roll(n, -k, axis=1)
    return num / den


def test_climatology_equals_direct_groupby(two_years):
    ds, store = two_years
    clim = read_climatology(store)
    assert clim["temperature"].dims == ("hour", "dayofyear", "level", "latitude", "longitude")
    assert clim["hour"].values.tolist() == [0, 6, 12, 18]
    assert clim["dayofyear"].values.tolist() == list(range(1, DAYS + 1))
    assert "land_sea_mask" not in clim
    np.testing.assert_allclose(clim["temperature"].values, direct_climatology(ds["temperature"]), rtol=2e-6)
    # The missing 2m value shifts the direct count by one; the stored weights count time steps.
    np.testing.assert_allclose(clim["2m_temperature"].values, direct_climatology(ds["2m_temperature"]), rtol=1e-4)
    assert np.isfinite(clim["temperature"].values).all()


def test_climatology_of_a_record_within_a_year_equals_direct_groupby(tmp_path):
    """One value per (day, hour) slot: the daily sums are kept in the data's float32, exactly."""
    ds = testing.canonical_dataset(
        n_time=4 * 300, n_lat=4, n_lon=8, levels=(500, 850), variables=VARIABLES, start="2019-03-01", seed=4
    )
    ds["2m_temperature"][7, 2, 3] = np.nan
    store = write_store(ds, tmp_path / "one.zarr", source="test", time_chunk=40)
    clim = read_climatology(store)
    with np.errstate(invalid="ignore"):  # 0 / 0 on days without data: NaN on both sides
        direct = {name: direct_climatology(ds[name]) for name in ("temperature", "2m_temperature")}
    np.testing.assert_allclose(clim["temperature"].values, direct["temperature"], rtol=2e-6)
    np.testing.assert_allclose(clim["2m_temperature"].values, direct["2m_temperature"], rtol=1e-4)
    assert np.isnan(clim["temperature"].sel(dayofyear=29).values).all()  # no data within 30 days


@pytest.mark.parametrize(
    "n_time, dtype, expected",
    [(4 * 300, "float32", "float32"), (4 * 300, "float64", "float64"), (4 * 400, "float32", "float64")],
)
def test_daily_sums_dtype_is_exact(tmp_path, n_time, dtype, expected):
    """Data's own dtype only when each (day, hour) slot gets one value; a second year sums in float64."""
    times = pd.date_range("2019-01-01", periods=n_time, freq="6h").values
    climatology = Climatology(times, tmp_path, {"t": (4, 8)})
    x = np.full((n_time, 4, 8), 280.0, dtype=dtype)
    climatology.add("t", 0, x)
    total, _ = climatology.sums["t"].read_band(0, slice(None))
    assert total.dtype == np.dtype(expected)
    assert total.sum(dtype=np.float64) == 280.0 * n_time * 4 * 8  # every value summed once


def test_circular_window_sum_wraps_around_the_year():
    raw = np.zeros((DAYS, 1))
    raw[0] = 1.0  # 1 January
    smoothed = circular_window_sum(raw, 30, axis=0)[:, 0]
    weights = window_weights(30)
    np.testing.assert_allclose(smoothed[:31], weights[30::-1], atol=1e-12)  # days 1..31
    np.testing.assert_allclose(smoothed[-30:], weights[:30], atol=1e-12)  # days 337..366 see 1 January too
    assert np.abs(smoothed[31:-30]).max() < 1e-12


def test_circular_window_sum_equals_explicit_weights():
    x = np.random.default_rng(0).random((DAYS, 3))
    direct = sum(w * np.roll(x, -k, axis=0) for k, w in zip(range(-30, 31), window_weights(30)))
    np.testing.assert_allclose(circular_window_sum(x, 30, axis=0), direct, rtol=1e-12)


def test_smoothing_in_one_pass_equals_smooth_sums():
    rng = np.random.default_rng(2)
    steps = np.ones((DAYS, 4))
    steps[100:200] = 0  # days without data: NaN where the window holds none
    total = rng.random((DAYS, 4, 3, 5)) * 300 * steps[:, :, None, None]
    weight = circular_window_sum(steps, 30, axis=0)
    expected = smooth_sums(total, steps, None, weight).transpose(1, 0, 2, 3)
    fused = smooth_into(total.astype(np.float32), weight, np.float32)
    np.testing.assert_allclose(fused, expected.astype(np.float32), rtol=1e-6)
    assert np.array_equal(np.isnan(fused), np.isnan(expected)) and np.isnan(fused).any()


def test_blocks_cover_record_in_time_order():
    assert blocks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert blocks(8, 8) == [(0, 8)]


@pytest.mark.parametrize("freq, expected", [("6h", (6, 1)), ("1h", (6, 6)), ("3h", (6, 2)), ("1D", (24, 1))])
def test_diff_interval(freq, expected):
    interval, lag = diff_interval(pd.date_range("2020-01-01", periods=10, freq=freq).values)
    assert (interval / np.timedelta64(1, "h"), lag) == expected


def test_hourly_record_uses_six_hour_differences_and_skips_gaps(tmp_path):
    ds = testing.canonical_dataset(n_time=80, n_lat=4, n_lon=8, variables=["2m_temperature"], freq="1h")
    ds = ds.isel(time=np.r_[0:30, 40:80])  # a 10-hour gap: pairs across it are not 6 h apart
    store = write_store(ds, tmp_path / "h.zarr", source="test", time_chunk=16)
    x = ds["2m_temperature"].values.astype("float64")
    t = ds["time"].values
    later = [i for i in range(len(t)) if (t[i] - np.timedelta64(6, "h")) in set(t)]
    earlier = [int(np.searchsorted(t, t[i] - np.timedelta64(6, "h"))) for i in later]
    expected = (x[later] - x[earlier]).std()
    assert read_statistics(store)["2m_temperature"].sel(statistic="diff_std") == pytest.approx(expected, rel=1e-9)


def test_missing_groups_are_bad_input(tmp_path):
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_zarr(tmp_path / "plain.zarr", zarr_format=3, consolidated=False)
    with pytest.raises(DataInputError, match="statistics"):
        read_statistics(tmp_path / "plain.zarr")
    with pytest.raises(DataInputError, match="does not exist"):
        read_climatology(tmp_path / "absent.zarr")
