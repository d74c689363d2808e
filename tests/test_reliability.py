"""Reliability, in process: --overwrite replaces only our outputs, one writer per target, dead writers'
debris removed, signals clean up, checkpoints verified, a broken catalog spares plain paths,
synthetic generation resumes. (Real processes killed by signals: test_reliability_kill.py.)"""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from climate_optics.errors import UsageInputError
from climate_optics.interrupts import Interrupted, signals_as_exceptions
from climate_optics.io.checkpoints import DIGEST_KEY, load_checkpoint, save_checkpoint
from data_catalog import locks, testing
from data_catalog.errors import DataInputError
from data_catalog.store import MARKER, atomic_store, check_target, is_tool_store


def debris(directory: Path) -> list[str]:
    return sorted(
        p.name for p in directory.iterdir() if ".tmp-" in p.name or ".old-" in p.name or p.name.endswith(".lock")
    )


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- --overwrite replaces only what this tool wrote ------------------------------------------------


def test_overwrite_refuses_a_user_directory_and_names_what_is_in_it(run_cli, small_era5_file, tmp_path):
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("my thesis")
    (user_dir / "figures").mkdir()
    status, _, err = run_cli("ingest", small_era5_file, "--out", user_dir, "--overwrite")
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert str(user_dir) in err and "notes.txt" in err and "figures/" in err and "not a store this tool wrote" in err
    assert (user_dir / "notes.txt").read_text() == "my thesis" and debris(tmp_path) == []


def test_overwrite_refuses_a_file_and_a_link(run_cli, small_era5_file, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    status, _, err = run_cli("ingest", small_era5_file, "--out", tmp_path / "notes.txt", "--overwrite")
    assert status == 2 and "is a file, not a store this tool wrote" in err and "notes.txt" in err
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    (tmp_path / "link.zarr").symlink_to(tmp_path / "notes.txt")
    status, _, err = run_cli("ingest", small_era5_file, "--out", tmp_path / "link.zarr", "--overwrite")
    assert status == 2 and "symbolic link" in err and (tmp_path / "link.zarr").is_symlink()


def test_overwrite_replaces_an_empty_directory_and_our_own_store(run_cli, small_era5_file, tmp_path):
    out = tmp_path / "out.zarr"
    out.mkdir()
    assert run_cli("ingest", small_era5_file, "--out", out, "--overwrite")[0] == 0
    assert is_tool_store(out) and not (out / MARKER).exists()  # recognised by its provenance attributes
    first = xr.open_zarr(out).attrs["created"]
    assert run_cli("ingest", small_era5_file, "--out", out, "--overwrite", "--end", "2020-01-01T12")[0] == 0
    assert xr.open_zarr(out).sizes["time"] == 3 and debris(tmp_path) == []
    assert xr.open_zarr(out).attrs["created"] >= first


def test_directories_without_provenance_get_the_marker(tmp_path):
    with atomic_store(tmp_path / "plain") as tmp:
        tmp.mkdir()
        (tmp / "table.csv").write_text("a,b\n")
    assert (tmp_path / "plain" / MARKER).is_file() and is_tool_store(tmp_path / "plain")
    with atomic_store(tmp_path / "plain", overwrite=True) as tmp:
        tmp.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_file_outputs_replace_files_but_never_directories(tmp_path):
    with atomic_store(tmp_path / "record.json", overwrite=True, kind="file") as tmp:
        tmp.write_text("1")
    with atomic_store(tmp_path / "record.json", overwrite=True, kind="file") as tmp:
        tmp.write_text("2")
    assert (tmp_path / "record.json").read_text() == "2"
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(DataInputError, match="is a directory, not a file this tool wrote"):
        check_target(tmp_path / "dir.json", overwrite=True, kind="file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.json", "record.json"]


def test_overwrite_of_a_run_directory_needs_one_this_tool_wrote(tmp_path):
    from climate_optics.pipeline import check_run_dir

    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(
        DataInputError,
        match=r"home: is not a run directory this tool wrote \(it holds thesis.tex, but no pipeline.json\)",
    ):
        check_run_dir(home, overwrite=True)
    assert (home / "thesis.tex").read_text() == "years of work"
    run = tmp_path / "run"
    run.mkdir()
    (run / "pipeline.json").write_text("{}")
    (run / "train-dfa").mkdir()
    assert check_run_dir(run, overwrite=True) is True  # ours: its outputs may be replaced
    assert check_run_dir(tmp_path / "new", overwrite=False) is False


# -- one writer per target -------------------------------------------------------------------------


def test_second_writer_is_refused_naming_the_holder(run_cli, small_era5_file, tmp_path, holder):
    out = tmp_path / "out.zarr"
    proc = holder(out)
    status, _, err = run_cli("ingest", small_era5_file, "--out", out)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert f"pid {proc.pid} on host {locks.HOST}" in err and str(out) in err and "--wait" in err
    assert not out.exists()


def test_wait_queues_behind_the_holder(run_cli, small_era5_file, tmp_path, holder):
    out = tmp_path / "out.zarr"
    proc = holder(out, hold_s=1.5)
    began = time.monotonic()
    status, _, err = run_cli("ingest", small_era5_file, "--out", out, "--wait")
    assert status == 0, err
    assert time.monotonic() - began >= 1.0 and proc.wait() == 0 and out.is_dir() and debris(tmp_path) == []


def test_a_lock_file_that_cannot_be_created_is_bad_input(tmp_path, run_cli, small_era5_file):
    locks.lock_path(tmp_path / "out.zarr").mkdir()  # (a read-only directory does the same, except for root)
    status, _, err = run_cli("ingest", small_era5_file, "--out", tmp_path / "out.zarr")
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{tmp_path / 'out.zarr'}: cannot create its lock file .out.zarr.lock (Is a directory)" in err


def test_two_threads_are_two_writers(tmp_path):
    out = tmp_path / "out.zarr"
    check_target(out, overwrite=False)
    errors = []
    thread = threading.Thread(
        target=lambda: errors.append(pytest.raises(locks.TargetBusyError, check_target, out, overwrite=False))
    )
    thread.start()
    thread.join()
    assert errors and f"pid {os.getpid()}" in str(errors[0].value)
    locks.release(out)
    assert not locks.lock_path(out).exists()


def test_a_dead_writers_lock_is_taken_over_and_said_so(tmp_path, caplog):
    out = tmp_path / "out.zarr"
    pid = dead_pid()
    locks.lock_path(out).write_text(f"{pid} {locks.HOST}\n")  # as kill -9 leaves it
    with caplog.at_level(logging.WARNING, logger="data_catalog.locks"):
        with atomic_store(out) as tmp:
            tmp.mkdir()
    assert f"took over the lock left by pid {pid}" in caplog.text
    assert out.is_dir() and debris(tmp_path) == []


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path, caplog, holder):
    live = holder(tmp_path / "busy.zarr")  # first: its own clean-up would remove the debris below
    pid = dead_pid()
    dead_store = tmp_path / f".other.zarr.tmp-{pid}@{locks.HOST}-0123abcd"
    dead_store.mkdir()
    (dead_store / "zarr.json").write_text("{}")
    dead_file = tmp_path / f".checkpoint.pt.tmp-{pid}@{locks.HOST}-89abcdef"
    dead_file.write_bytes(b"half a checkpoint")
    legacy = tmp_path / ".out.zarr.tmp-0badcafe"  # written before temporaries named their owner
    legacy.mkdir()
    live_tmp = tmp_path / f".busy.zarr.tmp-{live.pid}@{locks.HOST}-00000001"
    live_tmp.mkdir()
    foreign = tmp_path / f".x.zarr.tmp-{pid}@another-host-00000002"  # cannot tell: kept
    foreign.mkdir()
    with caplog.at_level(logging.WARNING, logger="data_catalog.locks"):
        check_target(tmp_path / "out.zarr", overwrite=False)
    locks.release(tmp_path / "out.zarr")
    assert not dead_store.exists() and not dead_file.exists() and not legacy.exists()
    assert live_tmp.exists() and foreign.exists()
    assert (
        f"removed {dead_store}, a temporary left by pid {pid} on host {locks.HOST} (no longer running)" in caplog.text
    )


# -- signals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_inside_a_write_removes_the_temporary(tmp_path, signum, status):
    out = tmp_path / "out.zarr"
    with pytest.raises(Interrupted) as caught:
        with signals_as_exceptions():
            with atomic_store(out) as tmp:
                tmp.mkdir()
                (tmp / "zarr.json").write_text("{}")
                os.kill(os.getpid(), signum)
                time.sleep(5)  # the handler raises before this ends
    assert caught.value.status == status
    assert caught.value.message() == f"interrupted: nothing written to {out}"
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_a_signal_during_a_run_says_the_run_directory_keeps_its_finished_steps(tmp_path):
    run, out = tmp_path / "run", tmp_path / "run" / "checkpoint.pt"
    with pytest.raises(Interrupted) as caught:
        with signals_as_exceptions(), locks.holding(run):
            run.mkdir()
            (run / "metrics.jsonl").write_text("{}\n")  # a finished step
            with atomic_store(out, kind="file") as tmp:
                tmp.write_bytes(b"half a checkpoint")
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
    assert (
        caught.value.message()
        == f"interrupted: nothing written to {out}; {run} keeps what was finished before the signal"
    )
    assert sorted(p.name for p in run.iterdir()) == ["metrics.jsonl"] and locks.held_targets(runs=True) == []


def test_a_storage_failure_is_one_line_exit_1_and_leaves_the_earlier_store(
    run_cli, small_era5_file, tmp_path, monkeypatch
):
    from data_catalog import faults

    out = tmp_path / "out.zarr"
    assert run_cli("ingest", small_era5_file, "--out", out, "--end", "2020-01-01T06")[0] == 0
    before = {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(faults, "_failed", {})
    monkeypatch.setenv(faults.FAIL_ENV, "before-rename:out.zarr")
    status, _, err = run_cli("ingest", small_era5_file, "--out", out, "--overwrite")
    assert status == 1 and err.strip().splitlines() == [
        f"climate-optics: error: I/O error: [Errno 5] Input/output error (injected at before-rename): '{out}'"
    ], err
    assert {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before and debris(tmp_path) == []


# -- checkpoints -----------------------------------------------------------------------------------


def small_state() -> dict:
    return {
        "model": {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3, dtype=torch.bfloat16)},
        "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99)}]},
        "step": 3,
        "task": {"kind": "toy", "config": {"depth": 2}},
    }


def test_checkpoint_roundtrip_records_and_verifies_its_sha256(tmp_path):
    path = save_checkpoint(small_state(), tmp_path / "checkpoint.pt")
    state = load_checkpoint(path)
    assert len(state[DIGEST_KEY]) == 64 and torch.equal(state["model"]["w"], small_state()["model"]["w"])
    save_checkpoint(small_state() | {"step": 4}, path)  # our own file: replaced
    assert load_checkpoint(path)["step"] == 4 and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


@pytest.mark.parametrize(
    "tamper, match",
    [
        (lambda s: s | {DIGEST_KEY: "0" * 64}, "do not match their recorded sha256"),
        (lambda s: s | {"model": {**s["model"], "w": s["model"]["w"] + 1e-3}}, "do not match their recorded sha256"),
        (lambda s: {k: v for k, v in s.items() if k != DIGEST_KEY}, "no recorded sha256"),
    ],
)
def test_an_altered_checkpoint_is_refused(tmp_path, tamper, match):
    path = save_checkpoint(small_state(), tmp_path / "checkpoint.pt")
    torch.save(tamper(torch.load(path, weights_only=True)), path)
    with pytest.raises(UsageInputError, match=match) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("make", ["raw pickle", "torch zip with an object", "truncated", "empty"])
def test_unsafe_or_broken_checkpoints_never_suggest_unsafe_loading(tmp_path, make, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "checkpoint.pt"
    if make == "raw pickle":
        path.write_bytes(pickle.dumps({"model": _Payload(), "task": {}}))
    elif make == "torch zip with an object":
        torch.save({"model": _Payload(), "task": {}}, path)
    elif make == "truncated":
        save_checkpoint(small_state(), path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(b"")
    with pytest.raises(UsageInputError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and "weights_only" not in message and "\n" not in message
    assert not (tmp_path / "pwned").exists()


def test_a_foreign_file_at_the_checkpoint_path_is_not_replaced(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"my own weights, not yours")
    with pytest.raises(UsageInputError, match="is not a checkpoint this tool wrote; it will not be replaced"):
        save_checkpoint(small_state(), path)
    assert path.read_bytes() == b"my own weights, not yours"


# -- a broken catalog breaks only what needs it ----------------------------------------------------


def test_broken_user_catalog_spares_commands_on_plain_paths(run_cli, small_era5_file, tmp_path, monkeypatch):
    broken = tmp_path / "broken.yaml"
    broken.write_text("entries: [not closed\n")
    monkeypatch.setenv("CLIMATE_OPTICS_CATALOG", str(broken))
    status, _, err = run_cli("ingest", small_era5_file, "--out", tmp_path / "out.zarr")
    assert status == 0, err
    status, _, err = run_cli("catalog", "list")
    assert status == 2 and str(broken) in err and "not valid YAML" in err
    status, _, err = run_cli("ingest", "my-entry", "--out", tmp_path / "other.zarr")
    assert status == 2 and str(broken) in err and not (tmp_path / "other.zarr").exists()


# -- no credentials in what is written --------------------------------------------------------------

SECRET = "ya29.S3CRET-t0ken"


@pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")  # writing the source store
def test_credentials_in_options_never_reach_stores_or_output(tmp_path, monkeypatch, run_cli):
    from data_catalog.ingest import ingest

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    truth = testing.canonical_dataset(n_time=4, n_lat=8, n_lon=16, levels=(500,), variables=["temperature"], seed=3)
    testing.wb2_zarr(truth).to_zarr(tmp_path / "src.zarr")
    out = ingest(
        f"file://{tmp_path / 'src.zarr'}",
        tmp_path / "out.zarr",
        options={"storage_options": {"token": SECRET, "client_kwargs": {"session_token": SECRET}}},
    )
    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"storage_options" in written and SECRET.encode() not in written  # which options: yes; their secrets: no
    status, stdout, stderr = run_cli("ingest", f"file://{tmp_path / 'src.zarr'}", "--out", tmp_path / "cli.zarr")
    assert status == 0 and SECRET not in stdout + stderr


def test_redact_keeps_the_harmless_and_hides_the_secret():
    from data_catalog.redact import REDACTED, redact

    settings = {
        "storage_options": {"token": "anon", "key": "AKIA123", "secret": "s", "author": "me"},
        "source": "https://user:pa55@example.org/era5.zarr",
        "levels": [500, 850],
    }
    assert redact(settings) == {
        "storage_options": {"token": "anon", "key": REDACTED, "secret": REDACTED, "author": "me"},
        "source": f"https://user:{REDACTED}@example.org/era5.zarr",
        "levels": [500, 850],
    }


# -- synthetic generation resumes where it stopped -------------------------------------------------


def test_interrupted_synthetic_generation_resumes_bit_identically(tmp_path, monkeypatch, caplog):
    from data_catalog.synthetic import SyntheticConfig, generate, writer

    config = SyntheticConfig(seed=4, days=10.0, spinup_days=0.25)  # two 5-day segments
    reference = generate(config, tmp_path / "reference.zarr", chunk_days=5, progress=False)
    target = tmp_path / "cache" / "entry.zarr"
    target.parent.mkdir()
    segments = []

    def stop_after_first(point, path):
        segments.append(point)
        raise KeyboardInterrupt  # as Ctrl-C after the first segment

    monkeypatch.setattr(writer, "pause_point", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        writer.ensure_generated(config, target, chunk_days=5, progress=False)
    partial = target.with_name(".entry.zarr.partial")
    assert segments == ["synthetic-segment"] and not target.exists() and partial.is_dir()
    assert xr.open_zarr(partial, consolidated=False).sizes["time"] == 20
    monkeypatch.setattr(writer, "pause_point", lambda point, path: segments.append(point))
    with caplog.at_level(logging.WARNING, logger="data_catalog.synthetic.writer"):
        writer.ensure_generated(config, target, chunk_days=5, progress=False)
    assert "continuing" in caplog.text and "from time step 20 of 40" in caplog.text
    assert segments == ["synthetic-segment"] * 2  # only the second segment was integrated again
    resumed, fresh = xr.open_zarr(target, consolidated=False), xr.open_zarr(reference, consolidated=False)
    assert sorted(p.name for p in target.parent.iterdir()) == ["entry.zarr"]
    for name in fresh.data_vars:
        np.testing.assert_array_equal(resumed[name].values, fresh[name].values)
    assert json.loads((target / "zarr.json").read_text())["attributes"]["seed"] == 4
