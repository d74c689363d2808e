"""Flows, the demo command and the scheduled-retraining deployment.

The expensive things run once per module: ``climate-optics demo --no-prefect`` (direct library
calls) on a tiny source, then ``climate-optics demo --dask-address`` (the Prefect pipeline flow, on the
session's test API, its ingest and scoring on a 2-worker dask LocalCluster) on the same settings; both
must write the same forecasts and scores (two ways of computing the same thing, locally and on a cluster).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def flow_run(prefect_harness, tiny_config, tmp_path_factory):
    """``climate-optics demo --dask-address`` (Prefect by default, data steps on a 2-worker LocalCluster) on the
    tiny settings: (run directory, paths, stdout, task prefixes the cluster's scheduler saw)."""
    import contextlib
    import io
    import logging

    from distributed import Client, LocalCluster

    from flows.cli import main

    out = tmp_path_factory.mktemp("flow") / "run"
    stdout = io.StringIO()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR) as cluster,
        contextlib.redirect_stdout(stdout),
        contextlib.chdir(out.parent),
    ):  # --out relative, as `make demo` gives it
        assert (
            main(["demo", "--config", str(tiny_config), "--out", out.name, "--dask-address", cluster.scheduler_address])
            == 0
        )
        with Client(cluster, set_as_default=False) as client:
            prefixes = set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))
    paths = {
        name: str(out / name)
        for name in ("data.zarr", "scores.zarr", "forecast-backprop.zarr", "forecast-optical.zarr")
    }
    return out, {
        "data": paths["data.zarr"],
        "scores": paths["scores.zarr"],
        "forecast": paths["forecast-backprop.zarr"],
        "forecast-optical": paths["forecast-optical.zarr"],
        "stdout": stdout.getvalue(),
        "prefixes": prefixes,
    }


def _values(path):
    import xarray as xr

    ds = xr.open_zarr(path)
    return ds.drop_attrs() if hasattr(ds, "drop_attrs") else ds.assign_attrs({})


def test_demo_writes_every_output(demo_run, capsys):
    from climate_optics.evaluation.scores_store import companion_paths
    from climate_optics.run_layout import RunLayout

    for name in (
        "data.zarr",
        "train-backprop/checkpoint.pt",
        "train-optical/checkpoint.pt",
        "forecast-backprop.zarr",
        "forecast-optical.zarr",
        "scores.zarr",
        "pipeline.json",
        "report.html",
        "report.md",
        "timings.json",
    ):
        assert (demo_run / name).exists(), name
    layout = RunLayout(demo_run)
    assert companion_paths(layout.scores) == (layout.scores_table, layout.scores_figures)
    table = layout.scores_table.read_text()  # the run directory's scores.md, beside scores.zarr
    assert "vit-backprop" in table and "vit-optical" in table and "persistence" in table and "climatology" in table
    assert list(layout.scores_figures.glob("skill_*.png"))
    assert not [p for p in layout.scores.rglob("*") if p.suffix in (".md", ".png")]  # the store holds Zarr only


def test_flow_equals_direct_calls(demo_run, flow_run):
    """The flow, its data steps on a 2-worker cluster, writes what the direct local calls write."""
    import xarray as xr

    out, paths = flow_run
    assert any(p.startswith("open_dataset") for p in paths["prefixes"])  # ingest read the source on the workers
    assert "on_worker" in paths["prefixes"]  # and scoring ran as tasks there
    assert paths["scores"] == str(out / "scores.zarr")
    direct, flowed = _values(demo_run / "scores.zarr"), _values(paths["scores"])
    assert set(direct.data_vars) == {"geopotential", "temperature", "2m_temperature"}
    assert list(direct["model"].values) == ["vit-backprop", "vit-optical", "persistence", "climatology"]
    xr.testing.assert_allclose(direct.load(), flowed.load(), rtol=1e-6)
    for mode in ("backprop", "optical"):
        xr.testing.assert_allclose(
            _values(demo_run / f"forecast-{mode}.zarr").load(), _values(out / f"forecast-{mode}.zarr").load(), rtol=1e-6
        )
    assert "open the report:" in paths["stdout"] and "vit-optical" in paths["stdout"]  # the summary
    # and the model is not persistence in disguise: its forecast differs from the initial state
    fc = xr.open_zarr(paths["forecast"])["2m_temperature"]
    truth = xr.open_zarr(paths["data"])["2m_temperature"].sel(time=fc["time"])
    assert float(abs(fc.isel(prediction_timedelta=0) - truth).max()) > 0


def test_flow_publishes_the_report_as_artifacts(flow_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    out, _ = flow_run
    with get_client(sync_client=True) as client:  # other runs of the session publish under the same keys
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="climate-optics-report"))
        )
    by_key: dict[str, list] = {}
    for artifact in artifacts:
        by_key.setdefault(artifact.key, []).append(artifact.data)
    assert any(data == (out / "report.md").read_text() for data in by_key["climate-optics-report"])
    assert any((out / "report.html").as_uri() in data for data in by_key["climate-optics-report-html"])
    assert any(str(out / "forecast-optical.zarr") in data for data in by_key["climate-optics-report-outputs"])
    tables = [json.loads(rows) if isinstance(rows, str) else rows for rows in by_key["climate-optics-report-skill"]]
    assert any({"vit-backprop", "vit-optical", "persistence", "climatology"} <= set(rows[0]) for rows in tables)


def test_flow_resume_reuses_finished_steps(flow_run, tiny_source, tiny_settings):
    from flows.pipeline import pipeline_flow

    out, paths = flow_run
    before = {
        k: (out / k).stat().st_mtime_ns
        for k in ("data.zarr", "forecast-backprop.zarr", "forecast-optical.zarr", "scores.zarr")
    }
    steps = tiny_settings.pop("steps")
    again = pipeline_flow(str(out), source=str(tiny_source), steps=steps, settings=tiny_settings, resume=True)
    assert {k: again[k] for k in ("data", "scores", "forecast-optical")} == {
        k: paths[k] for k in ("data", "scores", "forecast-optical")
    }
    assert before == {k: (out / k).stat().st_mtime_ns for k in before}  # cached: nothing rewritten


def test_demo_refuses_a_used_directory_and_bad_settings(demo_run, run_cli, tmp_path):
    status, _, err = run_cli("demo", "--out", demo_run)
    assert status == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    status, _, err = run_cli("demo", "--out", tmp_path / "x", "--mode", "telepathy")
    assert status == 2 and "mode" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("stepz: 3\n")
    status, _, err = run_cli("demo", "--out", tmp_path / "y", "--config", bad)
    assert status == 2 and "stepz" in err
    bad.write_text("downscale_diffusion_steps: 0\n")
    status, _, err = run_cli("demo", "--out", tmp_path / "z", "--config", bad)
    assert status == 2 and "downscale_diffusion_steps must be >= 1, got 0" in err and len(err.strip().splitlines()) == 1
    assert not any((tmp_path / name).exists() for name in ("x", "y", "z"))


def test_serve_rejects_a_bad_cron_before_serving(run_cli):
    status, _, err = run_cli("serve", "--cron", "every monday")
    assert status == 2 and "cron" in err


def test_warm_start_copies_weights_but_keeps_new_statistics(demo_run, tiny_settings):
    import torch

    from climate_optics.errors import UsageInputError
    from climate_optics.training.forecast_task import ForecastTask
    from climate_optics.workflow import load_weights

    checkpoint = demo_run / "train-backprop" / "checkpoint.pt"
    trained = torch.load(checkpoint, weights_only=True)["model"]
    task = ForecastTask(demo_run / "data.zarr", preset="tiny", **tiny_settings["model"])
    with torch.no_grad():
        task.model.mean.add_(1.0)  # stands for the statistics of newer data
    new_mean = task.model.mean.clone()
    load_weights(task.model, checkpoint)
    state = task.model.state_dict()
    params = dict(task.model.named_parameters())
    assert all(torch.equal(state[k], trained[k]) for k in params)
    assert torch.equal(task.model.mean, new_mean)
    other = ForecastTask(demo_run / "data.zarr", preset="tiny", dim=64, depth=1, heads=2)
    with pytest.raises(UsageInputError, match="dim"):
        load_weights(other.model, checkpoint)


def test_library_imports_stay_free_of_prefect():
    code = (
        "import sys, climate_optics.workflow, climate_optics.plots, flows.cli;"
        "assert 'prefect' not in sys.modules, 'prefect imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
