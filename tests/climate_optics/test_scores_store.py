"""The scores store holds Zarr only; its table ``NAME.md`` and figures ``figures/NAME/`` sit beside it and are
replaced with it, all or nothing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from climate_optics.evaluation.scores_store import TABLE_SIGNATURE, companion_paths, write_scores
from data_catalog import faults
from data_catalog.errors import DataInputError

ZARR_METADATA = {"zarr.json", ".zattrs", ".zgroup", ".zarray", ".zmetadata", ".climate-optics-store"}


def scores(variable: str, value: float = 0.0) -> xr.Dataset:
    values = value + np.arange(8.0).reshape(2, 2, 1, 2)  # (model, metric, region, lead_time)
    return xr.Dataset(
        {variable: (("model", "metric", "region", "lead_time"), values)},
        coords={
            "model": ["vit-dfa", "persistence"],
            "metric": ["rmse", "bias"],
            "region": ["global"],
            "lead_time": np.array([6, 12], "timedelta64[h]").astype("timedelta64[ns]"),
        },
    )


def write(ds: xr.Dataset, out, **kwargs):
    return write_scores(ds, out, attrs={"climate_optics_version": "test"}, **kwargs)


def dot_files(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_the_store_holds_zarr_only_and_its_table_and_figures_sit_beside_it(tmp_path):
    out = write(scores("2m_temperature"), tmp_path / "s.zarr")
    table, figures = companion_paths(out)
    assert (table, figures) == (tmp_path / "s.md", tmp_path / "figures" / "s")
    for path in out.rglob("*"):  # metadata documents, and chunks under each array
        chunk = path.relative_to(out).parts[1:2] == ("c",) or path.is_dir()
        assert path.name in ZARR_METADATA or chunk, path
    assert not list(out.rglob("*.md")) and not list(out.rglob("*.png")) and not (out / "figures").exists()
    text = table.read_text()
    assert text.startswith(TABLE_SIGNATURE) and "## 2m_temperature, global" in text
    assert [p.name for p in figures.iterdir()] == ["skill_2m_temperature.png"]
    assert dot_files(tmp_path) == []


def test_overwrite_replaces_table_and_figures_with_the_store_and_a_failure_puts_the_old_ones_back(
    tmp_path, monkeypatch
):
    out = write(scores("2m_temperature"), tmp_path / "s.zarr")
    table, figures = companion_paths(out)
    before = table.read_text()

    monkeypatch.setenv(faults.FAIL_ENV, "before-rename:s.zarr")  # the store's rename fails
    with pytest.raises(OSError, match="injected at before-rename"):
        write(scores("temperature", 100.0), out, overwrite=True)
    assert list(xr.open_zarr(out).data_vars) == ["2m_temperature"]
    assert table.read_text() == before and [p.name for p in figures.iterdir()] == ["skill_2m_temperature.png"]
    assert dot_files(tmp_path) == []  # no temporary, no set-aside table or figures, no lock

    monkeypatch.delenv(faults.FAIL_ENV)
    write(scores("temperature", 100.0), out, overwrite=True)
    assert list(xr.open_zarr(out).data_vars) == ["temperature"]
    assert "## temperature, global" in table.read_text() and "2m_temperature" not in table.read_text()
    assert [p.name for p in figures.iterdir()] == ["skill_temperature.png"]  # the old figure went with its store
    assert dot_files(tmp_path) == []


def test_a_table_and_figures_left_beside_no_store_are_replaced(tmp_path):
    out = write(scores("2m_temperature"), tmp_path / "s.zarr")
    table, figures = companion_paths(out)
    shutil.rmtree(out)  # the store removed by hand, or never renamed into place (killed just before)
    write(scores("temperature"), out)  # no --overwrite needed: they belong to the store
    assert "## temperature, global" in table.read_text()
    assert [p.name for p in figures.iterdir()] == ["skill_temperature.png"]


@pytest.mark.parametrize("what", ["table", "figures"])
def test_a_table_or_figures_this_tool_did_not_write_is_refused_and_kept(tmp_path, what):
    table, figures = companion_paths(tmp_path / "s.zarr")
    if what == "table":
        table.write_text("my notes\n")
        mine = table
    else:
        figures.mkdir(parents=True)
        (figures / "photo.jpg").write_bytes(b"\xff\xd8")
        mine = figures / "photo.jpg"
    with pytest.raises(DataInputError, match="this tool wrote") as raised:
        write(scores("2m_temperature"), tmp_path / "s.zarr", overwrite=True)
    assert str(table if what == "table" else figures) in str(raised.value)
    assert mine.exists() and not (tmp_path / "s.zarr").exists() and dot_files(tmp_path) == []
