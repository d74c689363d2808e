"""Every kind of bad input stops with one clear DataInputError naming file, variable, expectation."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog import testing
from data_catalog.errors import DataInputError
from data_catalog.readers import open_dataset


@pytest.fixture(scope="module")
def truth():
    return testing.canonical_dataset(n_time=4, n_lat=8, n_lon=16, levels=(500, 850), seed=2)


@pytest.fixture
def era5(truth):
    return testing.era5_cds_netcdf(truth[["temperature", "2m_temperature"]])


def fails(path, match, **kwargs):
    with pytest.raises(DataInputError, match=match) as err:
        open_dataset(path, **kwargs)
    return str(err.value)


def test_missing_file_and_empty_glob(tmp_path):
    fails(tmp_path / "nope.nc", "nope.nc: not a catalog entry and no such file")
    fails(str(tmp_path / "none*.nc"), "no such file")


def test_truncated_netcdf(tmp_path, era5):
    era5.to_netcdf(tmp_path / "full.nc")
    data = (tmp_path / "full.nc").read_bytes()
    (tmp_path / "cut.nc").write_bytes(data[: len(data) // 2])
    message = fails(tmp_path / "cut.nc", "unreadable or truncated file")
    assert "cut.nc" in message and "expected a readable NetCDF file" in message


def test_not_a_netcdf_file(tmp_path):
    (tmp_path / "notes.nc").write_text("hello")
    fails(tmp_path / "notes.nc", "notes.nc: unreadable or truncated file")


def test_absent_variable_and_level(tmp_path, era5):
    era5.to_netcdf(tmp_path / "era5.nc")
    message = fails(tmp_path / "era5.nc", "variable 'geopotential': variable not found", variables=["geopotential"])
    assert "era5.nc" in message and "available: temperature, 2m_temperature" in message
    message = fails(tmp_path / "era5.nc", "level 700 hPa not found", levels=[700])
    assert "era5.nc" in message and "variable 'temperature'" in message and "available: 500, 850" in message
    fails(
        tmp_path / "era5.nc",
        "no time in 1990-01-01..1990-02-01; the data covers 2020-01-01",
        time=("1990-01-01", "1990-02-01"),
    )


def test_unknown_units(tmp_path, era5):
    era5["t"].attrs["units"] = "furlongs"
    era5.to_netcdf(tmp_path / "era5.nc")
    message = fails(tmp_path / "era5.nc", r"variable 't': unknown units 'furlongs' for temperature; expected 'K'")
    assert "era5.nc" in message


def test_missing_units_without_standard_name(tmp_path, era5):
    del era5["t"].attrs["units"]
    era5.to_netcdf(tmp_path / "era5.nc")
    fails(tmp_path / "era5.nc", r"era5.nc: variable 't': no units attribute and no CF standard_name")


@pytest.mark.parametrize(
    "order, match",
    [
        ([0, 1, 1, 3], "duplicated time 2020-01-01 06:00:00; expected unique"),
        ([0, 2, 1, 3], "time not increasing at 2020-01-01 06:00"),
    ],
)
def test_bad_times(tmp_path, era5, order, match):
    era5.assign_coords(valid_time=era5["valid_time"].values[order]).to_netcdf(tmp_path / "era5.nc")
    message = fails(tmp_path / "era5.nc", match)
    assert "era5.nc: variable 'time'" in message


def test_duplicated_times_across_files(tmp_path, era5):
    era5.isel(valid_time=slice(0, 3)).to_netcdf(tmp_path / "a.nc")
    era5.isel(valid_time=slice(2, 4)).to_netcdf(tmp_path / "b.nc")
    fails(str(tmp_path / "*.nc"), "a.nc")


def test_irregular_grid(tmp_path, era5):
    lat = era5["latitude"].values.copy()
    lat[3] += 4.0
    era5.assign_coords(latitude=lat).to_netcdf(tmp_path / "era5.nc")
    fails(tmp_path / "era5.nc", "variable 'latitude': irregular latitude spacing .* expected a regular grid")


def test_mismatched_grid_between_files(tmp_path, era5):
    era5.isel(valid_time=slice(0, 2)).to_netcdf(tmp_path / "a.nc")
    shifted = era5.isel(valid_time=slice(2, 4))
    shifted = shifted.assign_coords(longitude=shifted["longitude"] + 1.0)
    shifted.to_netcdf(tmp_path / "b.nc")
    message = fails(str(tmp_path / "*.nc"), "variable 'longitude': longitude differs from")
    assert message.startswith(str(tmp_path / "b.nc"))


def test_all_nan_field_and_level(tmp_path, era5):
    broken = era5.copy(deep=True)
    broken["t2m"][:] = np.nan
    broken.to_netcdf(tmp_path / "t2m.nc")
    fails(tmp_path / "t2m.nc", "variable '2m_temperature': all values are NaN; expected a field")
    broken = era5.copy(deep=True)
    broken["t"].loc[{"pressure_level": 850}] = np.nan
    broken.to_netcdf(tmp_path / "t.nc")
    fails(tmp_path / "t.nc", "variable 'temperature': all values are NaN at level.s. 850 hPa")
    # NaN only at the first and last time steps is not an all-NaN field
    partly = era5.copy(deep=True)
    partly["t2m"][[0, -1]] = np.nan
    partly.to_netcdf(tmp_path / "partly.nc")
    assert int(open_dataset(tmp_path / "partly.nc")["2m_temperature"].isnull().sum()) == 2 * 8 * 16


def test_six_hourly_era5_precipitation_is_refused(tmp_path, truth):
    native = truth[["2m_temperature"]].rename({"2m_temperature": "tp"})
    native["tp"].attrs = {"units": "m"}
    native.to_netcdf(tmp_path / "tp.nc")
    fails(tmp_path / "tp.nc", "variable 'tp': holds 1-hour accumulations; expected 1-hourly times")


def test_nothing_mappable(tmp_path, truth):
    native = truth[["temperature"]].rename(temperature="r")
    native["r"].attrs = {"units": "%", "long_name": "relative humidity"}
    native.to_netcdf(tmp_path / "r.nc")
    fails(tmp_path / "r.nc", r"no variable could be mapped \(found: r\)")


def test_cli_inspect_bad_file_exit_status_2(run_cli, tmp_path, era5):
    (tmp_path / "cut.nc").write_bytes(b"CDF\x01\x00")
    status, _, err = run_cli("catalog", "inspect", tmp_path / "cut.nc")
    assert status == 2
    (line,) = err.strip().splitlines()
    assert "cut.nc: unreadable or truncated file" in line
    era5.to_netcdf(tmp_path / "era5.nc")
    status, _, err = run_cli("catalog", "inspect", tmp_path / "era5.nc", "--variables", "geopotential")
    assert status == 2 and "variable 'geopotential': variable not found" in err


def test_cli_inspect_prints_canonical_summary(run_cli, tmp_path, era5):
    era5.to_netcdf(tmp_path / "era5.nc")
    status, out, _ = run_cli("catalog", "inspect", tmp_path / "era5.nc")
    assert status == 0
    assert "temperature" in out and "2m_temperature" in out and "t -> temperature (era5 name)" in out
