"""Shared test fixtures.

The Prefect ephemeral API takes 8-30 s to start, so it is started at most once per test
session, and only when a test asks for the ``prefect_harness`` fixture.
"""

from __future__ import annotations

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
    from climate_optics.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        status = main([str(a) for a in args])
        out = capsys.readouterr()
        return status, out.out, out.err

    return _run
