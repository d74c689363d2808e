"""CF-clean ingested stores: CF tools find axes, coordinates and variables by their attributes."""

from __future__ import annotations

import os

import pytest
import xarray as xr

from data_catalog import testing
from data_catalog.stats import read_climatology, read_statistics

cf_xarray = pytest.importorskip("cf_xarray", reason="the CF checks use cf_xarray (dev extra)")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An ensemble ingested through the command line, run from another directory with a relative path."""
    from flows.cli import main

    root = tmp_path_factory.mktemp("cf")
    truth = testing.canonical_dataset(
        n_time=8,
        n_lat=8,
        n_lon=16,
        levels=(500, 850),
        members=2,
        variables=["temperature", "2m_temperature", "land_sea_mask"],
    )
    testing.write_netcdf({"ens": testing.era5_cds_netcdf(truth)}, root)
    here = os.getcwd()
    os.chdir(root)
    try:
        assert main(["ingest", "ens.nc", "--out", "ens.zarr"]) == 0
    finally:
        os.chdir(here)
    return root / "ens.zarr"


def test_root_group_is_cf(store):
    ds = xr.open_zarr(store)
    assert ds.attrs["Conventions"].startswith("CF-")
    assert ds.cf.axes == {"X": ["longitude"], "Y": ["latitude"], "Z": ["level"], "T": ["time"]}
    coords = ds.cf.coordinates
    assert (coords["latitude"], coords["longitude"], coords["time"], coords["vertical"]) == (
        ["latitude"],
        ["longitude"],
        ["time"],
        ["level"],
    )
    assert ds.cf.standard_names["air_temperature"] == ["2m_temperature", "temperature"]
    assert ds.cf.standard_names["realization"] == ["realization"]
    assert ds["level"].attrs["units"] == "hPa" and ds["latitude"].attrs["units"] == "degrees_north"
    for name in ds.data_vars:
        assert {"standard_name", "long_name", "units"} <= set(ds[name].attrs), name


def test_provenance_paths_are_absolute(store):
    source = xr.open_zarr(store).attrs["source_dataset"]
    assert os.path.isabs(source) and source == str(store.parent / "ens.nc")


def test_statistics_and_climatology_groups_are_cf(store):
    clim = read_climatology(store)
    assert clim.cf.axes["X"] == ["longitude"] and clim.cf.axes["Z"] == ["level"]
    assert clim["temperature"].attrs["standard_name"] == "air_temperature" and clim["temperature"].attrs["units"] == "K"
    assert clim["dayofyear"].attrs["units"] == "1"
    stats = read_statistics(store)
    assert stats.cf.axes["Z"] == ["level"]
