"""Shared test fixtures.

The Prefect ephemeral API takes 8-30 s to start, so it is started at most once per test
session, and only when a test asks for the ``prefect_harness`` fixture.
"""

from __future__ import annotations

import contextlib
import os

import pytest

# Keep dask and torch from oversubscribing the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test harness (temporary database and API) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: returns (status, stdout, stderr)."""
    from flows.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        status = main([str(a) for a in args])
        out = capsys.readouterr()
        return status, out.out, out.err

    return _run


@pytest.fixture
def holder():
    """``holder(target, hold_s=60)``: another process holding ``target``'s lock until it is told to stop (killed at teardown)."""
    import subprocess
    import sys
    import textwrap

    started = []

    def start(target, hold_s: float = 60.0) -> subprocess.Popen:
        code = textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from data_catalog import locks
            locks.acquire(Path({str(target)!r}))
            print("held", flush=True)
            time.sleep({hold_s})
            locks.release(Path({str(target)!r}))
        """)
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


# -- the embedded synthetic reanalysis, generated once per session --------------------------
# One model run (seed 0, T42, 30 days of spin-up then 140 days of 6-hourly output from
# 2000-01-01) ingested twice: the 5.625deg coarsened view for forecasting tests and the
# 2.8125deg native grid as downscaling truth. Generation takes ~20-45 s on 2 cores.
SYNTHETIC_TEST_OPTIONS = {"days": 140, "spinup_days": 30, "seed": 0}


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory):
    """Cache directory holding the session's synthetic model run (generated on first use)."""
    return tmp_path_factory.mktemp("synthetic-cache")


def _ingest_synthetic(tmp_path_factory, cache, grid):
    from data_catalog.ingest import ingest

    out = tmp_path_factory.mktemp(f"synthetic-{grid}") / "store.zarr"
    return ingest(
        "synthetic-reanalysis", out, options={**SYNTHETIC_TEST_OPTIONS, "grid": grid, "cache_dir": str(cache)}
    )


@pytest.fixture(scope="session")
def synthetic_hires_store(tmp_path_factory, synthetic_cache):
    """Path of the ingested 2.8125deg (64x128) store: statistics and climatology groups included."""
    return _ingest_synthetic(tmp_path_factory, synthetic_cache, "2.8125deg")


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory, synthetic_cache):
    """Path of the ingested 5.625deg (32x64) store from the same run as ``synthetic_hires_store``."""
    return _ingest_synthetic(tmp_path_factory, synthetic_cache, "5.625deg")


# -- one torch thread: small models on a shared 2-core machine -------------------------------


@contextlib.contextmanager
def _single_thread():
    """One intra-op thread: on a loaded 2-core machine OpenMP spin-waits make small models 10-100x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def torch_single_thread():
    """One torch thread for one test."""
    with _single_thread():
        yield


@pytest.fixture(scope="module")
def torch_single_thread_module():
    """One torch thread for a whole module, its module-scoped fixtures (trained models) included."""
    with _single_thread():
        yield


# -- a small ERA5-layout NetCDF file ---------------------------------------------------------------


@pytest.fixture(scope="module")
def small_era5_file(tmp_path_factory):
    """An 8-step, 8x16 ERA5 (CDS NetCDF) file of temperature (500, 850 hPa) and 2 m temperature: ingests in ~1 s."""
    from data_catalog import testing

    truth = testing.canonical_dataset(
        n_time=8, n_lat=8, n_lon=16, levels=(500, 850), variables=["temperature", "2m_temperature"], seed=3
    )
    path = tmp_path_factory.mktemp("era5") / "era5.nc"
    testing.era5_cds_netcdf(truth).to_netcdf(path)
    return path
