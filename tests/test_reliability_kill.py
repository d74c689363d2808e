"""Real processes stopped while they write: SIGTERM/SIGINT clean up and say so; after kill -9 the target
is absent or complete, and the next writer removes the debris and succeeds without manual clean-up.

Writers pause at named points (``CLIMATE_OPTICS_PAUSE_AT``, ``data_catalog.faults``); all victims run
at once (one start-up time for the lot), are signalled once paused, and each test checks one of them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from climate_optics.io.checkpoints import load_checkpoint, save_checkpoint
from data_catalog import locks
from data_catalog.faults import PAUSE_ENV

pytestmark = pytest.mark.slow

TINY_SYNTHETIC = {"seed": 5, "days": 10.0, "spinup_days": 0.25}  # two 5-day segments

FORECAST_SCRIPT = """
import numpy as np
from climate_optics.stores import ForecastStoreWriter
lat, lon = np.linspace(-80, 80, 4), np.arange(8) * 45.0
with ForecastStoreWriter(OUT, channels=["2m_temperature", "temperature@850"], init_times=np.array(["2020-01-01", "2020-01-02"], "datetime64[ns]"),
                         lead_times=np.array([6, 12], "timedelta64[h]"), latitude=lat, longitude=lon, attrs={"climate_optics_version": "test"}) as w:
    for t in range(2):
        for k in range(2):
            w.write(t, k, np.full((2, 4, 8), 280.0 + t + k, np.float32))
"""

SCORES_SCRIPT = """
import numpy as np, xarray as xr
from climate_optics.evaluation.scores_store import write_scores
values = np.arange(8.0).reshape(2, 2, 1, 2)
ds = xr.Dataset({"2m_temperature": (("model", "metric", "region", "lead_time"), values)},
                coords={"model": ["vit-dfa", "persistence"], "metric": ["rmse", "bias"], "region": ["global"],
                        "lead_time": np.array([6, 12], "timedelta64[h]").astype("timedelta64[ns]")})
write_scores(ds, OUT, attrs={"climate_optics_version": "test"})
"""

CHECKPOINT_SCRIPT = """
import torch
from climate_optics.io.checkpoints import save_checkpoint
state = {"model": {"w": torch.ones(3)}, "task": {}, "step": 1}
save_checkpoint(state, OUT)
save_checkpoint(state | {"step": 2, "model": {"w": torch.full((3,), 2.0)}}, OUT)  # paused: step 1 must survive
"""

LATEST_SCRIPT = """
from pathlib import Path
from climate_optics.retraining import record_latest
record_latest(Path(OUT).parent, {"run": "first"})
record_latest(Path(OUT).parent, {"run": "second"})  # paused: the first must survive
"""


def registry_with_two_versions(root: Path) -> Path:
    """A model registry whose current version is v0001, with v0002 registered beside it."""
    import torch

    from climate_optics.registry import ModelRegistry

    registry = ModelRegistry.open(root / "registry", create=True)
    for value in (1.0, 2.0):
        state = {
            "model": {"weight": torch.full((2,), value)},
            "step": 1,
            "train_config": {"mode": "backprop"},
            "task": {"kind": "forecast", "model_config": {}, "data": {}},
        }
        registry.register(save_checkpoint(state, root / f"checkpoint-{value:g}.pt"))
    assert registry.promote("v0001")
    return registry.root


SYNTHETIC_SCRIPT = f"""
from pathlib import Path
from data_catalog.synthetic import SyntheticConfig
from data_catalog.synthetic.writer import ensure_generated
ensure_generated(SyntheticConfig(**{TINY_SYNTHETIC!r}), Path(OUT), chunk_days=5, progress=False)
"""


@dataclass
class Victim:
    name: str
    out: Path
    command: list[str]
    pause: str
    signum: int
    env: dict
    proc: subprocess.Popen | None = None
    stderr_path: Path | None = None
    status: int | None = None
    stderr: str = ""


def python(script: str, out: Path) -> list[str]:
    return [sys.executable, "-c", f"OUT = {str(out)!r}\n" + textwrap.dedent(script)]


def cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "flows.cli", *(str(a) for a in args)]


@pytest.fixture(scope="module")
def victims(tmp_path_factory, small_era5_file) -> dict[str, Victim]:
    """Start every writer, wait until each has paused, then signal it; returns them by name."""
    from flows.cli import main

    root = tmp_path_factory.mktemp("victims")
    dirs = {
        name: root / name
        for name in (
            "term",
            "int",
            "kill",
            "swap",
            "forecast",
            "scores",
            "checkpoint",
            "latest",
            "synthetic",
            "registry",
        )
    }
    for path in dirs.values():
        path.mkdir()
    existing = dirs["swap"] / "data.zarr"
    assert main(["ingest", str(small_era5_file), "--out", str(existing), "--end", "2020-01-01T06"]) == 0  # 2 times
    registry = registry_with_two_versions(dirs["registry"])
    kill = signal.SIGKILL
    specs = [
        (
            "term",
            dirs["term"] / "data.zarr",
            cli("ingest", small_era5_file, "--out", dirs["term"] / "data.zarr"),
            "before-rename",
            signal.SIGTERM,
        ),
        (
            "int",
            dirs["int"] / "data.zarr",
            cli("ingest", small_era5_file, "--out", dirs["int"] / "data.zarr"),
            "before-rename",
            signal.SIGINT,
        ),
        (
            "kill",
            dirs["kill"] / "data.zarr",
            cli("ingest", small_era5_file, "--out", dirs["kill"] / "data.zarr"),
            "before-rename",
            kill,
        ),
        (
            "swap",
            existing,
            cli("ingest", small_era5_file, "--out", existing, "--overwrite"),
            "after-exchange,between-renames",
            kill,
        ),
        (
            "forecast",
            dirs["forecast"] / "f.zarr",
            python(FORECAST_SCRIPT, dirs["forecast"] / "f.zarr"),
            "forecast-step",
            kill,
        ),
        ("scores", dirs["scores"] / "s.zarr", python(SCORES_SCRIPT, dirs["scores"] / "s.zarr"), "before-rename", kill),
        (
            "checkpoint",
            dirs["checkpoint"] / "checkpoint.pt",
            python(CHECKPOINT_SCRIPT, dirs["checkpoint"] / "checkpoint.pt"),
            "before-rename:checkpoint.pt@2",
            kill,
        ),  # the second save
        (
            "latest",
            dirs["latest"] / "LATEST.json",
            python(LATEST_SCRIPT, dirs["latest"] / "LATEST.json"),
            "before-rename:LATEST.json@2",
            kill,
        ),
        (
            "synthetic",
            dirs["synthetic"] / "entry.zarr",
            python(SYNTHETIC_SCRIPT, dirs["synthetic"] / "entry.zarr"),
            "synthetic-segment",
            kill,
        ),
        (
            "registry",
            registry / "current.json",
            cli("models", "promote", "v0002", "--registry", registry),
            "before-rename:current.json",
            kill,
        ),
    ]
    started: dict[str, Victim] = {}
    for name, out, command, pause, signum in specs:
        env = {**os.environ, PAUSE_ENV: pause, "OMP_NUM_THREADS": "1"}
        victim = Victim(name, out, command, pause, signum, env, stderr_path=root / f"{name}.stderr")
        victim.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=open(victim.stderr_path, "w")
        )
        started[name] = victim
    deadline = time.monotonic() + 240
    waiting = dict(started)
    while waiting and time.monotonic() < deadline:
        for name, victim in list(waiting.items()):
            text = victim.stderr_path.read_text()
            if "paused at" in text:
                victim.proc.send_signal(victim.signum)
                del waiting[name]
            elif victim.proc.poll() is not None:
                del waiting[name]  # finished or failed without pausing: its test reports it
        time.sleep(0.1)
    for victim in started.values():
        try:
            victim.status = victim.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            victim.proc.kill()
            victim.status = victim.proc.wait()
        victim.stderr = victim.stderr_path.read_text()
    return started


def run_script(script: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        python(script, out), capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )


def paused_and_stopped(victim: Victim, status: int) -> None:
    assert "paused at" in victim.stderr, victim.stderr
    assert victim.status == status, victim.stderr


def debris(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("name, status", [("term", 143), ("int", 130)])
def test_sigterm_and_sigint_remove_temporaries_and_say_one_line(victims, name, status):
    victim = victims[name]
    paused_and_stopped(victim, status)
    last = victim.stderr.strip().splitlines()[-1]
    assert last == f"climate-optics: error: interrupted: nothing written to {victim.out}"
    assert list(victim.out.parent.iterdir()) == []  # no store, no temporary, no lock file


def test_kill_9_leaves_no_target_and_the_next_run_cleans_up(victims, run_cli, small_era5_file, caplog):
    victim = victims["kill"]
    paused_and_stopped(victim, -signal.SIGKILL)
    assert not victim.out.exists() and any(".tmp-" in n for n in debris(victim.out.parent))
    with caplog.at_level(logging.WARNING, logger="data_catalog.locks"):
        status, _, err = run_cli("ingest", small_era5_file, "--out", victim.out)
    assert status == 0, err
    assert f"a temporary left by pid {victim.proc.pid} on host {locks.HOST} (no longer running)" in caplog.text
    assert f"took over the lock left by pid {victim.proc.pid}" in caplog.text
    assert debris(victim.out.parent) == [] and xr.open_zarr(victim.out).sizes["time"] == 8


def test_kill_9_while_replacing_leaves_a_complete_store_or_none(victims, run_cli, small_era5_file):
    victim = victims["swap"]
    paused_and_stopped(victim, -signal.SIGKILL)
    if "after-exchange" in victim.stderr:  # the new store is in place, the old one in the temporary
        assert xr.open_zarr(victim.out).sizes["time"] == 8
    else:  # no atomic exchange on this file system: between two renames, the target is absent
        assert not victim.out.exists()
    status, _, err = run_cli("ingest", small_era5_file, "--out", victim.out, "--overwrite")
    assert status == 0, err
    assert debris(victim.out.parent) == [] and xr.open_zarr(victim.out).sizes["time"] == 8


def test_kill_9_during_a_forecast_store_shows_readers_nothing(victims):
    victim = victims["forecast"]
    paused_and_stopped(victim, -signal.SIGKILL)
    assert not victim.out.exists()
    rerun = run_script(FORECAST_SCRIPT, victim.out)
    assert rerun.returncode == 0, rerun.stderr
    assert "no longer running" in rerun.stderr and debris(victim.out.parent) == []
    forecast = xr.open_zarr(victim.out)
    np.testing.assert_array_equal(forecast["2m_temperature"].values[:, :, 0, 0], [[280, 281], [281, 282]])


def test_kill_9_during_a_scores_store(victims):
    victim = victims["scores"]
    paused_and_stopped(victim, -signal.SIGKILL)
    assert not victim.out.exists()
    rerun = run_script(SCORES_SCRIPT, victim.out)
    assert rerun.returncode == 0, rerun.stderr
    assert debris(victim.out.parent) == [] and (victim.out.parent / "s.md").is_file()
    assert list((victim.out.parent / "figures" / "s").glob("skill_*.png"))
    assert xr.open_zarr(victim.out)["2m_temperature"].sizes == {"model": 2, "metric": 2, "region": 1, "lead_time": 2}


def test_kill_9_during_a_checkpoint_keeps_the_previous_one(victims):
    victim = victims["checkpoint"]
    paused_and_stopped(victim, -signal.SIGKILL)
    assert load_checkpoint(victim.out)["step"] == 1  # verified against its recorded sha256
    save_checkpoint({"model": {}, "task": {}, "step": 3}, victim.out)
    assert load_checkpoint(victim.out)["step"] == 3 and debris(victim.out.parent) == []


def test_kill_9_while_switching_the_latest_record_keeps_the_previous_one(victims):
    from climate_optics.retraining import record_latest

    victim = victims["latest"]
    paused_and_stopped(victim, -signal.SIGKILL)
    assert json.loads(victim.out.read_text()) == {"run": "first"}
    record_latest(victim.out.parent, {"run": "third"})
    assert json.loads(victim.out.read_text()) == {"run": "third"} and debris(victim.out.parent) == []


def test_kill_9_during_synthetic_generation_resumes(victims, caplog):
    from data_catalog.synthetic import SyntheticConfig
    from data_catalog.synthetic.writer import ensure_generated

    victim = victims["synthetic"]
    paused_and_stopped(victim, -signal.SIGKILL)
    assert not victim.out.exists() and (victim.out.parent / ".entry.zarr.partial").is_dir()
    with caplog.at_level(logging.WARNING):
        ensure_generated(SyntheticConfig(**TINY_SYNTHETIC), victim.out, chunk_days=5, progress=False)
    assert "from time step 20 of 40" in caplog.text
    assert xr.open_zarr(victim.out, consolidated=False).sizes["time"] == 40 and debris(victim.out.parent) == []


def test_kill_9_while_promoting_keeps_the_current_version_and_the_next_promotion_cleans_up(victims, run_cli):
    from climate_optics.registry import ModelRegistry

    victim = victims["registry"]
    paused_and_stopped(victim, -signal.SIGKILL)
    registry = ModelRegistry.open(victim.out.parent)
    assert json.loads(victim.out.read_text())["version"] == "v0001" and registry.current() == "v0001"
    assert any(".tmp-" in name for name in debris(victim.out.parent))  # the dead promotion's temporary
    status, _, err = run_cli("models", "promote", "v0002", "--registry", victim.out.parent)
    assert status == 0, err
    assert registry.current() == "v0002" and debris(victim.out.parent) == []
