"""Physically impossible values refused at the door: mislabelled units name the variable, range and cause."""

from __future__ import annotations

import pytest
import xarray as xr

from data_catalog import open_dataset, testing
from data_catalog.errors import DataInputError
from data_catalog.schema import GRAVITY, plausible_range, standard_atmosphere_height

LEVELS = (50, 250, 500, 850, 1000)
VARIABLES = ["geopotential", "temperature", "specific_humidity", "2m_temperature", "mean_sea_level_pressure"]


@pytest.fixture(scope="module")
def truth() -> xr.Dataset:
    return testing.canonical_dataset(n_time=6, n_lat=8, n_lon=16, levels=LEVELS, variables=VARIABLES)


def era5_file(truth, tmp_path, change=None):
    native = testing.era5_cds_netcdf(truth)
    if change is not None:
        native = change(native)
    path = tmp_path / "era5.nc"
    native.to_netcdf(path)
    return path


def test_realistic_values_on_every_level_pass(truth, tmp_path):
    ds = open_dataset(era5_file(truth, tmp_path))
    xr.testing.assert_equal(ds, truth)


def test_standard_atmosphere_and_geopotential_ranges():
    # ICAO standard atmosphere: 500 hPa at 5574 m, 250 hPa at 10363 m, 50 hPa at 20576 m
    for level, metres in ((500, 5574), (250, 10363), (50, 20576), (1013.25, 0)):
        assert abs(standard_atmosphere_height(level) - metres) < 3
    low, high = plausible_range("geopotential", 500)
    assert low < GRAVITY * 4800 and high > GRAVITY * 6000  # the whole observed 500 hPa range
    assert high < GRAVITY * 5574 * 9.81 and low > 5574 * 1.0  # geopotential metres read as m2 s-2 fall out


def kelvin_labelled_celsius(ds):
    ds["t"].attrs["units"] = "degC"  # values stay in K: 273.15 is added again
    return ds


def celsius_labelled_kelvin(ds):
    ds["t2m"] = (ds["t2m"] - 273.15).assign_attrs(ds["t2m"].attrs)  # -4..38 labelled K
    return ds


def hpa_labelled_pa(ds):
    ds["msl"] = (ds["msl"] / 100).assign_attrs(ds["msl"].attrs)
    return ds


def height_labelled_geopotential(ds):
    ds["z"] = (ds["z"] / GRAVITY).assign_attrs(ds["z"].attrs)  # gpm with units m**2 s**-2
    return ds


def grams_labelled_kilograms(ds):
    ds["q"] = (ds["q"] * 1000).assign_attrs(ds["q"].attrs)
    return ds


@pytest.mark.parametrize(
    "change, variable, cause",
    [
        (kelvin_labelled_celsius, "temperature", "K labelled as degC"),
        (celsius_labelled_kelvin, "2m_temperature", "degC labelled as K"),
        (hpa_labelled_pa, "mean_sea_level_pressure", "hPa labelled as Pa"),
        (height_labelled_geopotential, "geopotential", "gpm labelled as m2 s-2"),
        (grams_labelled_kilograms, "specific_humidity", "g kg-1 labelled as kg kg-1"),
    ],
    ids=["K-as-degC", "degC-as-K", "hPa-as-Pa", "gpm-as-m2s-2", "g-as-kg"],
)
def test_mislabelled_units_are_refused(truth, tmp_path, run_cli, change, variable, cause):
    path = era5_file(truth, tmp_path, change)
    with pytest.raises(DataInputError, match=f"variable '{variable}': values .* outside the plausible range .*{cause}"):
        open_dataset(path)
    status, _, stderr = run_cli("ingest", path, "--out", tmp_path / "out.zarr")
    assert status == 2 and len(stderr.strip().splitlines()) == 1
    assert variable in stderr and cause in stderr
    assert not (tmp_path / "out.zarr").exists() and not list(tmp_path.glob(".out.zarr*"))


def test_refused_range_is_the_one_found(truth, tmp_path):
    path = era5_file(truth, tmp_path, celsius_labelled_kelvin)
    found = truth["2m_temperature"].isel(time=[0, -1]) - 273.15
    with pytest.raises(DataInputError) as error:
        open_dataset(path)
    assert f"values {float(found.min()):.6g}..{float(found.max()):.6g} K outside the plausible range 150..350 K" in str(
        error.value
    )


def test_unexplained_values_name_no_unit(truth, tmp_path):
    def negative_pressure(ds):
        ds["msl"] = (-ds["msl"]).assign_attrs(ds["msl"].attrs)
        return ds

    with pytest.raises(DataInputError, match="likely cause: wrong data, a units attribute the reader does not know"):
        open_dataset(era5_file(truth, tmp_path, negative_pressure))
