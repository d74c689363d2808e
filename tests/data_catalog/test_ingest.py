"""`climate-optics ingest`: native layouts into identical canonical stores, atomicity, bad input."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from data_catalog import open_dataset, testing
from data_catalog.ingest import ingest, write_store
from data_catalog.stats import read_climatology, read_statistics

VARIABLES = ["geopotential", "temperature", "2m_temperature", "mean_sea_level_pressure"]


@pytest.fixture(scope="module")
def truth() -> xr.Dataset:
    return testing.canonical_dataset(n_time=44, n_lat=8, n_lon=16, levels=(500, 850), variables=VARIABLES)


@pytest.fixture(scope="module")
def layouts(truth, tmp_path_factory) -> dict[str, Path]:
    """The same data as ERA5 (CDS NetCDF) and NCEP/NCAR (PSL, one file per variable) files."""
    root = tmp_path_factory.mktemp("layouts")
    testing.write_netcdf({"era5": testing.era5_cds_netcdf(truth)}, root / "era5")
    testing.write_netcdf(testing.ncep_psl(truth), root / "ncep")
    return {"era5": root / "era5" / "era5.nc", "ncep": root / "ncep" / "*.nc"}


@pytest.fixture(scope="module")
def stores(layouts, tmp_path_factory) -> dict[str, Path]:
    from flows.cli import main

    out = tmp_path_factory.mktemp("stores")
    paths = {}
    for name, source in layouts.items():
        paths[name] = out / f"{name}.zarr"
        assert main(["ingest", str(source), "--out", str(paths[name]), "--time-chunk", "16"]) == 0
    return paths


def leftovers(directory: Path) -> list[str]:
    """Temporary siblings an interrupted write would leave."""
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def test_era5_and_ncep_layouts_give_identical_stores(stores, truth):
    era5, ncep = (xr.open_zarr(stores[k]) for k in ("era5", "ncep"))
    assert list(era5.data_vars) == list(ncep.data_vars) and set(era5.data_vars) == set(VARIABLES)
    for name in VARIABLES:
        assert era5[name].dims == ncep[name].dims == truth[name].dims
        np.testing.assert_array_equal(era5[name].values, truth[name].values)  # ERA5 units are canonical
        # NCEP geopotential height goes through gpm -> m2 s-2: float32 rounding only.
        np.testing.assert_allclose(ncep[name].values, truth[name].values, rtol=1e-6, atol=0)
    for coord in ("time", "level", "latitude", "longitude"):
        np.testing.assert_array_equal(era5[coord].values, ncep[coord].values)
    xr.testing.assert_allclose(read_statistics(stores["era5"]), read_statistics(stores["ncep"]), rtol=1e-6)
    xr.testing.assert_allclose(
        read_climatology(stores["era5"]).load(), read_climatology(stores["ncep"]).load(), rtol=1e-6
    )


def test_store_layout_chunks_codec_and_provenance(stores):
    group = zarr.open_group(stores["era5"], mode="r")
    assert group.metadata.zarr_format == 3
    z = group["geopotential"]
    assert z.chunks == (16, 2, 8, 16)  # time-chunked, whole fields
    assert any("lz4" in str(c) for c in z.compressors)
    assert set(group.group_keys()) == {"statistics", "climatology"}  # no scratch left
    attrs = xr.open_zarr(stores["era5"]).attrs
    assert attrs["source_dataset"].endswith("era5.nc")
    assert attrs["climate_optics_version"] and attrs["created"]
    assert json.loads(attrs["ingest_options"])["time_chunk"] == 16
    assert leftovers(stores["era5"].parent) == []


def test_ingest_selection_matches_open_dataset(layouts, tmp_path):
    path = ingest(
        layouts["era5"],
        tmp_path / "sel.zarr",
        variables=["temperature"],
        levels=[850],
        start="2020-01-03",
        end="2020-01-06T06:00",
    )
    got = xr.open_zarr(path)
    expected = open_dataset(
        layouts["era5"], variables=["temperature"], levels=[850], time=("2020-01-03", "2020-01-06T06:00")
    )
    assert list(got.data_vars) == ["temperature"] and got["level"].values.tolist() == [850]
    np.testing.assert_array_equal(got["temperature"].values, expected["temperature"].values)
    assert got.sizes["time"] == 14


def test_static_fields_are_stored_without_time(tmp_path):
    ds = testing.canonical_dataset(
        n_time=8, n_lat=4, n_lon=8, variables=["2m_temperature", "land_sea_mask", "geopotential_at_surface"]
    )
    path = write_store(ds, tmp_path / "static.zarr", source="test")
    got = xr.open_zarr(path)
    assert got["land_sea_mask"].dims == ("latitude", "longitude")
    np.testing.assert_array_equal(got["geopotential_at_surface"].values, ds["geopotential_at_surface"].values)
    assert read_statistics(path)["land_sea_mask"].sel(statistic="diff_std") == 0
    assert "land_sea_mask" not in read_climatology(path)


def test_existing_store_kept_unless_overwrite(layouts, tmp_path, run_cli):
    out = tmp_path / "s.zarr"
    assert run_cli("ingest", layouts["era5"], "--out", out, "--variables", "temperature")[0] == 0
    status, _, err = run_cli("ingest", layouts["era5"], "--out", out, "--variables", "2m_temperature")
    assert status == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    assert list(xr.open_zarr(out).data_vars) == ["temperature"]
    status, stdout, _ = run_cli("ingest", layouts["era5"], "--out", out, "--variables", "2m_temperature", "--overwrite")
    assert status == 0 and str(out) in stdout
    assert list(xr.open_zarr(out).data_vars) == ["2m_temperature"]
    assert leftovers(tmp_path) == []


def test_failure_midway_leaves_nothing(layouts, tmp_path, monkeypatch):
    from data_catalog import climatology

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(climatology, "circular_window_sum", broken)  # fails after the data are written
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(layouts["era5"], tmp_path / "x.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _write(ds: xr.Dataset, path: Path) -> Path:
    ds.to_netcdf(path)
    return path


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """case -> (CLI arguments before --out, text the error line must contain)."""
    good = testing.canonical_dataset(n_time=6, n_lat=4, n_lon=8, variables=["temperature", "2m_temperature"])
    ok = _write(good, tmp / "ok.nc")
    truncated = tmp / "truncated.nc"
    truncated.write_bytes(ok.read_bytes()[: ok.stat().st_size // 2])
    units = good.copy()
    units["2m_temperature"].attrs["units"] = "furlongs"
    times = good["time"].values.copy()
    duplicated = good.assign_coords(time=np.r_[times[:3], times[2:5]])
    unsorted = good.assign_coords(time=times[[0, 2, 1, 3, 4, 5]])
    irregular = good.assign_coords(latitude=[-60.0, -10.0, 0.0, 60.0])
    all_nan = good.copy()
    all_nan["2m_temperature"] = all_nan["2m_temperature"].where(False)
    mid_nan = good.copy(deep=True)
    mid_nan["temperature"][3, 1] = np.nan  # one field in the middle of the record
    return {
        "missing file": ([str(tmp / "absent.nc")], "absent.nc"),
        "truncated": ([str(truncated)], "truncated.nc"),
        "absent variable": ([str(ok), "--variables", "specific_humidity"], "specific_humidity"),
        "absent level": ([str(ok), "--levels", "300"], "300"),
        "unknown units": ([str(_write(units, tmp / "units.nc"))], "furlongs"),
        "duplicated times": ([str(_write(duplicated, tmp / "dup.nc"))], "duplicated"),
        "non-monotonic times": ([str(_write(unsorted, tmp / "unsorted.nc"))], "increasing"),
        "irregular grid": ([str(_write(irregular, tmp / "irregular.nc"))], "latitude"),
        "all-NaN field": ([str(_write(all_nan, tmp / "allnan.nc"))], "2m_temperature"),
        "NaN field mid-record": ([str(_write(mid_nan, tmp / "midnan.nc"))], "temperature"),
        "bad level list": ([str(ok), "--levels", "500,high"], "--levels"),
        "empty time range": ([str(ok), "--start", "1990-01-01", "--end", "1990-02-01"], "ok.nc"),
    }


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    return _bad_inputs(tmp_path_factory.mktemp("bad"))


CASES = [
    "missing file",
    "truncated",
    "absent variable",
    "absent level",
    "unknown units",
    "duplicated times",
    "non-monotonic times",
    "irregular grid",
    "all-NaN field",
    "NaN field mid-record",
    "bad level list",
    "empty time range",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_status_2_and_nothing_written(case, bad_inputs, tmp_path, run_cli):
    args, needle = bad_inputs[case]
    out = tmp_path / "out.zarr"
    status, stdout, err = run_cli("ingest", *args, "--out", out)
    lines = err.strip().splitlines()
    assert status == 2, (case, err)
    assert len(lines) == 1 and lines[0].startswith("climate-optics: error:") and needle in lines[0], lines
    assert not out.exists() and leftovers(tmp_path) == [] and stdout == ""


def test_peak_memory_does_not_grow_with_record_length(tmp_path, monkeypatch):
    """tracemalloc peak (numpy buffers included) for a record and one 4x longer: equal within 10%.

    Smoothing bands are made small so that the streamed blocks dominate: loading the whole
    record instead would raise the long record's peak by about 20%.
    """
    from data_catalog import climatology

    monkeypatch.setattr(climatology, "BAND_VALUES", 1 << 14)
    peaks = []
    for i, n_time in enumerate((24, 24, 96)):  # the first run only warms up imports and caches
        ds = testing.canonical_dataset(
            n_time=n_time, n_lat=32, n_lon=64, levels=(250, 500, 700, 850), variables=["temperature"], seed=n_time
        )
        source = _write(ds, tmp_path / f"r{i}.nc")
        del ds
        tracemalloc.start()
        ingest(source, tmp_path / f"r{i}.zarr", time_chunk=8)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[2] < 1.1 * peaks[1], peaks
