"""The plotting functions behind the notebooks, and one notebook executed end to end, offline."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open an internet connection fails the test."""

    def refuse(self, address, *args, **kwargs):
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _image_ok(fig, tmp_path, name):
    from climate_optics.plots import save

    path = save(fig, tmp_path / name)
    assert path.stat().st_size > 5000  # a real raster, not an empty canvas
    return path


def test_forecast_maps_of_a_demo_run_offline(demo_run, no_network, tmp_path):
    import xarray as xr

    from climate_optics import maps

    forecast = xr.open_zarr(demo_run / "forecast-backprop.zarr")
    fig = maps.forecast_maps(forecast, "geopotential", truth=demo_run / "data.zarr", lead="12h", init=1, level=500)
    assert len(fig.axes) == 6  # forecast, truth, error + their colour bars
    titles = [ax.get_title() for ax in fig.axes[::2]]
    assert titles == ["forecast", "truth", "forecast - truth"]
    _image_ok(fig, tmp_path, "map.png")
    with pytest.raises(Exception, match="level"):
        maps.forecast_maps(forecast, "geopotential", lead="12h")  # two levels: must choose


def test_skill_curves_one_line_per_model(demo_run, tmp_path):
    from climate_optics import plots

    fig = plots.skill_curves(demo_run / "scores.zarr", ["geopotential", "2m_temperature"], metric="rmse", level=500)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == [
        "vit-backprop",
        "vit-optical",
        "persistence",
        "climatology",
    ]
    assert list(ax.get_lines()[0].get_xdata()) == [6.0, 12.0]
    _image_ok(fig, tmp_path, "skill.png")


def test_training_diagnostics_read_the_metrics_log(demo_run, tmp_path):
    from climate_optics import plots

    run = demo_run / "train-backprop"
    log = plots.read_metrics_log(run)
    assert {"train", "val"} <= set(log["kind"])
    assert plots.run_label(run) == "vit-backprop"
    assert plots.alignment_table(run).empty  # back-propagation logs no alignment
    table = plots.energy_table([run])
    assert table.loc[0, "optical_energy_j"] == 0.0 and table.loc[0, "steps"] == 2
    # a DFA run's log with alignment and cumulative optical energy lines
    dfa = tmp_path / "dfa"
    dfa.mkdir()
    lines = [{"step": s, "kind": "train", "loss": 1.0 / s, "projector_energy_j": 0.5 * s} for s in (1, 2, 3)]
    lines += [{"step": s, "kind": "alignment", "blocks.0": 0.1 * s, "blocks.1": 0.2 * s} for s in (1, 3)]
    (dfa / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert plots.alignment_table(dfa).to_dict("list") == {
        "step": [1, 3],
        "blocks.0": [0.1, pytest.approx(0.3)],
        "blocks.1": [0.2, pytest.approx(0.6)],
    }
    fig = plots.alignment_curves([run, dfa])
    assert len(fig.axes[0].get_lines()) == 3  # two feedback points + the zero line
    energy = plots.optical_energy([dfa])
    assert list(energy.axes[0].get_lines()[0].get_ydata()) == [0.5, 1.0, 1.5]
    _image_ok(plots.training_curves([run, dfa]), tmp_path, "loss.png")


OFFLINE = """import socket, cartopy
def _refuse(self, address, *args, **kwargs):
    raise OSError(f"network access attempted: {address}")
socket.socket.connect = _refuse
cartopy.config["data_dir"] = DATA_DIR
"""


def execute(name: str, cwd: Path, *, run: Path | None = None) -> tuple[list[str], int]:
    """Execute notebook ``name`` as opened from ``cwd`` with connections refused; ``run`` goes into its
    parameters cell. Returns (printed lines, images shown)."""
    import nbclient
    import nbformat

    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code")  # stripped in git
    params = [cell for cell in book.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(params) == 1 and "RUN = None" in params[0].source
    if run is not None:
        params[0].source = params[0].source.replace("RUN = None", f"RUN = {str(run)!r}")
    book.cells.insert(0, nbformat.v4.new_code_cell(OFFLINE.replace("DATA_DIR", repr(str(cwd / "cartopy-data")))))
    nbclient.NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    outputs = [o for cell in book.cells for o in cell.get("outputs", [])]
    printed = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout").splitlines()
    assert not (cwd / "cartopy-data").exists()  # nothing downloaded
    return printed, sum("image/png" in o.get("data", {}) for o in outputs)


@pytest.fixture
def kernel_env(monkeypatch, tmp_path):
    """No run named by the environment; caches in a temporary directory."""
    monkeypatch.delenv("CLIMATE_OPTICS_RUN", raising=False)
    monkeypatch.setenv("CLIMATE_OPTICS_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_notebook_opened_in_notebooks_finds_the_repository_demo_run(demo_run, kernel_env):
    repo = kernel_env / "repo"  # a clone after `make demo`: climate-optics-demo/ beside notebooks/
    (repo / "notebooks").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    (repo / "climate-optics-demo").symlink_to(demo_run)
    printed, images = execute("01_forecast_maps.ipynb", repo / "notebooks")
    assert printed[0] == f"{repo / 'climate-optics-demo'} ['backprop', 'optical']"
    assert "vit-backprop: geopotential 500 hPa" in printed and "vit-optical: geopotential 500 hPa" in printed
    assert images == 3  # a map per mode, then the example; the tiny demo run has no downscaling
    assert not (kernel_env / "cache" / "tiny-run").exists()


def test_notebook_runs_on_the_run_in_its_parameters_cell(demo_run, kernel_env):
    printed, images = execute("03_optical_training.ipynb", kernel_env, run=demo_run)
    assert printed[0] == f"{demo_run} ['backprop', 'optical']"
    assert printed[1].startswith("GPU estimate:")
    assert images == 3  # loss, alignment, optical energy


def test_notebook_makes_a_tiny_run_when_there_is_none(kernel_env):
    run = kernel_env / "fresh-run"
    printed, images = execute("02_skill_vs_lead_time.ipynb", kernel_env, run=run)
    assert printed[0].startswith(f"no run to explore: making a tiny one in {run}")
    assert printed[1] == f"{run} ['backprop', 'optical']"
    assert (run / "report.html").is_file() and (run / "train-optical" / "checkpoint.pt").is_file()
    assert images == 4  # three headline variables (Z500, T850, 2 m temperature), one regional panel
