"""Sampler, forecasting task, exact resume, CLI train -> forecast -> Zarr store."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

from climate_optics.io.windows import ZarrWindowSampler
from climate_optics.training.forecast_task import ForecastTask
from climate_optics.training.loop import train
from climate_optics.training.task import TrainConfig

pytestmark = pytest.mark.usefixtures("torch_single_thread")

CHANNELS = ["geopotential@500", "temperature@850", "2m_temperature"]
SMALL = dict(dim=32, depth=2, heads=2, mlp_ratio=2.0, patch=4)


def sampler(store, **kw):
    starts = np.arange(0, 200)
    return ZarrWindowSampler(store, CHANNELS, starts=starts, offsets=(0, 1), **{"seed": 3, "prefetch": 2, **kw})


def test_sampler_reads_the_right_fields(waves_store):
    s = sampler(waves_store)
    ds = xr.open_zarr(waves_store)
    batch = s.batch(5, 4)
    assert batch["fields"].shape == (4, 2, 3, 16, 32)
    for b, t in enumerate(batch["time"]):
        np.testing.assert_array_equal(batch["fields"][b, 1, 0], ds.geopotential.sel(level=500).isel(time=t + 1).values)
        np.testing.assert_array_equal(batch["fields"][b, 0, 2], ds["2m_temperature"].isel(time=t).values)


def test_sampler_shuffles_an_epoch_chunk_aligned(waves_store):
    s = sampler(waves_store, group_chunks=2)
    times = s.epoch(0)[0]
    assert sorted(times.tolist()) == list(range(200)) and times.tolist() != list(range(200))
    chunks = times // s.chunk  # every run of 16 samples (two chunks of 8) spans two chunks only
    assert all(len(set(chunks[i : i + 16])) <= 2 for i in range(0, 192, 16))
    assert not np.array_equal(s.epoch(1)[0], times)
    reads = []
    original = s.read_times
    s.read_times = lambda a, b: reads.append((a, b)) or original(a, b)
    for step in range(25):  # one full epoch of 8-sample batches
        s.batch(step, 8)
    assert all(a % s.chunk == 0 and b - a == s.chunk for a, b in reads)  # whole chunks only
    assert len(reads) <= 2 * (200 // s.chunk + 1)  # each chunk (and its successor for offset 1) about once


def test_sampler_stream_is_deterministic_and_resumable(waves_store):
    first = [b["fields"] for _, b in zip(range(6), sampler(waves_store).batches(4))]
    resumed = [b["fields"] for _, b in zip(range(3), sampler(waves_store).batches(4, start_step=3))]
    for a, b in zip(first[3:], resumed):
        np.testing.assert_array_equal(a, b)
    other = next(sampler(waves_store, seed=4).batches(4))["fields"]
    assert not np.array_equal(other, first[0])


def test_window_sampling(waves_store):
    s = sampler(waves_store, window=(8, 8))
    batch = s.batch(0, 6)
    assert batch["fields"].shape == (6, 2, 3, 8, 8)
    ds = xr.open_zarr(waves_store)
    t, r, c = batch["time"][0], batch["row"][0], batch["col"][0]
    np.testing.assert_array_equal(
        batch["fields"][0, 0, 2], ds["2m_temperature"].isel(time=t).values[r : r + 8, c : c + 8]
    )


def cfg(**kw):
    base = dict(
        steps=8,
        batch_size=4,
        lr=2e-3,
        warmup=2,
        checkpoint_every=3,
        val_every=4,
        log_every=2,
        device="cpu",
        deterministic=True,
        progress=False,
    )
    return TrainConfig(**{**base, **kw})


def test_forecast_task_resume_is_exact(waves_store, tmp_path):
    def task():
        return ForecastTask(waves_store, variables=["geopotential", "2m_temperature"], **SMALL)

    full = task()
    train(full, cfg(), tmp_path / "full")
    killed = task()
    assert train(killed, cfg(), tmp_path / "run", stop_after=5).stopped_early  # last checkpoint: step 3
    resumed = ForecastTask(waves_store, variables=["geopotential", "2m_temperature"], seed=99, **SMALL)
    train(resumed, cfg(), tmp_path / "run", resume=True)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["task"]["model_config"]["channels"] == ["geopotential@500", "geopotential@850", "2m_temperature"]
    assert state["task"]["statistics"]["diff_std"].shape == (3,)
    assert state["task"]["model_config"]["static_channels"] == ["land_sea_mask"]


def test_cli_train_then_forecast_store(waves_store, tmp_path, run_cli):
    run = tmp_path / "run"
    status, out, err = run_cli(
        "train",
        "forecast",
        "--data",
        waves_store,
        "--out",
        run,
        "--steps",
        "4",
        "--batch-size",
        "2",
        "--mode",
        "backprop",
        "--device",
        "cpu",
    )
    assert status == 0, err
    assert json.loads(out.strip().splitlines()[-1])["steps"] == 4
    status, _, err = run_cli("train", "forecast", "--data", waves_store, "--out", run, "--steps", "4")
    assert status == 2 and "--resume" in err
    status, _, err = run_cli("train", "forecast", "--data", waves_store, "--out", tmp_path / "x", "--preset", "huge")
    assert status == 2 and "preset" in err and len(err.strip().splitlines()) == 1

    store = tmp_path / "fc.zarr"
    args = [
        "forecast",
        "--checkpoint",
        run,
        "--data",
        waves_store,
        "--init",
        "2000-02-25:2000-02-26",
        "--lead-times",
        "24h,6h",
        "--out",
        store,
    ]
    status, _, err = run_cli(*args)
    assert status == 0, err
    ds = xr.open_zarr(store)
    assert ds.geopotential.dims == ("time", "prediction_timedelta", "level", "latitude", "longitude")
    assert ds.geopotential.encoding["chunks"] == (1, 1, 2, 16, 32)
    assert ds.sizes["time"] == 5 and (ds.prediction_timedelta.values // np.timedelta64(1, "h")).tolist() == [6, 24]
    assert ds.attrs["training_backend"] == "backprop" and len(ds.attrs["checkpoint_sha256"]) == 64
    assert json.loads(ds.attrs["model_config"])["grid"] == [16, 32]
    z = ds.geopotential.sel(level=500).values
    assert np.isfinite(z).all() and 5.0e4 < z.mean() < 6.0e4  # de-normalised, physical units
    assert ds.geopotential.attrs["units"] == "m2 s-2"
    status, _, err = run_cli(*args)
    assert status == 2 and "overwrite" in err
    status, _, err = run_cli(
        "forecast",
        "--checkpoint",
        run,
        "--data",
        waves_store,
        "--init",
        "2000-02-25",
        "--lead-times",
        "9h",
        "--out",
        tmp_path / "bad.zarr",
    )
    assert status == 2 and "multiple" in err and not (tmp_path / "bad.zarr").exists()
    first = str(xr.open_zarr(waves_store).time.values[0])[:19]  # the tiny preset needs the state 6 h earlier too
    status, _, err = run_cli(
        "forecast",
        "--checkpoint",
        run,
        "--data",
        waves_store,
        "--init",
        f"{first}:{first}",
        "--lead-times",
        "6h",
        "--out",
        tmp_path / "bad.zarr",
    )
    assert (
        status == 2
        and "earlier state" in err
        and len(err.strip().splitlines()) == 1
        and not (tmp_path / "bad.zarr").exists()
    )
    status, _, err = run_cli(*args, "--overwrite")
    assert status == 0, err
