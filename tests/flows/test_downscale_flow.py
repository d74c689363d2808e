"""The pipeline flow with ``downscale``: train a downscaler, downscale the forecast, score it on the fine grid.

One flow run and one ``climate-optics demo --downscale`` run (direct library calls) per module,
on a 12-day synthetic record (the downscaler needs the synthetic source's fine grid), two
channels, tiny models, two sampler steps; the session's Prefect harness. Both runs must write
the same downscaled ensemble and scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr


@pytest.fixture(scope="module")
def downscale_settings(tiny_settings_factory, tmp_path_factory):
    """PipelineConfig fields: two channels (2m_temperature, geopotential@500), a short synthetic record."""
    settings = tiny_settings_factory()
    settings.update(
        modes=["backprop"],
        max_inits=2,
        regions=["global"],
        downscale=True,
        downscale_steps=2,
        downscale_diffusion_steps=3,
        downscale_members=2,
        downscale_sampler_steps=2,
        levels=[500],
        variables=["2m_temperature", "geopotential", "land_sea_mask", "geopotential_at_surface"],
    )
    cache = str(tmp_path_factory.mktemp("synthetic-cache"))
    settings.update(
        source="synthetic-reanalysis",
        options={"grid": "5.625deg", "days": 12, "spinup_days": 2, "seed": 0, "cache_dir": cache},
    )
    return settings


@pytest.fixture(scope="module")
def downscale_run(prefect_harness, torch_single_thread_module, downscale_settings, tmp_path_factory):
    from flows.pipeline import pipeline_flow

    settings = dict(downscale_settings)
    out = tmp_path_factory.mktemp("flow-downscale") / "run"
    paths = pipeline_flow(
        str(out),
        source=settings.pop("source"),
        options=settings.pop("options"),
        steps=settings.pop("steps"),
        downscale=settings.pop("downscale"),
        settings=settings,
    )
    return out, paths


@pytest.fixture(scope="module")
def downscale_demo(torch_single_thread_module, downscale_settings, tmp_path_factory):
    """``climate-optics demo --downscale`` (direct calls) on the same settings: its run directory."""
    import yaml

    from flows.cli import main

    config = tmp_path_factory.mktemp("demo-config") / "downscale.yaml"
    config.write_text(yaml.safe_dump(downscale_settings))
    out = tmp_path_factory.mktemp("demo-downscale") / "run"
    assert main(["demo", "--no-prefect", "--downscale", "--config", str(config), "--out", str(out)]) == 0
    return out


def test_flow_downscales_the_forecast_and_scores_it_on_the_fine_grid(downscale_run):
    out, paths = downscale_run
    for name in ("hires", "downscale", "downscaled", "bilinear", "downscaled_scores"):
        assert paths[name].startswith(str(out)), name
    forecast, hires = xr.open_zarr(paths["forecast-backprop"]), xr.open_zarr(paths["hires"])
    ds = xr.open_zarr(paths["downscaled"])
    assert ds["2m_temperature"].dims == ("time", "prediction_timedelta", "realization", "latitude", "longitude")
    assert ds["geopotential"].dims == ("time", "prediction_timedelta", "realization", "level", "latitude", "longitude")
    assert (
        ds.sizes["realization"] == 2
        and ds.sizes["latitude"] == hires.sizes["latitude"] == 2 * forecast.sizes["latitude"]
    )
    np.testing.assert_array_equal(ds["time"].values, forecast["time"].values)
    np.testing.assert_array_equal(ds["prediction_timedelta"].values, forecast["prediction_timedelta"].values)
    np.testing.assert_allclose(ds["longitude"].values, hires["longitude"].values)
    assert (
        ds.attrs["forecast_checkpoint_sha256"] == forecast.attrs["checkpoint_sha256"] != ds.attrs["checkpoint_sha256"]
    )
    scores = xr.open_zarr(paths["downscaled_scores"])
    assert list(scores["model"].values) == ["downscaler-backprop", "bilinear", "persistence", "climatology"]
    crps = scores["2m_temperature"].sel(metric="crps", region="global")
    assert np.all(np.isfinite(crps.values)) and np.all(crps.values > 0)
    assert json.loads(scores.attrs["references"]) == {"bilinear": paths["bilinear"]}
    trained = {
        stage: torch.load(Path(paths["downscale"]) / stage / "checkpoint.pt", weights_only=True)["train_config"][
            "steps"
        ]
        for stage in ("regression", "diffusion")
    }
    assert trained == {"regression": 2, "diffusion": 3}
    report = (out / "report.md").read_text()  # the report shows the downscaled ensemble and its fine-grid scores
    assert "## Downscaling" in report and "(figures/downscaling-backprop.png)" in report
    assert "| variable | lead (h) | downscaler-backprop | bilinear | persistence | climatology |" in report
    assert (out / "figures" / "downscaling-backprop.png").stat().st_size > 20000


def test_flow_ensemble_equals_a_direct_downscaler_call(downscale_run):
    from climate_optics.inference.downscale import coarse_fields, field_seed, load_downscaler, open_coarse, target_grid
    from climate_optics.workflow import downscaler_checkpoint

    _, paths = downscale_run
    engine, state = load_downscaler(downscaler_checkpoint(paths["downscale"]), sampler_steps=2)
    channels = list(engine.config.channels)
    forecast = open_coarse(paths["forecast-backprop"], channels)
    config = engine.config
    grid = target_grid(
        state["task"],
        forecast["latitude"].values,
        forecast["longitude"].values,
        config.interpolation,
        config.factor,
        "test",
    )
    init, lead = forecast["time"].values[1], forecast["prediction_timedelta"].values[1]
    fields = coarse_fields(forecast.sel(time=init, prediction_timedelta=lead), channels, "test")  # (C, Hc, Wc)
    direct = engine.ensemble(fields, grid, 2, seed=field_seed(0, init, lead))  # (M, C, H, W)
    stored = xr.open_zarr(paths["downscaled"])["2m_temperature"].sel(time=init, prediction_timedelta=lead).values
    np.testing.assert_allclose(stored, direct[:, channels.index("2m_temperature")], rtol=1e-5, atol=1e-3)


def test_demo_writes_the_same_downscaled_forecast_and_scores(downscale_run, downscale_demo):
    _, paths = downscale_run
    for name in ("downscaled", "bilinear", "downscaled_scores"):
        direct, flowed = xr.open_zarr(downscale_demo / Path(paths[name]).name), xr.open_zarr(paths[name])
        xr.testing.assert_allclose(direct.load().drop_attrs(), flowed.load().drop_attrs(), rtol=1e-6)
    for key in (
        "model_config",
        "forecast_model_config",
        "forecast_training_backend",
        "model_name",
    ):  # checkpoints hold run paths
        assert (
            xr.open_zarr(downscale_demo / "downscaled-backprop.zarr").attrs[key]
            == xr.open_zarr(paths["downscaled"]).attrs[key]
        )


def test_flow_resume_reuses_the_downscaled_stores(downscale_run, downscale_settings):
    from flows.pipeline import pipeline_flow

    out, paths = downscale_run
    names = ("downscaled-backprop.zarr", "bilinear.zarr", "downscaled_scores.zarr")
    before = {k: (out / k).stat().st_mtime_ns for k in names}
    settings = dict(downscale_settings)
    again = pipeline_flow(
        str(out),
        source=settings.pop("source"),
        options=settings.pop("options"),
        steps=settings.pop("steps"),
        downscale=settings.pop("downscale"),
        settings=settings,
        resume=True,
    )
    assert again == paths
    assert before == {k: (out / k).stat().st_mtime_ns for k in names}  # cached: nothing rewritten
