"""A corpus of bad inputs, built here by code, each fed to the command line as a user would.

Every case must end with exit status 2 and one line on stderr that names the problem and the file,
write nothing (the directory is unchanged: no store, temporary or lock file), run nothing from the
file (payloads would create ``pwned``), and never advise loading unsafely (``weights_only=False``).
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from climate_optics.io.checkpoints import save_checkpoint
from data_catalog import testing

VARIABLES = ["temperature", "2m_temperature"]


@dataclass
class Inputs:
    truth: xr.Dataset  # canonical
    era5: xr.Dataset  # the same in ERA5 (CDS NetCDF) layout
    store: Path  # ingested truth store
    forecast: Path  # a forecast store on the truth grid


@dataclass
class Case:
    args: list  # command line
    names: Path  # the file the error line must name
    says: str  # the problem, as the error line words it


CASES: dict[str, Callable[[Path, Inputs], Case]] = {}


def case(function: Callable[[Path, Inputs], Case]) -> Callable[[Path, Inputs], Case]:
    CASES[function.__name__] = function
    return function


def ingest(path: Path, d: Path, *more: object) -> list:
    return ["ingest", path, "--out", d / "out.zarr", *more]


def era5_file(d: Path, ds: xr.Dataset, name: str = "era5.nc") -> Path:
    ds.to_netcdf(d / name)
    return d / name


# -- NetCDF and GRIB files ----------------------------------------------------------------------------


@case
def zero_byte_netcdf(d, i):
    (d / "empty.nc").write_bytes(b"")
    return Case(ingest(d / "empty.nc", d), d / "empty.nc", "unreadable or truncated file")


@case
def truncated_netcdf(d, i):
    data = era5_file(d, i.era5, "full.nc").read_bytes()
    (d / "full.nc").unlink()
    (d / "cut.nc").write_bytes(data[: len(data) // 2])
    return Case(ingest(d / "cut.nc", d), d / "cut.nc", "unreadable or truncated file")


@case
def text_file_named_netcdf(d, i):
    (d / "notes.nc").write_text("temperature,280\n")
    return Case(ingest(d / "notes.nc", d), d / "notes.nc", "unreadable or truncated file")


@case
def garbage_grib(d, i):
    (d / "era5.grib").write_bytes(b"GRIB" + bytes(100))
    return Case(ingest(d / "era5.grib", d), d / "era5.grib", "grib")


@case
def missing_file(d, i):
    return Case(ingest(d / "nope.nc", d), d / "nope.nc", "no such file")


@case
def empty_glob(d, i):
    return Case(ingest(str(d / "none-*.nc"), d), d / "none-*.nc", "no such file")


@case
def nonsense_units(d, i):
    ds = i.era5.copy()
    ds["t"].attrs["units"] = "furlongs"
    return Case(ingest(era5_file(d, ds), d), d / "era5.nc", "unknown units 'furlongs'")


@case
def missing_units(d, i):
    ds = i.era5.copy()
    ds["t"].attrs = {}
    return Case(ingest(era5_file(d, ds), d), d / "era5.nc", "no units attribute")


@case
def duplicated_times(d, i):
    ds = i.era5.assign_coords(valid_time=i.era5["valid_time"].values[[0, 1, 1, 3, 4, 5, 6, 7]])
    return Case(ingest(era5_file(d, ds), d), d / "era5.nc", "duplicated time")


@case
def reversed_times(d, i):
    ds = i.era5.assign_coords(valid_time=i.era5["valid_time"].values[::-1])
    return Case(ingest(era5_file(d, ds), d), d / "era5.nc", "time not increasing")


@case
def duplicated_latitudes(d, i):
    lat = i.era5["latitude"].values.copy()
    lat[1] = lat[0]
    return Case(ingest(era5_file(d, i.era5.assign_coords(latitude=lat)), d), d / "era5.nc", "latitude")


@case
def no_latitude(d, i):
    ds = i.era5.rename({"latitude": "y"})
    return Case(ingest(era5_file(d, ds), d), d / "era5.nc", "latitude")


@case
def all_nan_field(d, i):
    ds = i.era5.copy()
    ds["t2m"] = ds["t2m"] * np.nan
    return Case(
        ["evaluate", i.forecast, "--truth", era5_file(d, ds), "--out", d / "scores.zarr"],
        d / "era5.nc",
        "all values are NaN",
    )


@case
def string_values(d, i):
    ds = i.era5.copy()
    ds["t2m"] = ds["t2m"].astype(str)
    return Case(ingest(era5_file(d, ds), d), d / "era5.nc", "t2m")


@case
def absent_variable(d, i):
    return Case(ingest(era5_file(d, i.era5), d, "--variables", "geopotential"), d / "era5.nc", "variable not found")


@case
def absent_level(d, i):
    return Case(ingest(era5_file(d, i.era5), d, "--levels", "700"), d / "era5.nc", "level 700 hPa not found")


@case
def period_outside_the_data(d, i):
    return Case(
        ingest(era5_file(d, i.era5), d, "--start", "1990-01-01", "--end", "1990-02-01"), d / "era5.nc", "no time in"
    )


# -- Zarr stores --------------------------------------------------------------------------------------


def copy_store(d: Path, i: Inputs) -> Path:
    shutil.copytree(i.store, d / "src.zarr")
    return d / "src.zarr"


@case
def zero_byte_zarr_metadata(d, i):
    store = copy_store(d, i)
    (store / "zarr.json").write_bytes(b"")
    return Case(ingest(store, d), store, "unreadable Zarr store")


@case
def missing_zarr_chunk(d, i):
    store = copy_store(d, i)
    chunk = next(p for p in sorted((store / "temperature" / "c").rglob("*")) if p.is_file())
    chunk.unlink()
    return Case(ingest(store, d), store, "temperature")


def truncate_first_chunk(store: Path, variable: str) -> None:
    chunk = next(p for p in sorted((store / variable / "c").rglob("*")) if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[:10])


@case
def corrupt_zarr_chunk(d, i):
    store = copy_store(d, i)
    truncate_first_chunk(store, "temperature")
    return Case(ingest(store, d), store, "temperature")


@case
def corrupt_truth_chunk_in_evaluate(d, i):
    store = copy_store(d, i)
    truncate_first_chunk(store, "2m_temperature")
    return Case(
        ["evaluate", i.forecast, "--truth", store, "--out", d / "scores.zarr", "--allow-in-sample-climatology"],
        store,
        "chunk 0.0.0 cannot be decoded",
    )


@case
def forecast_store_is_a_file(d, i):
    (d / "forecast.zarr").write_text("not a store")
    return Case(
        ["evaluate", d / "forecast.zarr", "--truth", i.store, "--out", d / "scores.zarr"],
        d / "forecast.zarr",
        "forecast",
    )


@case
def forecast_on_another_grid(d, i):
    coarse = i.forecast.parent / "coarse-forecast.zarr"
    return Case(["evaluate", coarse, "--truth", i.store, "--out", d / "scores.zarr"], coarse, "grid")


# -- catalog files ------------------------------------------------------------------------------------

ENTRY = "{description: d, driver: netcdf, location: era5.nc, licence: l, citation: c"


def catalog_case(d: Path, i: Inputs, text: str, says: str) -> Case:
    era5_file(d, i.era5)
    (d / "catalog.yaml").write_text(text)
    return Case(["ingest", "mine", "--catalog", d / "catalog.yaml", "--out", d / "out.zarr"], d / "catalog.yaml", says)


@case
def catalog_unknown_key(d, i):
    return catalog_case(d, i, f"entries:\n  mine: {ENTRY}, colour: red}}\n", "colour")


@case
def catalog_wrong_type(d, i):
    return catalog_case(d, i, f"entries:\n  mine: {ENTRY}, levels: many}}\n", "levels")


@case
def catalog_python_object_tag(d, i):
    return catalog_case(d, i, "entries: !!python/object/apply:os.system ['touch pwned']\n", "not valid YAML")


@case
def catalog_location_escaping_its_directory(d, i):
    return catalog_case(
        d,
        i,
        "entries:\n  mine: {description: d, driver: netcdf, location: ../../etc/passwd, licence: l, citation: c}\n",
        "leaves the catalog's directory",
    )


@case
def catalog_not_a_mapping(d, i):
    return catalog_case(d, i, "- just\n- a list\n", "expected a mapping")


@case
def catalog_invalid_yaml(d, i):
    return catalog_case(d, i, "entries: {mine: [unclosed\n", "not valid YAML")


@case
def catalog_missing_field(d, i):
    return catalog_case(
        d, i, "entries:\n  mine: {description: d, driver: netcdf, location: era5.nc, citation: c}\n", "licence"
    )


@case
def catalog_unknown_canonical_name(d, i):
    return catalog_case(d, i, f"entries:\n  mine: {ENTRY}, variables: {{t: temperatura}}}}\n", "temperatura")


@case
def catalog_file_missing(d, i):
    return Case(
        ["ingest", "mine", "--catalog", d / "nope.yaml", "--out", d / "out.zarr"],
        d / "nope.yaml",
        "catalog file not found",
    )


# -- checkpoints --------------------------------------------------------------------------------------


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def forecast_case(d: Path, i: Inputs, says: str) -> Case:
    return Case(
        [
            "forecast",
            "--checkpoint",
            d / "checkpoint.pt",
            "--data",
            i.store,
            "--init",
            "2020-01-01:2020-01-01",
            "--lead-times",
            "6h",
            "--out",
            d / "forecast.zarr",
        ],
        d / "checkpoint.pt",
        says,
    )


def saved_checkpoint(d: Path) -> Path:
    return save_checkpoint(
        {"model": {"w": torch.ones(2)}, "task": {"kind": "forecast"}, "step": 1}, d / "checkpoint.pt"
    )


@case
def checkpoint_with_tampered_hash(d, i):
    state = torch.load(saved_checkpoint(d), weights_only=True)
    torch.save(state | {"sha256": "f" * 64}, d / "checkpoint.pt")
    return forecast_case(d, i, "do not match their recorded sha256")


@case
def checkpoint_with_altered_weights(d, i):
    state = torch.load(saved_checkpoint(d), weights_only=True)
    state["model"]["w"][0] = 3.0
    torch.save(state, d / "checkpoint.pt")
    return forecast_case(d, i, "do not match their recorded sha256")


@case
def pickle_where_weights_are_expected(d, i):
    (d / "checkpoint.pt").write_bytes(pickle.dumps({"model": Payload(), "task": {}}))
    return forecast_case(d, i, "raw pickle")


@case
def torch_file_holding_an_object(d, i):
    torch.save({"model": Payload(), "task": {}}, d / "checkpoint.pt")
    return forecast_case(d, i, "Python objects")


@case
def zero_byte_checkpoint(d, i):
    (d / "checkpoint.pt").write_bytes(b"")
    return forecast_case(d, i, "not a torch zip archive")


@case
def truncated_checkpoint(d, i):
    data = saved_checkpoint(d).read_bytes()
    (d / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    return forecast_case(d, i, "truncated")


@case
def missing_checkpoint(d, i):
    return forecast_case(d, i, "checkpoint not found")


# -- pipeline settings --------------------------------------------------------------------------------


@case
def pipeline_settings_with_python_tag(d, i):
    (d / "settings.yaml").write_text("steps: !!python/object/apply:os.system ['touch pwned']\n")
    return Case(["demo", "--config", d / "settings.yaml", "--out", d / "run"], d / "settings.yaml", "not valid YAML")


# -- the test -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Inputs:
    from climate_optics.stores import ForecastStoreWriter
    from flows.cli import main

    root = tmp_path_factory.mktemp("corpus-inputs")
    truth = testing.canonical_dataset(n_time=8, n_lat=8, n_lon=16, levels=(500, 850), variables=VARIABLES, seed=5)
    era5 = testing.era5_cds_netcdf(truth)
    era5.to_netcdf(root / "era5.nc")
    assert main(["ingest", str(root / "era5.nc"), "--out", str(root / "truth.zarr")]) == 0
    for name, ds in (("forecast.zarr", truth), ("coarse-forecast.zarr", truth.isel(latitude=slice(0, None, 2)))):
        with ForecastStoreWriter(
            root / name,
            channels=["2m_temperature"],
            init_times=ds["time"].values[:2],
            lead_times=np.array([6], "timedelta64[h]"),
            latitude=ds["latitude"].values,
            longitude=ds["longitude"].values,
            attrs={"climate_optics_version": "test"},
        ) as writer:
            for t in range(2):
                writer.write(t, 0, ds["2m_temperature"].values[t + 1][None])
    return Inputs(truth, era5, root / "truth.zarr", root / "forecast.zarr")


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.rglob("*")}


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    "text, says",
    [
        ("frame_rate_hz: -1\n", "OPUConfig.frame_rate_hz must be a positive number"),
        ("bits: 0\n", "OPUConfig.bits must be in 1..16"),
        ("encoding: smoke\n", "OPUConfig.encoding must be one of"),
        ("dmd_shape: [0, 5]\n", "OPUConfig.dmd_shape must be two positive integers"),
        ("power_w: !!python/object/apply:os.system ['touch pwned']\n", "not valid YAML"),
    ],
)
def test_an_impossible_opu_configuration_is_bad_input(text, says, inputs, tmp_path, monkeypatch, run_cli):
    """``climate-optics train forecast --mode optical --opu-config FILE``: refused before any work."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "opu.yaml").write_text(text)
    before, inputs_before = snapshot(tmp_path), snapshot(inputs.store.parent)
    args = ["train", "forecast", "--data", inputs.store, "--out", tmp_path / "run", "--mode", "optical"]
    status, _, err = run_cli(*args, "--opu-config", tmp_path / "opu.yaml")
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, err
    assert str(tmp_path / "opu.yaml") in lines[0] and says in lines[0], lines[0]
    assert snapshot(tmp_path) == before and snapshot(inputs.store.parent) == inputs_before  # nothing written
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_exits_2_with_one_line_naming_problem_and_file(name, inputs, tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    bad = CASES[name](tmp_path, inputs)
    before, inputs_before = snapshot(tmp_path), snapshot(inputs.store.parent)
    status, _, err = run_cli(*bad.args)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, err
    assert str(bad.names) in lines[0] and bad.says.lower() in lines[0].lower(), lines[0]
    assert "weights_only" not in err and "Traceback" not in err
    assert snapshot(tmp_path) == before and snapshot(inputs.store.parent) == inputs_before  # nothing written
    assert not (tmp_path / "pwned").exists()
