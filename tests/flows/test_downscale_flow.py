"""The pipeline flow with ``downscale``: train a downscaler, downscale the forecast, score it on the fine grid.

One flow run per module on a 12-day synthetic record (the downscaler needs the synthetic source's
fine grid), tiny models, two sampler steps; the session's Prefect harness.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr


@pytest.fixture(scope="module")
def downscale_run(prefect_harness, tiny_settings_factory, tmp_path_factory):
    """The flow on two channels (2m_temperature, geopotential@500), one torch thread (small models on 2 shared cores)."""
    import torch

    from flows.pipeline import pipeline_flow

    settings = tiny_settings_factory()
    steps = settings.pop("steps")
    settings.update(max_inits=2, regions=["global"], downscale_steps=2, downscale_members=2, downscale_sampler_steps=2,
                    variables=["2m_temperature", "geopotential", "land_sea_mask", "geopotential_at_surface"], levels=[500])
    options = {"grid": "5.625deg", "days": 12, "spinup_days": 2, "seed": 0, "cache_dir": str(tmp_path_factory.mktemp("synthetic-cache"))}
    out = tmp_path_factory.mktemp("flow-downscale") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        paths = pipeline_flow(str(out), source="synthetic-reanalysis", options=options, steps=steps, downscale=True,
                              settings=settings)
    finally:
        torch.set_num_threads(threads)
    return out, paths


def test_flow_downscales_the_forecast_and_scores_it_on_the_fine_grid(downscale_run):
    out, paths = downscale_run
    for name in ("hires", "downscale", "downscaled", "bilinear", "downscaled_scores"):
        assert paths[name].startswith(str(out)), name
    forecast, hires = xr.open_zarr(paths["forecast"]), xr.open_zarr(paths["hires"])
    ds = xr.open_zarr(paths["downscaled"])
    assert ds["2m_temperature"].dims == ("time", "prediction_timedelta", "realization", "latitude", "longitude")
    assert ds["geopotential"].dims == ("time", "prediction_timedelta", "realization", "level", "latitude", "longitude")
    assert ds.sizes["realization"] == 2 and ds.sizes["latitude"] == hires.sizes["latitude"] == 2 * forecast.sizes["latitude"]
    np.testing.assert_array_equal(ds["time"].values, forecast["time"].values)
    np.testing.assert_array_equal(ds["prediction_timedelta"].values, forecast["prediction_timedelta"].values)
    np.testing.assert_allclose(ds["longitude"].values, hires["longitude"].values)
    assert ds.attrs["forecast_checkpoint_sha256"] == forecast.attrs["checkpoint_sha256"] != ds.attrs["checkpoint_sha256"]
    scores = xr.open_zarr(paths["downscaled_scores"])
    assert list(scores["model"].values) == ["downscaler-backprop", "bilinear", "persistence", "climatology"]
    crps = scores["2m_temperature"].sel(metric="crps", region="global")
    assert np.all(np.isfinite(crps.values)) and np.all(crps.values > 0)
    assert json.loads(scores.attrs["references"]) == {"bilinear": paths["bilinear"]}


def test_flow_ensemble_equals_a_direct_downscaler_call(downscale_run):
    from climate_optics.inference.downscale import coarse_fields, load_downscaler, open_coarse, target_grid
    from climate_optics.inference.downscale_forecast import field_seed
    from climate_optics.workflow import downscaler_checkpoint

    _, paths = downscale_run
    engine, state = load_downscaler(downscaler_checkpoint(paths["downscale"]), sampler_steps=2)
    channels = list(engine.config.channels)
    forecast = open_coarse(paths["forecast"], channels)
    grid = target_grid(state["task"], forecast["latitude"].values, forecast["longitude"].values, "linear", 2, "test")
    init, lead = forecast["time"].values[1], forecast["prediction_timedelta"].values[1]
    fields = coarse_fields(forecast.sel(time=init, prediction_timedelta=lead), channels, "test")  # (C, Hc, Wc)
    direct = engine.ensemble(fields, grid, 2, seed=field_seed(0, init, lead))  # (M, C, H, W)
    stored = xr.open_zarr(paths["downscaled"])["2m_temperature"].sel(time=init, prediction_timedelta=lead).values
    np.testing.assert_allclose(stored, direct[:, channels.index("2m_temperature")], rtol=1e-5, atol=1e-3)
