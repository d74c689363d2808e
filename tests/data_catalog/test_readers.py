"""Native layouts into the canonical schema: exact values after flips and unit conversions."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_catalog import testing
from data_catalog.readers import open_dataset
from data_catalog.schema import DIM_ORDER, VARIABLES

RTOL = 1e-6  # float32 unit conversions (gpm * g, degC + 273.15)
GRIB_VARIABLES = ["temperature", "2m_temperature", "10m_u_component_of_wind", "mean_sea_level_pressure"]


@pytest.fixture(scope="module")
def truth():
    return testing.canonical_dataset(n_time=4, n_lat=16, n_lon=32, levels=(500, 850), seed=1)


@pytest.fixture(scope="module")
def files(truth, tmp_path_factory):
    root = tmp_path_factory.mktemp("native")
    paths = {
        "era5": testing.write_netcdf({"era5": testing.era5_cds_netcdf(truth)}, root / "era5")[0],
        "cfgrib": testing.write_netcdf(
            {"cf": testing.era5_cfgrib(truth[list(testing.LEVEL_VARIABLES)], members=2)}, root / "cfgrib"
        )[0],
        "ncep": root / "ncep",
        "wb2": root / "wb2.zarr",
        "grib": testing.write_era5_grib(truth[GRIB_VARIABLES], root / "era5.grib"),
    }
    testing.write_netcdf(testing.ncep_psl(truth), paths["ncep"])
    testing.wb2_zarr(truth).to_zarr(paths["wb2"])
    return paths


def assert_canonical(ds: xr.Dataset) -> None:
    for name, da in ds.data_vars.items():
        assert name in VARIABLES and da.attrs["units"] == VARIABLES[name].units
        assert list(da.dims) == [d for d in DIM_ORDER if d in da.dims]
        assert da.chunks is not None, f"{name} is not dask-backed"
    assert np.all(np.diff(ds["latitude"].values) > 0)
    assert ds["longitude"].values.min() >= 0 and ds["longitude"].values.max() < 360
    if "level" in ds.dims:
        assert np.all(np.diff(ds["level"].values) > 0)


def test_era5_cds_netcdf_maps_exactly(files, truth):
    ds = open_dataset(files["era5"])
    assert_canonical(ds)
    xr.testing.assert_equal(ds, truth)  # no unit conversion: bit-identical after the flips
    assert "z -> geopotential (era5 name)" in ds.attrs["history"]


def test_cfgrib_layout_with_members_maps_to_realization(files, truth):
    ds = open_dataset(files["cfgrib"])
    assert_canonical(ds)
    assert ds.sizes["realization"] == 2
    for member in range(2):
        xr.testing.assert_equal(ds.isel(realization=member, drop=True), truth[list(testing.LEVEL_VARIABLES)])


def test_grib_file_through_cfgrib(files, truth):
    ds = open_dataset(files["grib"])  # three level types: isobaricInhPa, heightAboveGround, meanSea
    assert_canonical(ds)
    xr.testing.assert_equal(ds, truth[GRIB_VARIABLES])


def test_ncep_psl_files_convert_units(files, truth):
    ds = open_dataset(files["ncep"] / "*.nc")
    assert_canonical(ds)
    xr.testing.assert_allclose(ds, truth, rtol=RTOL)
    xr.testing.assert_equal(ds["u_component_of_wind"], truth["u_component_of_wind"])  # m/s: exact
    history = ds.attrs["history"]
    assert "hgt: converted 'm' to 'm2 s-2'" in history and "air: converted 'degC' to 'K'" in history
    assert "air -> 2m_temperature" in history  # air.2m (no level) is 2 m temperature


def test_era5_and_ncep_layouts_give_identical_canonical_datasets(files):
    era5 = open_dataset(files["era5"])
    ncep = open_dataset(files["ncep"] / "*.nc")
    assert list(era5.data_vars) == list(ncep.data_vars)
    for name in ("time", "level", "latitude", "longitude"):
        np.testing.assert_array_equal(era5[name].values, ncep[name].values)
        assert era5[name].dtype == ncep[name].dtype
    for name in era5.data_vars:
        assert era5[name].dims == ncep[name].dims and era5[name].dtype == ncep[name].dtype
        assert era5[name].attrs == ncep[name].attrs
    xr.testing.assert_allclose(era5, ncep, rtol=RTOL)


def test_weatherbench2_zarr_transposed_layout(files, truth):
    ds = open_dataset(files["wb2"], variables=["geopotential", "2m_temperature"], levels=[850])
    assert_canonical(ds)
    xr.testing.assert_equal(ds, truth[["geopotential", "2m_temperature"]].sel(level=[850]))


def test_ncep_old_time_reference_and_pascal_levels(tmp_path, truth):
    native = testing.ncep_psl(truth[["temperature"]], time_units="hours since 1-1-1 00:00:0.0")["air"]
    native["level"] = (native["level"] * 100).assign_attrs(units="Pa")
    native.to_netcdf(tmp_path / "air.nc")
    ds = open_dataset(tmp_path / "air.nc")
    np.testing.assert_array_equal(ds["time"].values, truth["time"].values)
    np.testing.assert_array_equal(ds["level"].values, [500, 850])
    xr.testing.assert_allclose(ds["temperature"], truth["temperature"], rtol=RTOL)


def test_longitude_minus_180_rolled(tmp_path, truth):
    native = truth[["2m_temperature"]].roll(longitude=16, roll_coords=True)
    native = native.assign_coords(longitude=((native["longitude"] + 180) % 360) - 180)
    assert native["longitude"].values[0] == -180
    native.to_netcdf(tmp_path / "t2m.nc")
    xr.testing.assert_equal(open_dataset(tmp_path / "t2m.nc"), truth[["2m_temperature"]])


def test_files_split_in_time_equal_one_file(tmp_path, truth):
    era5 = testing.era5_cds_netcdf(truth[["temperature"]])
    era5.isel(valid_time=slice(0, 2)).to_netcdf(tmp_path / "a.nc")
    era5.isel(valid_time=slice(2, None)).to_netcdf(tmp_path / "b.nc")
    xr.testing.assert_equal(open_dataset(tmp_path / "*.nc"), truth[["temperature"]])


def test_selection(files, truth):
    ds = open_dataset(files["era5"], variables=["temperature"], levels=[500], time=("2020-01-01T06", "2020-01-01T12"))
    assert list(ds.data_vars) == ["temperature"]
    assert ds["level"].values.tolist() == [500] and ds.sizes["time"] == 2
    xr.testing.assert_equal(ds, truth[["temperature"]].sel(level=[500]).isel(time=slice(1, 3)))


def test_missing_units_inferred_from_standard_name_and_recorded(tmp_path, truth):
    native = truth[["mean_sea_level_pressure"]].rename(mean_sea_level_pressure="pmsl")
    native["pmsl"].attrs = {"standard_name": "air_pressure_at_mean_sea_level"}
    native.to_netcdf(tmp_path / "pmsl.nc")
    ds = open_dataset(tmp_path / "pmsl.nc")
    xr.testing.assert_equal(ds["mean_sea_level_pressure"], truth["mean_sea_level_pressure"])
    assert "pmsl: no units attribute; took 'Pa' from standard_name" in ds.attrs["history"]


def test_hourly_era5_precipitation_summed_over_6_hours(tmp_path):
    hourly = testing.canonical_dataset(n_time=12, n_lat=4, n_lon=8, freq="1h", variables=["2m_temperature"])
    tp = hourly["2m_temperature"].copy(data=np.random.default_rng(0).random((12, 4, 8)).astype("float32") * 1e-3)
    native = xr.Dataset({"tp": tp.assign_attrs(units="m")})
    native.to_netcdf(tmp_path / "tp.nc")
    ds = open_dataset(tmp_path / "tp.nc")
    expected = tp.rolling(time=6).sum()
    xr.testing.assert_allclose(ds["total_precipitation_6hr"], expected.rename("total_precipitation_6hr"))
    assert np.isnan(ds["total_precipitation_6hr"].values[:5]).all()


def test_era5_single_level_static_fields(tmp_path):
    truth = testing.canonical_dataset(
        n_time=2, n_lat=8, n_lon=16, variables=["geopotential_at_surface", "land_sea_mask"]
    )
    native = testing.era5_cds_netcdf(truth)
    native = native.assign({v: native[v].expand_dims(valid_time=native["valid_time"]) for v in ("z", "lsm")})
    native.to_netcdf(tmp_path / "static.nc")
    ds = open_dataset(tmp_path / "static.nc")
    assert ds["land_sea_mask"].dims == ("latitude", "longitude")
    xr.testing.assert_equal(ds, truth.drop_vars("time"))
    assert "z -> geopotential_at_surface (era5 name)" in ds.attrs["history"]


def test_ncep_gaussian_latitudes_are_accepted(tmp_path):
    lat = np.degrees(np.arcsin(np.polynomial.legendre.leggauss(94)[0]))  # T62 grid of air.2m.gauss
    native = xr.Dataset(
        {"air": (("time", "lat", "lon"), np.full((2, 94, 8), 280.0, "float32"), {"units": "degK"})},
        coords={
            "time": testing.canonical_dataset(n_time=2, n_lat=2, n_lon=2)["time"].values,
            "lat": lat[::-1],
            "lon": np.arange(8) * 45.0,
        },
    )
    native.to_netcdf(tmp_path / "air.2m.gauss.nc")
    ds = open_dataset(tmp_path / "air.2m.gauss.nc")
    np.testing.assert_array_equal(ds["latitude"].values, lat)
    assert float(ds["2m_temperature"].max()) == 280.0
