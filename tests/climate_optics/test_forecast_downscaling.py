"""Downscaling a forecast store, its bilinear baseline, and scoring both against the fine truth (CLI)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

N_LAT, N_LON, N_TIME = 32, 64, 24
LEADS_H = (6, 12)


pytestmark = pytest.mark.usefixtures("torch_single_thread_module")  # set up before the module's trained models


def fine_truth() -> xr.Dataset:
    """Fine-grid analyses (the shared mock-data builder): 2 m temperature, Z at 500 and 850 hPa, static fields."""
    from data_catalog.testing import canonical_dataset

    variables = ["2m_temperature", "geopotential", "land_sea_mask", "geopotential_at_surface"]
    return canonical_dataset(
        n_time=N_TIME, n_lat=N_LAT, n_lon=N_LON, levels=(500, 850), seed=3, variables=variables, start="2001-01-01"
    )


@pytest.fixture(scope="module")
def fine_store(tmp_path_factory):
    """The verifying truth (both levels)."""
    path = tmp_path_factory.mktemp("truth") / "fine.zarr"
    fine_truth().to_zarr(path)
    return path


@pytest.fixture(scope="module")
def downscaler(tmp_path_factory):
    """A downscaler of 2m_temperature and geopotential@500 (the 850 hPa level is not a channel), 3 steps per stage."""
    from flows.cli import main

    data = tmp_path_factory.mktemp("fine-500") / "fine500.zarr"
    fine_truth().sel(level=[500]).chunk({"time": 8}).to_zarr(data)
    out = tmp_path_factory.mktemp("downscaler") / "run"
    assert (
        main(
            [
                "train",
                "downscale",
                "--data",
                str(data),
                "--out",
                str(out),
                "--steps",
                "3",
                "--batch-size",
                "2",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    return out


def write_forecast(path, inits: slice = slice(14, 17), variables=("2m_temperature", "geopotential"), attrs=None):
    """A coarse 'forecast store': the conservatively coarsened truth at each valid time, plus noise."""
    from data_catalog.regrid import coarsen_conservative

    coarse = coarsen_conservative(fine_truth()[list(variables)], 2)
    init_times = coarse["time"].values[inits]
    leads = np.asarray(LEADS_H, dtype="timedelta64[h]").astype("timedelta64[ns]")
    per_lead = [coarse.sel(time=init_times + lead).assign_coords(time=init_times) for lead in leads]
    ds = xr.concat(per_lead, pd.Index(leads, name="prediction_timedelta")).transpose(
        "time", "prediction_timedelta", ...
    )
    rng = np.random.default_rng(0)
    ds = ds.map(lambda da: da + np.float32(0.01 * float(da.std())) * rng.standard_normal(da.shape).astype(np.float32))
    ds.attrs = (
        attrs
        if attrs is not None
        else {
            "checkpoint_sha256": "f" * 64,
            "training_backend": "dfa-structured",
            "model_config": json.dumps({"preset": "tiny"}),
            "source_dataset": "fine-test",
        }
    )
    ds.chunk({"time": 1, "prediction_timedelta": 1}).to_zarr(path)
    return path


@pytest.fixture(scope="module")
def forecast_store(tmp_path_factory):
    return write_forecast(tmp_path_factory.mktemp("forecast") / "forecast.zarr")


@pytest.fixture(scope="module")
def downscaled(downscaler, forecast_store, tmp_path_factory):
    from flows.cli import main

    out = tmp_path_factory.mktemp("downscaled") / "downscaled.zarr"
    args = [
        "downscale",
        "--checkpoint",
        str(downscaler),
        "--coarse",
        str(forecast_store),
        "--members",
        "3",
        "--steps",
        "2",
    ]
    assert main([*args, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def bilinear(downscaler, forecast_store, tmp_path_factory):
    from flows.cli import main

    out = tmp_path_factory.mktemp("bilinear") / "bilinear.zarr"
    assert (
        main(
            [
                "downscale",
                "--checkpoint",
                str(downscaler),
                "--coarse",
                str(forecast_store),
                "--bilinear",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_forecast_store_becomes_an_ensemble_forecast_store(downscaled, downscaler, forecast_store):
    from climate_optics.provenance import file_sha256

    ds, fc = xr.open_zarr(downscaled), xr.open_zarr(forecast_store)
    assert ds["2m_temperature"].dims == ("time", "prediction_timedelta", "realization", "latitude", "longitude")
    assert ds["geopotential"].dims == ("time", "prediction_timedelta", "realization", "level", "latitude", "longitude")
    assert ds.sizes == {
        "time": 3,
        "prediction_timedelta": 2,
        "realization": 3,
        "level": 1,
        "latitude": N_LAT,
        "longitude": N_LON,
    }
    assert ds["level"].values.tolist() == [500]  # the downscaler's channel, not the forecast's 850 hPa
    assert ds["2m_temperature"].encoding["chunks"] == (1, 1, 3, N_LAT, N_LON)
    np.testing.assert_array_equal(ds["time"].values, fc["time"].values)
    np.testing.assert_array_equal(ds["prediction_timedelta"].values, fc["prediction_timedelta"].values)
    t2m = ds["2m_temperature"].values
    assert np.all(np.isfinite(t2m)) and 240 < t2m.mean() < 320  # physical units
    assert float(ds["2m_temperature"].std("realization").mean()) > 0
    # provenance of both models
    assert ds.attrs["checkpoint_sha256"] == file_sha256(downscaler / "diffusion" / "checkpoint.pt")
    assert ds.attrs["forecast_checkpoint_sha256"] == fc.attrs["checkpoint_sha256"]
    assert ds.attrs["forecast_training_backend"] == "dfa-structured"
    assert ds.attrs["model_name"] == "downscaler-backprop"


def test_members_do_not_depend_on_which_inits_are_downscaled(downscaled, downscaler, forecast_store, tmp_path):
    from climate_optics.inference.downscale import field_seed, load_downscaler, target_grid
    from climate_optics.inference.downscale_forecast import downscale_forecast

    fc = xr.open_zarr(forecast_store)
    second = str(fc["time"].values[1])
    part = downscale_forecast(
        downscaler, forecast_store, members=3, steps=2, out=tmp_path / "part.zarr", start=second, end=second
    )
    full = xr.open_zarr(downscaled)
    one = xr.open_zarr(part)
    assert one.sizes["time"] == 1
    np.testing.assert_array_equal(one["2m_temperature"].values[0], full["2m_temperature"].values[1])
    # and the store holds what the engine gives for that field directly (lead 12 h of the second init)
    engine, state = load_downscaler(downscaler, sampler_steps=2)
    config = engine.config
    grid = target_grid(
        state["task"], fc["latitude"].values, fc["longitude"].values, config.interpolation, config.factor, "test"
    )
    field = fc.isel(time=1, prediction_timedelta=1)
    coarse = np.stack([field["2m_temperature"].values, field["geopotential"].sel(level=500).values])  # (C, Hc, Wc)
    direct = engine.ensemble(
        coarse, grid, 3, seed=field_seed(0, fc["time"].values[1], fc["prediction_timedelta"].values[1])
    )
    np.testing.assert_allclose(full["2m_temperature"].values[1, 1], direct[:, 0], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(full["geopotential"].values[1, 1, :, 0], direct[:, 1], rtol=1e-5, atol=1e-2)


def test_bilinear_baseline_matches_scipy_inside_the_grid(bilinear, forecast_store):
    from scipy.interpolate import RegularGridInterpolator

    ds, fc = xr.open_zarr(bilinear), xr.open_zarr(forecast_store)
    assert ds["2m_temperature"].dims == ("time", "prediction_timedelta", "latitude", "longitude")
    assert ds.attrs["model_name"] == "bilinear" and ds.attrs["forecast_checkpoint_sha256"] == "f" * 64
    coarse = fc["2m_temperature"].isel(time=2, prediction_timedelta=1)
    fine = ds["2m_temperature"].isel(time=2, prediction_timedelta=1)
    lat, lon = fine["latitude"].values, fine["longitude"].values
    inside_lat = lat[(lat > coarse["latitude"].values[0]) & (lat < coarse["latitude"].values[-1])]
    inside_lon = lon[(lon > coarse["longitude"].values[0]) & (lon < coarse["longitude"].values[-1])]
    reference = RegularGridInterpolator(
        (coarse["latitude"].values, coarse["longitude"].values), coarse.values.astype(np.float64)
    )
    points = np.stack(np.meshgrid(inside_lat, inside_lon, indexing="ij"), axis=-1)
    np.testing.assert_allclose(fine.sel(latitude=inside_lat, longitude=inside_lon).values, reference(points), rtol=1e-5)


def test_evaluate_scores_the_ensemble_and_the_bilinear_reference(downscaled, bilinear, fine_store, tmp_path, run_cli):
    from climate_optics.evaluation.metrics import crps

    out = tmp_path / "scores.zarr"
    status, stdout, err = run_cli(
        "evaluate", downscaled, "--truth", fine_store, "--reference", bilinear, "--regions", "global", "--out", out
    )
    assert status == 0, err
    scores = xr.open_zarr(out)
    assert list(scores["model"].values) == ["downscaler-backprop", "bilinear", "persistence"]
    for metric in ("crps", "ensemble_mean_rmse", "ensemble_spread", "spread_skill_ratio", "rmse"):
        assert metric in scores["metric"].values
    t2m = scores["2m_temperature"].sel(region="global")
    assert float(t2m.sel(model="downscaler-backprop", metric="ensemble_spread").min()) > 0
    # the bilinear reference is deterministic: its CRPS is its MAE, and equals a direct computation
    np.testing.assert_allclose(
        t2m.sel(model="bilinear", metric="crps").values, t2m.sel(model="bilinear", metric="mae").values
    )
    truth = xr.open_zarr(fine_store)["2m_temperature"]
    for name, store in (("bilinear", bilinear), ("downscaler-backprop", downscaled)):
        fc = xr.open_zarr(store)["2m_temperature"].sel(prediction_timedelta=np.timedelta64(12, "h"))
        verifying = truth.sel(time=fc["time"].values + np.timedelta64(12, "h")).assign_coords(time=fc["time"].values)
        direct = float(crps(fc, verifying).mean("time"))
        np.testing.assert_allclose(
            float(t2m.sel(model=name, metric="crps", lead_time=np.timedelta64(12, "h"))), direct, rtol=1e-4
        )
    assert "bilinear" in out.with_suffix(".md").read_text()
    assert json.loads(scores.attrs["references"]) == {"bilinear": str(bilinear)}


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing-channel", "geopotential@500"),
        ("missing-level", "geopotential@500"),
        ("bilinear-analysis", "--bilinear"),
    ],
)
def test_forecast_bad_input_exits_2_and_writes_nothing(case, message, downscaler, fine_store, tmp_path, run_cli):
    coarse, extra = tmp_path / "fc.zarr", []
    if case == "missing-channel":
        write_forecast(coarse, variables=("2m_temperature",))
    elif case == "missing-level":
        xr.open_zarr(write_forecast(tmp_path / "both.zarr")).sel(level=[850]).to_zarr(coarse)
    else:
        coarse, extra = fine_store, ["--bilinear"]
    out = tmp_path / "never.zarr"
    status, _, err = run_cli(
        "downscale",
        "--checkpoint",
        downscaler,
        "--coarse",
        coarse,
        "--members",
        "2",
        "--steps",
        "1",
        "--out",
        out,
        *extra,
    )
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not out.exists() and not list(tmp_path.glob(".never.zarr*"))


def test_evaluate_refuses_a_reference_on_another_grid(downscaled, forecast_store, fine_store, tmp_path, run_cli):
    out = tmp_path / "scores.zarr"
    status, _, err = run_cli(
        "evaluate", downscaled, "--truth", fine_store, "--reference", f"coarse={forecast_store}", "--out", out
    )
    assert status == 2 and "reference 'coarse'" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
