"""Ensembles through ingest: ERA5 files with members (CDS NetCDF, legacy NetCDF, GRIB) into ``realization``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from data_catalog import testing
from data_catalog.ingest import write_store
from data_catalog.stats import read_climatology, read_statistics

VARIABLES = ["geopotential", "temperature", "specific_humidity", "2m_temperature", "mean_sea_level_pressure"]
LEVELS = (250, 500, 850)
MEMBERS = 3


@pytest.fixture(scope="module")
def truth() -> xr.Dataset:
    """Three members, three levels, 12 six-hourly times."""
    return testing.canonical_dataset(n_time=12, n_lat=8, n_lon=16, levels=LEVELS, variables=VARIABLES, members=MEMBERS)


def _grib_or_skip(truth: xr.Dataset, path: Path) -> Path:
    pytest.importorskip("cfgrib", reason="GRIB needs the grib extra (cfgrib, ecCodes)")
    return testing.write_era5_grib(truth, path)


@pytest.fixture(scope="module")
def sources(truth, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ensemble-files")
    paths = {
        "cds": testing.write_netcdf({"cds": testing.era5_cds_netcdf(truth)}, root)[0],
        "legacy": testing.write_netcdf({"legacy": testing.era5_cds_netcdf(truth, members_first=False)}, root)[0],
    }
    return paths


@pytest.fixture(scope="module")
def stores(sources, tmp_path_factory) -> dict[str, Path]:
    from flows.cli import main

    out = tmp_path_factory.mktemp("ensemble-stores")
    paths = {}
    for name, source in sources.items():
        paths[name] = out / f"{name}.zarr"
        assert main(["ingest", str(source), "--out", str(paths[name]), "--time-chunk", "5"]) == 0
    return paths


def test_native_member_layouts(sources):
    assert xr.open_dataset(sources["cds"])["t"].dims == (
        "number",
        "valid_time",
        "pressure_level",
        "latitude",
        "longitude",
    )
    assert xr.open_dataset(sources["legacy"])["t"].dims[:2] == ("valid_time", "number")


@pytest.mark.parametrize("layout", ["cds", "legacy"])
def test_netcdf_members_ingest_into_realization(stores, truth, layout):
    store = xr.open_zarr(stores[layout])
    assert set(store.data_vars) == set(VARIABLES)
    for name in VARIABLES:
        assert store[name].dims == truth[name].dims  # (time, realization, [level,] latitude, longitude)
        np.testing.assert_array_equal(store[name].values, truth[name].values)
    np.testing.assert_array_equal(store["realization"].values, np.arange(MEMBERS))
    np.testing.assert_array_equal(store["level"].values, LEVELS)


def test_ensemble_statistics_pool_every_member(stores, truth):
    stats = read_statistics(stores["cds"])
    t = truth["temperature"].values.astype(np.float64)  # (time, member, level, lat, lon)
    np.testing.assert_allclose(stats["temperature"].sel(statistic="mean").values, t.mean(axis=(0, 1, 3, 4)), rtol=1e-6)
    np.testing.assert_allclose(stats["temperature"].sel(statistic="std").values, t.std(axis=(0, 1, 3, 4)), rtol=1e-5)
    diffs = t[1:] - t[:-1]  # 6-hourly steps: differences one step apart, every member
    np.testing.assert_allclose(
        stats["temperature"].sel(statistic="diff_std").values, diffs.std(axis=(0, 1, 3, 4)), rtol=1e-5
    )


def test_ensemble_climatology_is_that_of_the_member_mean(stores, truth, tmp_path):
    mean_store = write_store(truth.mean("realization").astype("float32"), tmp_path / "mean.zarr", source="member mean")
    ensemble, mean = read_climatology(stores["cds"]).load(), read_climatology(mean_store).load()
    assert ensemble["temperature"].dims == ("hour", "dayofyear", "level", "latitude", "longitude")
    assert "realization" not in ensemble.dims
    xr.testing.assert_allclose(ensemble, mean, rtol=1e-5)


def test_grib_members_ingest_into_realization(truth, tmp_path, run_cli):
    surface = ["temperature", "2m_temperature", "mean_sea_level_pressure"]
    path = _grib_or_skip(truth[surface], tmp_path / "ens.grib")
    status, _, stderr = run_cli("ingest", path, "--out", tmp_path / "grib.zarr")
    assert status == 0, stderr
    store = xr.open_zarr(tmp_path / "grib.zarr")
    for name in surface:
        assert store[name].dims == truth[name].dims
        np.testing.assert_array_equal(store[name].values, truth[name].values)


def test_all_nan_member_is_named(truth, tmp_path, run_cli):
    bad = truth[["temperature"]].copy(deep=True)
    bad["temperature"][3, 2, 1] = np.nan  # time 3, member 2, level 500
    testing.write_netcdf({"bad": testing.era5_cds_netcdf(bad)}, tmp_path)
    status, _, stderr = run_cli("ingest", tmp_path / "bad.nc", "--out", tmp_path / "bad.zarr")
    assert status == 2 and len(stderr.strip().splitlines()) == 1
    assert "realization index 2, level index 1" in stderr and "'temperature'" in stderr
    assert not (tmp_path / "bad.zarr").exists()
