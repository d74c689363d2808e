"""Downscaling end to end on a tiny store: data, task in every mode, CLI train + downscale, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from climate_optics.training.downscale_data import DownscaleData
from climate_optics.training.downscale_task import build_downscale_task, run_downscale_training
from climate_optics.training.task import TrainConfig, TrainTask

N_LAT, N_LON, N_TIME = 32, 64, 24


pytestmark = pytest.mark.usefixtures("torch_single_thread_module")  # set up before the module's trained models


def small_fine_dataset(seed: int = 0) -> xr.Dataset:
    """Fine-grid truth: smooth large-scale waves plus an orographic signal the coarse grid blurs."""
    rng = np.random.default_rng(seed)
    lat = -90 + 180 / N_LAT * (np.arange(N_LAT) + 0.5)
    lon = np.arange(N_LON) * 360 / N_LON
    phi, lam = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    orography = 9.80665 * 2000 * np.exp(-((lam - 2.0) ** 2 + (phi - 0.6) ** 2) / 0.01)  # a narrow ridge
    t = np.arange(N_TIME)[:, None, None]
    waves = np.cos(phi) * np.cos(3 * lam - 0.2 * t) + 0.1 * rng.standard_normal((N_TIME, N_LAT, N_LON))
    t2m = 280 + 10 * np.cos(phi) + 3 * waves - 0.0065 * orography / 9.80665
    z500 = 5.5e4 + 600 * waves
    return xr.Dataset(
        {
            "2m_temperature": (("time", "latitude", "longitude"), t2m.astype(np.float32), {"units": "K"}),
            "geopotential": (
                ("time", "level", "latitude", "longitude"),
                z500[:, None].astype(np.float32),
                {"units": "m2 s-2"},
            ),
            "land_sea_mask": (("latitude", "longitude"), (orography > 100).astype(np.float32), {"units": "1"}),
            "geopotential_at_surface": (("latitude", "longitude"), orography.astype(np.float32), {"units": "m2 s-2"}),
        },
        coords={
            "time": pd.date_range("2001-01-01", periods=N_TIME, freq="6h").values,
            "level": [500],
            "latitude": lat,
            "longitude": lon,
        },
    )


@pytest.fixture(scope="module")
def fine_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("downscale") / "fine.zarr"
    small_fine_dataset().chunk({"time": 8}).to_zarr(path)
    return path


@pytest.fixture(scope="module")
def coarse_store(tmp_path_factory):
    """The conservatively coarsened truth, as a user would bring it (a second source)."""
    from data_catalog.regrid import coarsen_conservative

    path = tmp_path_factory.mktemp("downscale-coarse") / "coarse.zarr"
    coarsen_conservative(small_fine_dataset().isel(time=slice(20, 22)), 2).to_zarr(path)
    return path


@pytest.fixture(scope="module")
def trained_run(fine_store, tmp_path_factory):
    """Both stages through the CLI: 3 regression steps, 4 diffusion steps."""
    from flows.cli import main

    out = tmp_path_factory.mktemp("downscale-run") / "run"
    args = [
        "train",
        "downscale",
        "--data",
        str(fine_store),
        "--out",
        str(out),
        "--steps",
        "3",
        "--diffusion-steps",
        "4",
        "--batch-size",
        "2",
        "--seed",
        "1",
    ]
    assert main(args) == 0
    return out


def test_cli_trains_each_stage_its_own_number_of_steps(trained_run, fine_store, tmp_path, run_cli):
    steps = {
        stage: torch.load(trained_run / stage / "checkpoint.pt", weights_only=True)["train_config"]
        for stage in ("regression", "diffusion")
    }
    assert (steps["regression"]["steps"], steps["diffusion"]["steps"]) == (3, 4)
    assert (
        steps["diffusion"]["checkpoint_every"] >= steps["regression"]["checkpoint_every"]
    )  # intervals scale with the steps
    status, _, err = run_cli(
        "train",
        "downscale",
        "--data",
        fine_store,
        "--out",
        tmp_path / "x",
        "--stage",
        "regression",
        "--diffusion-steps",
        "4",
    )
    assert status == 2 and "--diffusion-steps" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_patches_are_deterministic_and_match_the_truth(fine_store):
    task = build_downscale_task(fine_store, seed=0)
    assert isinstance(task, TrainTask)
    assert task.model.config.channels == ("2m_temperature", "geopotential@500")
    stream_a = task.batches(np.random.default_rng([0, 0]), 3)
    stream_b = task.batches(np.random.default_rng([0, 0]), 3, start_step=1)
    first, second = next(stream_a), next(stream_a)
    resumed = next(stream_b)
    stream_a.close(), stream_b.close()
    torch.testing.assert_close(second["cond"], resumed["cond"])
    assert first["cond"].shape == (3, 2 + 6, 32, 32) and first["target"].shape == (3, 2, 32, 32)
    # Normalised truth; the first conditioning channels are the interpolated coarse fields, close to it.
    assert isinstance(task.data, DownscaleData)
    assert abs(float(first["target"].mean())) < 3
    err = (first["cond"][:, :2] - first["target"]).abs().mean()
    assert 0 < float(err) < float(first["target"].abs().mean())


@pytest.mark.parametrize("mode", ["dfa", "optical"])
def test_both_stages_train_in_dfa_and_optical_modes(fine_store, tmp_path, mode):
    config = TrainConfig(
        steps=2, batch_size=2, lr=1e-3, warmup=1, mode=mode, progress=False, checkpoint_every=10, val_every=0
    )
    results = run_downscale_training(fine_store, tmp_path / "run", config, stage="both", regression_mode=mode)
    assert set(results) == {"regression", "diffusion"}
    for result in results.values():
        assert np.isfinite(result.final_loss)
        assert result.engine_stats["projector_calls"] == 2  # one projection per step
    if mode == "optical":
        assert results["diffusion"].engine_stats["projector_energy_j"] > 0
    state = torch.load(tmp_path / "run" / "diffusion" / "checkpoint.pt", weights_only=True)
    assert state["task"]["stage"] == "diffusion" and state["train_config"]["mode"] == mode


def test_dfa_modes_train_the_regression_stage_by_backprop_by_default(fine_store, tmp_path, run_cli):
    status, out, err = run_cli(
        "train", "downscale", "--data", fine_store, "--out", tmp_path / "run", "--mode", "dfa", "--steps", "2",
        "--batch-size", "2", "--device", "cpu",
    )  # fmt: skip
    assert status == 0, err
    modes = {
        stage: torch.load(tmp_path / "run" / stage / "checkpoint.pt", weights_only=True)["train_config"]["mode"]
        for stage in ("regression", "diffusion")
    }
    assert modes == {"regression": "backprop", "diffusion": "dfa"}
    summaries = [line.split(": ", 1) for line in out.splitlines() if line.startswith(("regression", "diffusion"))]
    lines = {label: json.loads(summary) for label, summary in summaries}
    assert set(lines) == {"regression (by backprop)", "diffusion"}
    assert "error" not in lines["regression (by backprop)"] and "error" in lines["diffusion"]


def test_regression_mode_applies_to_both_stages_only(fine_store, tmp_path, run_cli):
    status, _, err = run_cli(
        "train", "downscale", "--data", fine_store, "--out", tmp_path / "x", "--stage", "regression",
        "--regression-mode", "dfa", "--steps", "1",
    )  # fmt: skip
    assert status == 2 and "--regression-mode" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_diffusion_stage_needs_a_regression_run(fine_store, tmp_path, run_cli):
    status, _, err = run_cli(
        "train", "downscale", "--data", fine_store, "--out", tmp_path / "x", "--stage", "diffusion", "--steps", "1"
    )
    assert status == 2 and "--init" in err and len(err.strip().splitlines()) == 1


def test_cli_downscale_writes_an_ensemble_store(trained_run, coarse_store, tmp_path, run_cli):
    out = tmp_path / "downscaled.zarr"
    status, stdout, err = run_cli(
        "downscale",
        "--checkpoint",
        trained_run,
        "--coarse",
        coarse_store,
        "--members",
        "3",
        "--steps",
        "2",
        "--out",
        out,
    )
    assert status == 0, err
    ds = xr.open_zarr(out)
    assert ds["2m_temperature"].dims == ("time", "prediction_timedelta", "realization", "latitude", "longitude")
    assert ds["geopotential"].dims == ("time", "prediction_timedelta", "realization", "level", "latitude", "longitude")
    assert ds.sizes == {
        "time": 2,
        "prediction_timedelta": 1,
        "realization": 3,
        "level": 1,
        "latitude": N_LAT,
        "longitude": N_LON,
    }
    assert ds["2m_temperature"].attrs["units"] == "K"
    t2m = ds["2m_temperature"].values
    assert np.all(np.isfinite(t2m)) and 230 < t2m.mean() < 320  # physical units, not normalised
    assert float(ds["2m_temperature"].std("realization").mean()) > 0  # members differ
    assert len(ds.attrs["checkpoint_sha256"]) == 64 and json.loads(ds.attrs["model_config"])["channels"] == [
        "2m_temperature",
        "geopotential@500",
    ]
    np.testing.assert_array_equal(ds["time"].values, xr.open_zarr(coarse_store)["time"].values)
    # Same seed, same ensemble; an existing store needs --overwrite.
    status, _, err = run_cli(
        "downscale",
        "--checkpoint",
        trained_run,
        "--coarse",
        coarse_store,
        "--members",
        "3",
        "--steps",
        "2",
        "--out",
        out,
    )
    assert status == 2 and "overwrite" in err
    status, _, _ = run_cli(
        "downscale",
        "--checkpoint",
        trained_run,
        "--coarse",
        coarse_store,
        "--members",
        "3",
        "--steps",
        "2",
        "--out",
        out,
        "--overwrite",
    )
    assert status == 0
    np.testing.assert_array_equal(xr.open_zarr(out)["2m_temperature"].values, t2m)


def test_cli_downscale_a_region(trained_run, coarse_store, tmp_path, run_cli):
    region = tmp_path / "region.zarr"
    xr.open_zarr(coarse_store).isel(time=[1], latitude=slice(4, 12), longitude=slice(2, 18)).to_zarr(region)
    out = tmp_path / "region-down.zarr"
    status, _, err = run_cli(
        "downscale", "--checkpoint", trained_run, "--coarse", region, "--members", "2", "--steps", "2", "--out", out
    )
    assert status == 0, err
    ds = xr.open_zarr(out)
    assert ds.sizes["latitude"] == 16 and ds.sizes["longitude"] == 32 and ds.sizes["realization"] == 2
    np.testing.assert_allclose(ds["latitude"].values, small_fine_dataset()["latitude"].values[8:24])


@pytest.mark.parametrize(
    "case, message",
    [
        ("wrong-grid", "coarse grid"),
        ("missing-variable", "geopotential"),
        ("members", "--members"),
        ("regression-only", "regression stage"),
        ("coarsen-region", "every longitude"),
        ("forecast-missing-channel", "geopotential@500"),
    ],
)
def test_cli_downscale_bad_input_exits_2_and_writes_nothing(
    case, message, trained_run, coarse_store, fine_store, tmp_path, run_cli
):
    coarse, checkpoint, members = coarse_store, trained_run, "2"
    if case == "wrong-grid":
        coarse = fine_store  # fine grid given as coarse
    elif case == "missing-variable":
        coarse = tmp_path / "t2m-only.zarr"
        xr.open_zarr(coarse_store)[["2m_temperature"]].to_zarr(coarse)
    elif case == "members":
        members = "0"
    elif case == "regression-only":
        checkpoint = trained_run / "regression" / "checkpoint.pt"
    elif case == "coarsen-region":
        coarse = tmp_path / "fine-region.zarr"
        small_fine_dataset().isel(time=[0], longitude=slice(0, 32)).to_zarr(coarse)
    elif case == "forecast-missing-channel":  # a forecast store (prediction_timedelta) without the model's Z500
        coarse = tmp_path / "forecast.zarr"
        leads = {"prediction_timedelta": [np.timedelta64(6, "h")]}
        xr.open_zarr(coarse_store)[["2m_temperature"]].expand_dims(leads, axis=1).to_zarr(coarse)
    out = tmp_path / "never.zarr"
    extra = ["--coarsen", "2"] if case == "coarsen-region" else []
    status, _, err = run_cli(
        "downscale",
        "--checkpoint",
        checkpoint,
        "--coarse",
        coarse,
        "--members",
        members,
        "--steps",
        "2",
        "--out",
        out,
        *extra,
    )
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not out.exists() and not list(tmp_path.glob(".never.zarr*"))
