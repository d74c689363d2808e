"""Out-of-sample climatology: ``ingest --climatology-period`` builds it from those times only and records them."""

from __future__ import annotations

import json

import pytest
import xarray as xr

from data_catalog import testing
from data_catalog.ingest import write_store
from data_catalog.stats import read_climatology, read_statistics


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Two months of 6-hourly ERA5-layout data."""
    truth = testing.canonical_dataset(
        n_time=240, n_lat=4, n_lon=8, levels=(500, 850), variables=["temperature", "2m_temperature"], start="2020-01-01"
    )
    path = testing.write_netcdf({"era5": testing.era5_cds_netcdf(truth)}, tmp_path_factory.mktemp("period"))[0]
    return truth, path


def test_climatology_from_the_period_only(source, tmp_path, run_cli):
    truth, path = source
    status, _, stderr = run_cli(
        "ingest", path, "--out", tmp_path / "s.zarr", "--climatology-period", "2020-01-01:2020-01-31"
    )
    assert status == 0, stderr
    clim = read_climatology(tmp_path / "s.zarr")
    assert clim.attrs["climatology_period_start"] == "2020-01-01T00:00:00"
    assert clim.attrs["climatology_period_end"] == "2020-01-31T18:00:00"  # END is inclusive: its whole day
    assert clim.attrs["climatology_time_steps"] == 124
    january = write_store(truth.sel(time=slice("2020-01-01", "2020-01-31")), tmp_path / "jan.zarr", source="january")
    xr.testing.assert_allclose(clim.load(), read_climatology(january).load().assign_attrs(clim.attrs), rtol=1e-6)
    whole = write_store(truth, tmp_path / "whole.zarr", source="whole")
    assert not read_climatology(whole).load().equals(clim.load())  # the period made a difference
    # the store itself and its statistics keep the whole record
    assert xr.open_zarr(tmp_path / "s.zarr").sizes["time"] == 240
    xr.testing.assert_allclose(
        read_statistics(tmp_path / "s.zarr"),
        read_statistics(whole).assign_attrs(read_statistics(tmp_path / "s.zarr").attrs),
    )
    options = json.loads(xr.open_zarr(tmp_path / "s.zarr").attrs["ingest_options"])
    assert options["climatology_period"] == "2020-01-01:2020-01-31"


def test_default_period_is_the_whole_record(source, tmp_path):
    truth, _ = source
    clim = read_climatology(write_store(truth, tmp_path / "w.zarr", source="whole"))
    assert (clim.attrs["climatology_period_start"], clim.attrs["climatology_period_end"]) == (
        "2020-01-01T00:00:00",
        "2020-02-29T18:00:00",
    )


@pytest.mark.parametrize(
    "period, match",
    [
        ("2019-01-01:2019-12-31", "holds no time of the record"),
        ("2020-01-01", "expected START:END dates"),
        ("soon:later", "not understood"),
    ],
)
def test_bad_periods_are_refused(source, tmp_path, run_cli, period, match):
    _, path = source
    status, _, stderr = run_cli("ingest", path, "--out", tmp_path / "bad.zarr", "--climatology-period", period)
    assert status == 2 and len(stderr.strip().splitlines()) == 1 and match in stderr, stderr
    assert not (tmp_path / "bad.zarr").exists()
