"""Ingest's alternative code paths give the same store: source pieces vs store-chunk blocks,
daily sums in memory vs in scratch files, blocks holding a (day, hour) twice."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_catalog import climatology, testing
from data_catalog.ingest import write_store
from data_catalog.stats import read_climatology, read_statistics
from data_catalog.streaming import read_pieces

VARIABLES = ["temperature", "2m_temperature"]


@pytest.fixture(scope="module")
def record() -> xr.Dataset:
    """Two years and a month, 6-hourly, 4x8 grid, with missing values (one a whole row of a day)."""
    ds = testing.canonical_dataset(
        n_time=2 * 1460 + 120, n_lat=4, n_lon=8, levels=(500, 850), variables=VARIABLES, start="2019-01-01"
    )
    ds["2m_temperature"][5, 1, 2] = np.nan
    ds["temperature"][100:104, 1, 3, :] = np.nan
    return ds


@pytest.fixture(scope="module")
def reference(record, tmp_path_factory):
    """In memory (numpy), so read in blocks of one store chunk; sums in memory."""
    return write_store(record, tmp_path_factory.mktemp("ref") / "ref.zarr", source="test", time_chunk=48)


def assert_same_store(path, reference, *, rtol: float = 1e-12) -> None:
    got, want = xr.open_zarr(path), xr.open_zarr(reference)
    for name in VARIABLES:
        np.testing.assert_array_equal(got[name].values, want[name].values)
    xr.testing.assert_allclose(read_statistics(path), read_statistics(reference), rtol=rtol)
    clim, expected = read_climatology(path).load(), read_climatology(reference).load()
    for name in VARIABLES:
        np.testing.assert_allclose(clim[name].values, expected[name].values, rtol=rtol)
    assert sorted(p.name for p in path.iterdir() if p.name.startswith("_")) == []  # no scratch left


def test_read_pieces_follow_source_chunks_unless_too_long(record):
    assert read_pieces(record, 48) is None  # in memory
    pieces = read_pieces(record.chunk(time=100), 48)
    assert pieces[:3] == [(0, 100), (100, 200), (200, 300)] and pieces[-1][1] == record.sizes["time"]
    assert read_pieces(record.chunk(time=48 * 4 + 1), 48) is None  # longer than MAX_READ_CHUNKS store chunks
    merged = read_pieces(record.chunk(time=irregular(record.sizes["time"], (5, 3, 1, 50, 10, 40), 61)), 48)
    assert merged[:3] == [(0, 59), (59, 109), (109, 170)]  # small source chunks merged up to a store chunk


def irregular(n: int, head: tuple[int, ...], size: int) -> tuple[int, ...]:
    """Chunk sizes: ``head``, then ``size`` until ``n`` steps are covered."""
    rest = n - sum(head)
    return head + (size,) * (rest // size) + ((rest % size,) if rest % size else ())


@pytest.mark.parametrize("chunks", ["100", "irregular"])
def test_source_pieces_across_store_chunks_give_the_same_store(record, reference, chunks, tmp_path):
    """Pieces that end inside store chunks are re-blocked exactly."""
    n = record.sizes["time"]
    lazy = record.chunk(time=100 if chunks == "100" else irregular(n, (5, 3, 1, 150, 47), 61))
    assert read_pieces(lazy, 48) is not None
    path = write_store(lazy, tmp_path / "pieces.zarr", source="test", time_chunk=48)
    assert xr.open_zarr(path)["temperature"].encoding["chunks"][0] == 48
    assert_same_store(path, reference, rtol=1e-10)


def test_hourly_pieces_shorter_than_the_lag_keep_every_six_hour_difference(tmp_path):
    ds = testing.canonical_dataset(n_time=80, n_lat=4, n_lon=8, variables=["2m_temperature"], freq="1h")
    ds = ds.isel(time=np.r_[0:30, 40:80])  # a 10-hour gap
    lazy = ds.chunk(time=irregular(ds.sizes["time"], (4, 2, 5, 3, 5), 7))  # lag is 6 steps
    assert [b - a for a, b in read_pieces(lazy, 2)][:5] == [4, 2, 5, 3, 5]
    store = write_store(lazy, tmp_path / "h.zarr", source="test", time_chunk=2)
    x, t = ds["2m_temperature"].values.astype("float64"), ds["time"].values
    later = [i for i in range(len(t)) if (t[i] - np.timedelta64(6, "h")) in set(t)]
    earlier = [int(np.searchsorted(t, t[i] - np.timedelta64(6, "h"))) for i in later]
    expected = (x[later] - x[earlier]).std()
    assert read_statistics(store)["2m_temperature"].sel(statistic="diff_std") == pytest.approx(expected, rel=1e-9)
    np.testing.assert_array_equal(xr.open_zarr(store)["2m_temperature"].values, ds["2m_temperature"].values)


def test_scratch_file_sums_equal_in_memory_sums(record, reference, tmp_path, monkeypatch):
    monkeypatch.setattr(climatology, "SUMS_IN_MEMORY_BYTES", 0)  # every variable's sums in a scratch file
    seen = []
    original = climatology.DaySlabs.__init__

    def spy(self, shape, dtype, path):
        seen.append(path)
        original(self, shape, dtype, path)

    monkeypatch.setattr(climatology.DaySlabs, "__init__", spy)
    path = write_store(record, tmp_path / "files.zarr", source="test", time_chunk=48)
    assert seen and all(p is not None for p in seen)  # sums and missing counts
    assert any(p.suffix == ".missing" for p in seen)
    assert_same_store(path, reference, rtol=0)


def test_blocks_holding_a_day_and_hour_twice(tmp_path):
    """Monthly steps over three years: a 36-step block holds each (day, hour) up to three times."""
    ds = testing.canonical_dataset(
        n_time=36, n_lat=4, n_lon=8, variables=["2m_temperature"], freq="MS", start="2001-01-01"
    )
    one = write_store(ds, tmp_path / "one.zarr", source="test", time_chunk=36)
    small = write_store(ds, tmp_path / "small.zarr", source="test", time_chunk=4)
    a, b = read_climatology(one)["2m_temperature"].values, read_climatology(small)["2m_temperature"].values
    np.testing.assert_allclose(a, b, rtol=1e-12)
    x = ds["2m_temperature"].values.astype("float64")
    january, february = x[0::12].sum(axis=0), x[1::12].sum(axis=0)  # 1 January, 1 February: three each
    # Day 1's window holds only 1 January (1 December and 1 February are more than 30 days away).
    np.testing.assert_allclose(a[0, 0], january / 3, rtol=1e-6)
    # Day 16 sees 1 January 15 days back and 1 February 16 days ahead, weighted 1 - |k| / 31.
    w_jan, w_feb = 1 - 15 / 31, 1 - 16 / 31
    expected = (w_jan * january + w_feb * february) / (3 * w_jan + 3 * w_feb)
    np.testing.assert_allclose(a[0, 15], expected, rtol=1e-6)


def test_whole_days_view_only_for_every_hour_of_consecutive_days():
    values = np.arange(8 * 3 * 2, dtype=np.float32).reshape(8, 3, 1, 2)  # (time, level, lat, lon)
    day, hour = np.repeat(np.arange(2), 4), np.tile(np.arange(4), 2)
    view = climatology.whole_days(day, hour, values, 4)
    assert view.shape == (2, 3, 4, 1, 2) and np.shares_memory(view, values)
    np.testing.assert_array_equal(view[1, 2, 3], values[7, 2])  # day 1, level 2, hour 3 = step 7
    assert climatology.whole_days(day[2:], hour[2:], values[2:], 4) is None  # starts at 12 UTC
    assert climatology.whole_days(day, np.r_[hour[:4], hour[4:][::-1]], values, 4) is None  # hours out of order
