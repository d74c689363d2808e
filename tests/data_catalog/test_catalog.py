"""The catalog: shipped entries, user catalogs, validation messages, the catalog CLI."""

from __future__ import annotations

import sys
import textwrap

import pytest

from data_catalog import testing
from data_catalog.catalog import ENV_VAR, get_entry, list_entries, load_catalog
from data_catalog.errors import DataInputError
from data_catalog.readers import open_dataset

WB2 = "gs://weatherbench2/datasets/era5/1959-2023_01_10-6h-"


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_entries():
    entries = {e.name: e for e in list_entries()}
    assert {"era5-wb2-64x32", "era5-wb2-240x121", "synthetic-reanalysis", "synthetic-reanalysis-hires"} <= set(entries)
    assert entries["era5-wb2-64x32"].location == WB2 + "64x32_equiangular_conservative.zarr"
    assert entries["era5-wb2-240x121"].location == WB2 + "240x121_equiangular_with_poles_conservative.zarr"
    assert entries["era5-wb2-64x32"].options["storage_options"] == {"token": "anon"}
    assert entries["synthetic-reanalysis"].grid.resolution_deg == 2.8125
    assert entries["synthetic-reanalysis-hires"].options == {"grid": "1.40625deg"}
    for entry in entries.values():
        assert entry.licence and entry.citation


def test_user_catalog_adds_and_overrides_with_relative_location(tmp_path):
    user = write(
        tmp_path / "mine.yaml",
        """
        entries:
          my-era5:
            description: local ERA5
            driver: netcdf
            location: data/*.nc
            variables: {temp: temperature}
            licence: CC-BY-4.0
            citation: me
          synthetic-reanalysis:
            description: replaced
            driver: synthetic
            licence: x
            citation: y
    """,
    )
    entries = load_catalog(user)
    assert entries["my-era5"].location == str(tmp_path / "data" / "*.nc")
    assert entries["my-era5"].variables == {"temp": "temperature"}
    assert entries["synthetic-reanalysis"].description == "replaced"
    assert "era5-wb2-64x32" in entries  # shipped entries stay


def test_environment_variable_catalog(tmp_path, monkeypatch):
    user = write(
        tmp_path / "env.yaml",
        """
        entries:
          from-env: {description: d, driver: zarr, location: /x.zarr, licence: l, citation: c}
    """,
    )
    monkeypatch.setenv(ENV_VAR, str(user))
    assert get_entry("from-env").location == "/x.zarr"


@pytest.mark.parametrize(
    "fields, field, reason",
    [
        ("driver: ftp, location: /x", "driver", "'zarr', 'netcdf', 'grib' or 'synthetic'"),
        ("driver: netcdf", "(entry)", "needs a location"),
        ("driver: zarr, location: /x, colour: red", "colour", "Extra inputs"),
        ("driver: zarr, location: /x, variables: {t: temp}", "variables", "unknown canonical name 'temp'"),
        ("driver: zarr, location: /x, grid: {resolution_deg: -1}", "grid.resolution_deg", "greater than 0"),
    ],
)
def test_bad_entry_names_entry_field_and_reason(tmp_path, fields, field, reason):
    user = write(
        tmp_path / "bad.yaml",
        f"""
        entries:
          broken: {{description: d, licence: l, citation: c, {fields}}}
    """,
    )
    with pytest.raises(DataInputError) as err:
        load_catalog(user)
    message = str(err.value)
    assert "bad.yaml" in message and "entry 'broken'" in message
    assert f"field {field!r}" in message and reason in message


def test_unsafe_yaml_is_rejected(tmp_path):
    user = write(tmp_path / "evil.yaml", "entries: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(DataInputError, match="not valid YAML"):
        load_catalog(user)


def test_missing_catalog_file_and_unknown_entry(tmp_path):
    with pytest.raises(DataInputError, match="catalog file not found"):
        load_catalog(tmp_path / "nope.yaml")
    with pytest.raises(DataInputError, match=r"unknown catalog entry 'nope'; available: era5-wb2-240x121"):
        get_entry("nope")


def test_synthetic_driver_passes_merged_options(monkeypatch, tmp_path):
    calls = []

    def open_synthetic(options, *, cache_dir=None):
        calls.append((options, cache_dir))
        return testing.canonical_dataset(n_time=2, n_lat=8, n_lon=16).chunk()

    # The generator itself is replaced (a stand-in module in sys.modules is bypassed once the real one is imported).
    monkeypatch.setattr("data_catalog.synthetic.open_synthetic", open_synthetic)
    ds = open_dataset(
        "synthetic-reanalysis-hires", variables=["temperature"], options={"seed": 3, "cache_dir": str(tmp_path)}
    )
    assert calls == [({"grid": "1.40625deg", "seed": 3}, str(tmp_path))]
    assert list(ds.data_vars) == ["temperature"] and ds.sizes["latitude"] == 8


def test_cli_catalog_list_and_show(run_cli, tmp_path):
    status, out, _ = run_cli("catalog", "list")
    assert status == 0
    for name in ("era5-wb2-64x32", "era5-wb2-240x121", "synthetic-reanalysis", "synthetic-reanalysis-hires"):
        assert name in out
    status, out, _ = run_cli("catalog", "show", "era5-wb2-240x121")
    assert status == 0
    assert WB2 + "240x121_equiangular_with_poles_conservative.zarr" in out and "Rasp et al." in out
    user = write(
        tmp_path / "mine.yaml",
        """
        entries:
          my-ncep: {description: NCEP files, driver: netcdf, location: /data/*.nc, licence: l, citation: c}
    """,
    )
    status, out, _ = run_cli("catalog", "list", "--catalog", user)
    assert status == 0 and "my-ncep" in out


def test_cli_bad_input_is_one_line_and_status_2(run_cli, tmp_path):
    status, _, err = run_cli("catalog", "show", "no-such-entry")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "no-such-entry" in err
    user = write(tmp_path / "bad.yaml", "entries:\n  oops: {description: d, driver: ftp, licence: l, citation: c}\n")
    status, _, err = run_cli("catalog", "list", "--catalog", user)
    assert status == 2
    (line,) = err.strip().splitlines()
    assert "entry 'oops'" in line and "field 'driver'" in line


def test_cloud_entry_without_gcsfs_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # never touches the network
    with pytest.raises(DataInputError, match=r"needs gcsfs; install climate-optics\[cloud\]"):
        open_dataset("era5-wb2-64x32")
