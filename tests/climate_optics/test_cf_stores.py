"""Every store type the command line writes is CF-clean: CF tools find its axes, coordinates and
variables by their attributes, and its provenance names files by absolute paths.

One tiny run through the CLI, from the run directory with relative paths (as a user types them):
ingest, train a forecaster and a downscaler, forecast, downscale the forecast (an ensemble
forecast), downscale an analysis, the bilinear baseline, evaluate.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import xarray as xr

from data_catalog import testing

cf_xarray = pytest.importorskip("cf_xarray", reason="the CF checks use cf_xarray (dev extra)")

pytestmark = pytest.mark.usefixtures("torch_single_thread_module")

FORECASTS = ("forecast.zarr", "ensemble-forecast.zarr", "downscaled.zarr", "bilinear.zarr")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from flows.cli import main

    root = tmp_path_factory.mktemp("cf-run")
    truth = testing.canonical_dataset(
        n_time=40,
        n_lat=32,
        n_lon=64,
        levels=(500, 850),
        variables=["temperature", "2m_temperature", "land_sea_mask", "geopotential_at_surface"],
    )
    truth.to_netcdf(root / "source.nc")
    tiny = ["--steps", "1", "--batch-size", "2"]
    commands = [
        ["ingest", "source.nc", "--out", "data.zarr"],
        ["train", "forecast", "--data", "data.zarr", "--out", "fc-run", *tiny],
        [
            "forecast",
            "--checkpoint",
            "fc-run",
            "--data",
            "data.zarr",
            "--init",
            "2020-01-05:2020-01-06",
            "--lead-times",
            "6h,12h",
            "--out",
            "forecast.zarr",
        ],
        ["train", "downscale", "--data", "data.zarr", "--out", "ds-run", *tiny, "--diffusion-steps", "1"],
        [
            "downscale",
            "--checkpoint",
            "ds-run",
            "--coarse",
            "forecast.zarr",
            "--coarsen",
            "2",
            "--members",
            "2",
            "--steps",
            "2",
            "--out",
            "ensemble-forecast.zarr",
        ],
        [
            "downscale",
            "--checkpoint",
            "ds-run",
            "--coarse",
            "data.zarr",
            "--coarsen",
            "2",
            "--members",
            "2",
            "--steps",
            "2",
            "--start",
            "2020-01-05",
            "--end",
            "2020-01-05",
            "--out",
            "downscaled.zarr",
        ],
        [
            "downscale",
            "--checkpoint",
            "ds-run",
            "--coarse",
            "forecast.zarr",
            "--coarsen",
            "2",
            "--bilinear",
            "--out",
            "bilinear.zarr",
        ],
        ["evaluate", "forecast.zarr", "--truth", "data.zarr", "--out", "scores.zarr", "--allow-in-sample-climatology"],
    ]
    here = os.getcwd()
    os.chdir(root)
    try:
        for args in commands:
            assert main(args) == 0, args
    finally:
        os.chdir(here)
    return root


def strings(value):
    """Every string inside an attribute value (JSON-encoded dicts and lists too)."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            yield value
            return
        if isinstance(decoded, str):
            yield decoded
        else:
            yield from strings(decoded)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.mark.parametrize("name", ["data.zarr", *FORECASTS, "scores.zarr"])
def test_store_is_cf_with_absolute_provenance(run, name):
    ds = xr.open_zarr(run / name)
    assert ds.attrs["Conventions"].startswith("CF-"), name
    for value in strings(dict(ds.attrs)):  # a relative path would depend on where the command ran
        assert not value or os.path.isabs(value) or not (run / value).exists(), (name, value)
    assert ds.attrs["source_dataset"] == str(run / ("forecast.zarr" if name == "scores.zarr" else "source.nc"))
    for coord, attrs in {"latitude": {"units": "degrees_north"}, "longitude": {"units": "degrees_east"}}.items():
        if coord in ds.coords:
            assert attrs.items() <= ds[coord].attrs.items(), (name, coord)
    for var in ds.data_vars:
        if name != "scores.zarr":  # scores: units per metric (tests/climate_optics/test_evaluation.py)
            assert {"standard_name", "long_name", "units"} <= set(ds[var].attrs), (name, var)


@pytest.mark.parametrize("name", FORECASTS)
def test_forecast_stores_name_their_axes_and_times(run, name):
    ds = xr.open_zarr(run / name)
    assert ds.cf.axes["X"] == ["longitude"] and ds.cf.axes["Y"] == ["latitude"]
    assert ds.cf.coordinates["latitude"] == ["latitude"] and ds.cf.coordinates["longitude"] == ["longitude"]
    assert ds.cf.standard_names["forecast_reference_time"] == ["time"]
    assert ds.cf.standard_names["forecast_period"] == ["prediction_timedelta"]
    assert ds["prediction_timedelta"].attrs["long_name"].startswith("lead time")
    assert ds.cf.standard_names["air_temperature"] == ["2m_temperature", "temperature"]
    assert ds.cf.axes["Z"] == ["level"] and ds["level"].attrs["units"] == "hPa"
    assert ds["level"].attrs["standard_name"] == "air_pressure"
    if name in ("ensemble-forecast.zarr", "downscaled.zarr"):
        assert ds.cf.standard_names["realization"] == ["realization"]
    raw = xr.open_zarr(run / name, decode_timedelta=False)  # the encoded lead: a number with CF time units
    assert raw["prediction_timedelta"].attrs["units"] in ("hours", "days", "minutes", "seconds")
    assert np.issubdtype(ds["prediction_timedelta"].dtype, np.timedelta64)


def test_forecast_provenance_names_the_input_store(run):
    ds = xr.open_zarr(run / "ensemble-forecast.zarr")
    assert ds.attrs["input_store"] == str(run / "forecast.zarr")
    assert ds.attrs["forecast_input_store"] == str(run / "data.zarr")  # the forecaster's provenance, kept
    assert xr.open_zarr(run / "bilinear.zarr").attrs["grid_from"].startswith(str(run / "ds-run"))
