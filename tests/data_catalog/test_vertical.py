"""Levels never lost: scalar pressure coordinates, stated levels, near-surface only on evidence."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_catalog import open_dataset, testing
from data_catalog.errors import DataInputError


@pytest.fixture(scope="module")
def truth() -> xr.Dataset:
    return testing.canonical_dataset(
        n_time=4, n_lat=8, n_lon=16, levels=(500,), variables=["temperature", "u_component_of_wind"]
    )


def single_level_extract(truth: xr.Dataset, names: dict[str, str], coord: str, value: float, attrs: dict) -> xr.Dataset:
    """The 500 hPa fields with the level kept only as a scalar coordinate, native names ``names``."""
    out = truth.isel(level=0, drop=True).rename(names)
    for short in names.values():
        out[short].attrs = {"units": "K" if short in ("air", "t", "ta") else "m s-1"}
    return out.assign_coords({coord: xr.DataArray(value, attrs=attrs)})


@pytest.mark.parametrize(
    "coord, value, attrs",
    [
        ("air_pressure", 50000.0, {"units": "Pa", "standard_name": "air_pressure"}),
        ("level", 500.0, {"units": "hPa"}),
        ("plev", 50000.0, {"units": "Pa", "axis": "Z"}),
        ("pres", 500.0, {"units": "millibar", "positive": "down"}),
    ],
)
@pytest.mark.parametrize(
    "names",
    [{"temperature": "air", "u_component_of_wind": "uwnd"}, {"temperature": "t", "u_component_of_wind": "u"}],
    ids=["ncep", "era5"],
)
def test_scalar_pressure_coordinate_becomes_a_level(truth, tmp_path, coord, value, attrs, names):
    path = tmp_path / "extract.nc"
    single_level_extract(truth, names, coord, value, attrs).to_netcdf(path)
    ds = open_dataset(path)
    assert set(ds.data_vars) == {"temperature", "u_component_of_wind"}  # not 2m_temperature / 10m wind
    assert ds["temperature"].dims == ("time", "level", "latitude", "longitude")
    assert ds["level"].values.tolist() == [500]
    xr.testing.assert_equal(ds["temperature"], truth["temperature"])
    assert f"scalar pressure coordinate {coord!r} = 500 hPa" in ds.attrs["history"]


def test_scalar_level_is_not_given_to_surface_fields(tmp_path):
    truth = testing.canonical_dataset(
        n_time=2,
        n_lat=8,
        n_lon=16,
        levels=(500,),
        variables=["temperature", "2m_temperature", "mean_sea_level_pressure"],
    )
    native = testing.era5_cds_netcdf(truth.isel(level=0, drop=True)).assign_coords(
        pressure_level=xr.DataArray(500.0, attrs={"units": "hPa"})
    )
    native.to_netcdf(tmp_path / "mixed.nc")  # every variable lists the scalar pressure_level in 'coordinates'
    ds = open_dataset(tmp_path / "mixed.nc")
    assert set(ds.data_vars) == set(truth.data_vars)
    assert ds["temperature"].dims == ("time", "level", "latitude", "longitude")
    assert ds["2m_temperature"].dims == ("time", "latitude", "longitude")
    xr.testing.assert_equal(ds, truth)


def test_pressure_dimension_found_by_its_attributes(tmp_path):
    truth = testing.canonical_dataset(n_time=2, n_lat=8, n_lon=16, levels=(500, 850), variables=["temperature"])
    native = truth.rename(level="pres", temperature="ta")
    native["pres"] = (native["pres"] * 100.0).assign_attrs(units="Pa", axis="Z", positive="down")
    native["ta"].attrs = {"units": "K", "standard_name": "air_temperature"}
    native.to_netcdf(tmp_path / "ta.nc")
    ds = open_dataset(tmp_path / "ta.nc")
    assert ds["level"].values.tolist() == [500, 850]
    xr.testing.assert_equal(ds, truth)


def test_level_stated_in_attributes(truth, tmp_path):
    native = truth.isel(level=0, drop=True)[["temperature"]].rename(temperature="air")
    native["air"].attrs = {"units": "degK", "level_desc": "500 mbar"}
    native.to_netcdf(tmp_path / "air.nc")
    ds = open_dataset(tmp_path / "air.nc")
    assert list(ds.data_vars) == ["temperature"] and ds["level"].values.tolist() == [500]
    xr.testing.assert_equal(ds["temperature"], truth["temperature"])


def test_undecidable_vertical_position_stops_naming_file_and_variable(truth, tmp_path, run_cli):
    native = truth.isel(level=0, drop=True)[["temperature"]].rename(temperature="ta")
    native["ta"].attrs = {"units": "K", "standard_name": "air_temperature"}
    native.to_netcdf(tmp_path / "ta.nc")
    with pytest.raises(
        DataInputError,
        match=r"ta\.nc: variable 'ta': cannot tell whether this is temperature on a"
        r" pressure level or 2m_temperature",
    ):
        open_dataset(tmp_path / "ta.nc")
    status, _, stderr = run_cli("ingest", tmp_path / "ta.nc", "--out", tmp_path / "ta.zarr")
    assert status == 2 and len(stderr.strip().splitlines()) == 1 and "'ta'" in stderr
    assert not (tmp_path / "ta.zarr").exists()


def test_pressure_level_name_without_any_level_is_refused(truth, tmp_path):
    native = truth.isel(level=0, drop=True)[["temperature"]].rename(temperature="t")
    native["t"].attrs = {"units": "K"}
    native.to_netcdf(tmp_path / "t.nc")
    with pytest.raises(
        DataInputError,
        match=r"variable 't': is temperature on pressure levels, but the file has no"
        " level",
    ):
        open_dataset(tmp_path / "t.nc")


@pytest.mark.parametrize("how", ["height coordinate", "long_name", "file name"])
def test_near_surface_only_on_evidence(truth, tmp_path, how):
    native = truth.isel(level=0, drop=True)[["temperature"]].rename(temperature="ta")
    native["ta"].attrs = {"units": "K", "standard_name": "air_temperature"}
    name = "ta.nc"
    if how == "height coordinate":
        native = native.assign_coords(height=xr.DataArray(2.0, attrs={"units": "m", "standard_name": "height"}))
    elif how == "long_name":
        native["ta"].attrs["long_name"] = "Near-surface air temperature at 2 m"
    else:
        name = "ta.2m.nc"
    native.to_netcdf(tmp_path / name)
    ds = open_dataset(tmp_path / name)
    assert list(ds.data_vars) == ["2m_temperature"]
    np.testing.assert_array_equal(ds["2m_temperature"].values, truth["temperature"].values[:, 0])
    assert "ta: taken as 2m_temperature" in ds.attrs["history"]


def test_grib_single_level_and_surface_fields(tmp_path):
    pytest.importorskip("cfgrib", reason="GRIB needs the grib extra (cfgrib, ecCodes)")
    truth = testing.canonical_dataset(
        n_time=2, n_lat=8, n_lon=16, levels=(500,), variables=["temperature", "2m_temperature"]
    )
    path = testing.write_era5_grib(truth, tmp_path / "one-level.grib")
    ds = open_dataset(path)
    assert ds["temperature"].dims == ("time", "level", "latitude", "longitude")
    assert ds["level"].values.tolist() == [500]
    xr.testing.assert_equal(ds, truth)
