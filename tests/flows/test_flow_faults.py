"""Faults in flows: a transient I/O failure is retried and the run completes; a permanent one fails
the run with one clear message and leaves earlier outputs as they were; bad input is not retried.

Failures are injected where the library writes (``CLIMATE_OPTICS_FAIL_AT``, ``data_catalog.faults``):
the store's data is complete in its temporary when the point raises ``OSError`` (EIO), as a storage
system failing under the writer would. The flows run on the session's Prefect test harness; the
tasks' retry delay is set to 0 here (the schedule is not what is tested, the retry is).
"""

from __future__ import annotations

import errno
import hashlib
import shutil
from pathlib import Path

import pytest

from data_catalog import faults

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def no_retry_delay(monkeypatch):
    """The flows' tasks with their retry schedule, but no delay between attempts."""
    import flows.evaluate
    import flows.ingest

    monkeypatch.setattr(flows.ingest, "ingest_store", flows.ingest.ingest_store.with_options(retry_delay_seconds=0))
    monkeypatch.setattr(
        flows.evaluate, "evaluate_task", flows.evaluate.evaluate_task.with_options(retry_delay_seconds=0)
    )


@pytest.fixture
def inject(monkeypatch, no_retry_delay):
    """``inject("before-rename:data.zarr*1")``: the I/O failure(s) of this test; returns the counts raised."""
    counts: dict[str, int] = {}
    monkeypatch.setattr(faults, "_failed", counts)

    def _inject(spec: str) -> dict[str, int]:
        monkeypatch.setenv(faults.FAIL_ENV, spec)
        return counts

    return _inject


def task_run_counts(state) -> dict[str, int]:
    """Task name -> attempts (run_count) of the flow run behind ``state``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name.rsplit("-", 1)[0]: run.run_count for run in runs}  # task run names are TASK-XYZ


def digest(directory: Path) -> str:
    """sha256 over every file's relative path and bytes: equal only for an untouched copy."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def leftovers(directory: Path, name: str) -> list[str]:
    """Hidden temporaries or lock files of ``name`` still in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(f".{name}."))


def failure(state) -> BaseException:
    with pytest.raises(BaseException) as caught:
        state.result()
    return caught.value


def test_ingest_flow_retries_a_transient_io_failure(inject, tiny_source, tmp_path):
    import xarray as xr

    from flows.ingest import ingest_flow

    raised = inject("before-rename:data.zarr*1")
    out = tmp_path / "data.zarr"
    state = ingest_flow(str(tiny_source), str(out), return_state=True)
    assert state.is_completed(), state.message
    assert raised == {"before-rename:data.zarr": 1}  # the first attempt did fail
    assert task_run_counts(state) == {"ingest": 2}
    with xr.open_zarr(out) as ds, xr.open_dataset(tiny_source) as source:
        xr.testing.assert_allclose(
            ds["2m_temperature"].load(), source["2m_temperature"].load().astype(ds["2m_temperature"].dtype)
        )
    assert leftovers(tmp_path, "data.zarr") == []  # the failed attempt's temporary and lock are gone


def test_ingest_flow_fails_once_retries_are_spent_and_keeps_the_earlier_store(inject, tiny_source, tmp_path):
    from flows.ingest import ingest_flow

    out = tmp_path / "data.zarr"
    assert ingest_flow(str(tiny_source), str(out), variables=["2m_temperature"]) == str(out)
    before = digest(out)
    raised = inject("before-rename:data.zarr")  # every attempt fails
    state = ingest_flow(str(tiny_source), str(out), overwrite=True, return_state=True)
    assert state.is_failed()
    assert raised == {"before-rename:data.zarr": 3}  # the first attempt and both retries
    assert task_run_counts(state) == {"ingest": 3}
    exc = failure(state)
    assert isinstance(exc, OSError) and exc.errno == errno.EIO
    message = state.message
    assert "\n" not in message and "Input/output error" in message and str(out) in message
    assert digest(out) == before  # the store written before is untouched
    assert leftovers(tmp_path, "data.zarr") == []


def test_ingest_flow_does_not_retry_bad_input(inject, tmp_path):
    from data_catalog.errors import DataInputError
    from flows.ingest import ingest_flow

    inject("")
    bad = tmp_path / "broken.nc"
    bad.write_bytes(b"CDF\x01 truncated")
    state = ingest_flow(str(bad), str(tmp_path / "data.zarr"), return_state=True)
    assert state.is_failed()
    assert isinstance(failure(state), DataInputError)
    assert task_run_counts(state) == {"ingest": 1}
    assert not (tmp_path / "data.zarr").exists()


@pytest.fixture
def evaluate_inputs(demo_run, tmp_path):
    """A forecast and its truth from the session's tiny demo run, and an earlier scores store beside them."""
    scores = tmp_path / "scores.zarr"
    shutil.copytree(demo_run / "scores.zarr", scores)
    return demo_run / "forecast-backprop.zarr", demo_run / "data.zarr", scores


def test_evaluate_flow_retries_a_transient_io_failure(inject, evaluate_inputs, tmp_path):
    import xarray as xr

    from flows.evaluate import evaluate_flow

    forecast, truth, _ = evaluate_inputs
    out = tmp_path / "fresh.zarr"
    raised = inject("before-rename:fresh.zarr*2")
    state = evaluate_flow(str(forecast), str(truth), str(out), return_state=True)
    assert state.is_completed(), state.message
    assert raised == {"before-rename:fresh.zarr": 2}
    assert task_run_counts(state) == {"evaluate": 3}
    with xr.open_zarr(out) as scores:
        assert {"persistence", "climatology"} <= set(scores["model"].values.tolist())
        rmse = scores["2m_temperature"].sel(metric="rmse", region="global")
        assert bool((rmse > 0).all())
    assert leftovers(tmp_path, "fresh.zarr") == []


def test_evaluate_flow_fails_on_a_permanent_io_failure_and_keeps_the_earlier_scores(inject, evaluate_inputs, tmp_path):
    from flows.evaluate import evaluate_flow

    forecast, truth, scores = evaluate_inputs
    before = digest(scores)
    raised = inject("before-rename:scores.zarr")
    state = evaluate_flow(str(forecast), str(truth), str(scores), overwrite=True, return_state=True)
    assert state.is_failed()
    assert raised == {"before-rename:scores.zarr": 3}
    assert task_run_counts(state) == {"evaluate": 3}
    assert "\n" not in state.message and "Input/output error" in state.message and str(scores) in state.message
    assert digest(scores) == before
    assert leftovers(tmp_path, "scores.zarr") == []


@pytest.mark.parametrize(
    "error, transient",
    [
        (OSError(errno.EIO, "Input/output error"), True),
        (TimeoutError("read timed out"), True),
        (ConnectionResetError("connection reset by peer"), True),
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), False),
        (PermissionError(errno.EACCES, "Permission denied"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_io_errors_count_as_transient(error, transient):
    from data_catalog.errors import DataInputError
    from data_catalog.locks import TargetBusyError
    from flows.retries import is_transient

    assert is_transient(error) is transient
    try:  # raised while handling an I/O error, bad input stays bad input
        try:
            raise OSError(errno.EIO, "Input/output error")
        except OSError as io:
            raise DataInputError("not a NetCDF file", source="x.nc") from io
    except DataInputError as bad:
        assert not is_transient(bad)
    assert not is_transient(TargetBusyError("another climate-optics process is writing this output", source="x.zarr"))


def test_pipeline_flow_refuses_a_run_directory_another_process_writes(holder, tiny_source, tmp_path):
    from data_catalog.locks import HOST, TargetBusyError
    from flows.pipeline import pipeline_flow

    out = tmp_path / "run"
    proc = holder(out)
    state = pipeline_flow(str(out), source=str(tiny_source), mode="backprop", steps=1, return_state=True)
    assert state.is_failed()
    exc = failure(state)
    assert isinstance(exc, TargetBusyError) and f"pid {proc.pid} on host {HOST}" in str(exc) and str(out) in str(exc)
    assert not out.exists()
