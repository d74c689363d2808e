"""Pipeline settings, how notebooks find a run, the climatology period and the demo's console."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest


def test_modes_default_to_backprop_and_optical_side_by_side():
    from climate_optics.errors import UsageInputError
    from climate_optics.run_layout import PipelineConfig

    demo = PipelineConfig()
    assert demo.modes == ["backprop", "optical"] and demo.downscale_mode == "optical" and demo.downscale is True
    assert PipelineConfig(mode="dfa").modes == ["dfa"]
    assert (
        PipelineConfig(source="some.nc", modes=["backprop", "dfa"]).downscale is False
    )  # the fine grid is synthetic-only
    for bad, message in (
        ({"modes": ["optical", "optical"]}, "distinct"),
        ({"modes": ["backprop"], "mode": "dfa"}, "disagree"),
        ({"modes": ["backprop"], "downscale_mode": "optical"}, "downscale_mode"),
        ({"modes": ["telepathy"]}, "mode"),
        ({"downscale_max_inits": 0}, "downscale_max_inits"),
    ):
        with pytest.raises(UsageInputError, match=message):
            PipelineConfig(**bad)


def test_climatology_ends_before_the_forecasts_held_out_inits(demo_run, tiny_source):
    import json

    import torch

    from climate_optics.run_layout import PipelineConfig
    from climate_optics.workflow import climatology_period

    settings = json.loads((demo_run / "pipeline.json").read_text())
    start, end = climatology_period(PipelineConfig(**{**settings, "climatology_period": None}))
    held_out = torch.load(demo_run / "train-backprop" / "checkpoint.pt", weights_only=True)["task"]["data"][
        "val_start_time"
    ]
    assert np.datetime64(start) < np.datetime64(end) < np.datetime64(held_out)  # the training split, computed twice
    import xarray as xr

    times = xr.open_dataset(tiny_source)["time"].values
    assert (
        np.datetime64(end) == times[np.searchsorted(times, np.datetime64(held_out)) - 1]
    )  # up to the last training time
    first_init = xr.open_zarr(demo_run / "forecast-optical.zarr")["time"].values[0]
    assert np.datetime64(end) < first_init
    scores = xr.open_zarr(demo_run / "scores.zarr").attrs  # what the demo's scores record about themselves
    assert scores["climatology_in_sample"] == 0
    recorded_end = np.datetime64(scores["climatology_period"].split("/")[1])
    assert recorded_end < np.datetime64(scores["first_init_time"]) and recorded_end <= np.datetime64(
        end
    ) + np.timedelta64(1, "D")


def test_locate_run_from_a_notebooks_folder(tmp_path, monkeypatch):
    from climate_optics.errors import UsageInputError
    from climate_optics.pipeline import locate_run

    repo = tmp_path / "repo"
    run = repo / "climate-optics-demo"
    (run / "scores.zarr").mkdir(parents=True)
    (repo / "notebooks").mkdir()
    monkeypatch.delenv("CLIMATE_OPTICS_RUN", raising=False)
    monkeypatch.chdir(repo / "notebooks")
    with pytest.raises(UsageInputError, match="not a finished"):
        locate_run(run)  # half-written (no report yet): refused, never overwritten
    (run / "report.html").write_text("<html></html>")
    assert locate_run() == run  # found beside notebooks/
    other = tmp_path / "other"
    (other / "scores.zarr").mkdir(parents=True)
    (other / "report.html").write_text("<html></html>")
    monkeypatch.setenv("CLIMATE_OPTICS_RUN", str(other))
    assert locate_run() == other  # the environment wins over the search
    assert locate_run(run) == run  # and the parameters cell over the environment


def test_demo_with_a_bad_source_fails_before_anything_starts(run_cli, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(f"source: {tmp_path / 'missing.nc'}\nsteps: 2\n")
    status, _, err = run_cli("demo", "--config", config, "--out", tmp_path / "run")
    assert status == 2 and "missing.nc" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_prefect_console_shows_a_failed_steps_error_without_its_traceback():
    from prefect.logging.handlers import PrefectConsoleHandler

    from flows.cli.demo import console_without_tracebacks

    handler = PrefectConsoleHandler(stream=sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s | %(message)s"))
    logger = logging.getLogger("prefect.test-demo-console")
    logger.addHandler(handler)
    try:
        raise ValueError("no held-out init time")
    except ValueError:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "Task run failed", None, sys.exc_info())
    try:
        with console_without_tracebacks():
            shown = handler.format(record)
        assert shown == "ERROR | Task run failed"
        assert "Traceback" in handler.format(record)  # restored afterwards, and the record keeps its traceback
    finally:
        logger.removeHandler(handler)
