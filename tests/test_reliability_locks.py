"""One writer per target, for every output the command line writes: stores (ingest, forecast, downscale,
evaluate), training run directories (train forecast, train downscale) and the demo's run directory.

Another process holds the target's lock (the ``holder`` fixture); the command must exit 2 with one line
naming the holder's pid and host and the target, before any work and without writing anything, or with
``--wait`` queue behind the holder and then carry on. (ingest's refusal and wait: test_reliability.py.)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from data_catalog import locks


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Real inputs for every writer: a source file, its ingested store, a forecast store and a one-step checkpoint."""
    import xarray as xr

    from climate_optics.stores import ForecastStoreWriter
    from data_catalog.testing import canonical_dataset
    from flows.cli import main

    root = tmp_path_factory.mktemp("lock-inputs")
    source = root / "source.nc"
    canonical_dataset(
        n_time=40, n_lat=16, n_lon=32, levels=(500, 850), variables=["temperature", "2m_temperature", "land_sea_mask"]
    ).to_netcdf(source)
    store = root / "data.zarr"
    assert main(["ingest", str(source), "--out", str(store)]) == 0

    with xr.open_zarr(store) as ds:
        lat, lon, times = ds["latitude"].values, ds["longitude"].values, ds["time"].values
        t2m = ds["2m_temperature"].values
    forecast = root / "forecast.zarr"
    with ForecastStoreWriter(
        forecast,
        channels=["2m_temperature"],
        init_times=times[:2],
        lead_times=np.array([6], "timedelta64[h]"),
        latitude=lat,
        longitude=lon,
        attrs={"climate_optics_version": "test"},
    ) as writer:
        for t in range(2):
            writer.write(t, 0, t2m[t + 1][None])
    run = root / "run"
    assert (
        main(["train", "forecast", "--data", str(store), "--out", str(run), "--steps", "1", "--batch-size", "2"]) == 0
    )
    config = root / "demo.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source": str(source),
                "modes": ["backprop"],
                "steps": 1,
                "batch_size": 2,
                "lead_hours": [6],
                "max_inits": 1,
                "model": {"dim": 16, "depth": 1, "heads": 2},
            }
        )
    )
    return {"store": store, "forecast": forecast, "checkpoint": run / "checkpoint.pt", "config": config}


COMMANDS = {  # name -> (arguments given the inputs and the output, the output)
    "forecast": lambda i, out: [
        "forecast",
        "--checkpoint",
        i["checkpoint"],
        "--data",
        i["store"],
        "--init",
        "2020-01-05:2020-01-06",
        "--lead-times",
        "6h",
        "--out",
        out,
    ],
    "downscale": lambda i, out: ["downscale", "--checkpoint", i["checkpoint"], "--coarse", i["forecast"], "--out", out],
    "evaluate": lambda i, out: ["evaluate", i["forecast"], "--truth", i["store"], "--out", out],
    "train forecast": lambda i, out: [
        "train",
        "forecast",
        "--data",
        i["store"],
        "--out",
        out,
        "--steps",
        "1",
        "--batch-size",
        "2",
    ],
    "train downscale": lambda i, out: [
        "train",
        "downscale",
        "--data",
        i["store"],
        "--out",
        out,
        "--steps",
        "1",
        "--batch-size",
        "2",
    ],
    "demo": lambda i, out: ["demo", "--no-prefect", "--config", i["config"], "--out", out],
}


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_second_writer_is_refused_naming_the_holder(command, inputs, run_cli, holder, tmp_path):
    out = tmp_path / "target"
    proc = holder(out)
    status, _, err = run_cli(*COMMANDS[command](inputs, out))
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert f"pid {proc.pid} on host {locks.HOST}" in err and str(out) in err and "--wait" in err, err
    assert not out.exists() and leftovers(tmp_path) == [".target.lock"]  # only the holder's lock file


def test_train_waits_for_the_holder_then_trains(inputs, run_cli, holder, tmp_path):
    out = tmp_path / "run"
    proc = holder(out, hold_s=1.5)
    began = time.monotonic()
    status, _, err = run_cli("--wait", *COMMANDS["train forecast"](inputs, out))
    assert status == 0, err
    assert time.monotonic() - began >= 1.0 and proc.wait() == 0
    assert (out / "checkpoint.pt").is_file() and leftovers(tmp_path) == ["run"]


def test_demo_waits_for_the_holder_then_checks_the_directory(inputs, run_cli, holder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("a user's file")
    proc = holder(out, hold_s=1.5)
    began = time.monotonic()
    status, _, err = run_cli("demo", "--wait", "--no-prefect", "--config", inputs["config"], "--out", out)
    assert time.monotonic() - began >= 1.0 and proc.wait() == 0  # it queued behind the holder ...
    assert status == 2 and "is not empty" in err and len(err.strip().splitlines()) == 1, (
        err
    )  # ... then checked the directory
    assert leftovers(out) == ["notes.txt"]


def test_two_trainings_into_one_run_directory_in_one_process_are_two_writers(inputs, tmp_path):
    """The lock is the run directory's, held for the whole run: another thread's training is refused."""
    import threading

    from climate_optics.workflow import train_forecaster

    out = tmp_path / "run"
    errors: list[BaseException] = []
    with locks.holding(out):

        def second() -> None:
            try:
                train_forecaster(str(inputs["store"]), out, steps=1, batch_size=2)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
    assert len(errors) == 1 and isinstance(errors[0], locks.TargetBusyError), errors
    assert not out.exists()
