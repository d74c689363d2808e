"""Load: 20 concurrent ``evaluate`` runs against one truth store, 4 concurrent writers in one directory.

One helper process imports the package and what the commands import lazily (matplotlib, with its font
cache, dask, zarr, netCDF4) once, then forks the concurrent runs: each a real process with its own pid,
locks and clean-up, running the whole command. (Running a command in the helper first would be simpler
but would start zarr's I/O threads, and a process with threads must not fork.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from data_catalog import testing

pytestmark = pytest.mark.slow

FORK_RUNS = """
import json, os, sys, threading
from flows.cli import main
import climate_optics.evaluation.evaluate_stores, climate_optics.evaluation.scores_store, data_catalog.ingest  # imported once, before forking
import dask.array, distributed, matplotlib.backends.backend_agg, netCDF4, numcodecs, xarray.backends.zarr, zarr  # what the runs import lazily
from climate_optics import plots
figure = plots.new_figure(1, 1)  # matplotlib's font cache, loaded once (each run still draws its own figures)
figure.gca().set_title("warm"); figure.canvas.draw()
assert threading.active_count() == 1  # forking is safe only from a process with no other threads
runs, results = json.loads(sys.argv[1]), {}
children = {}
for name, argv in runs.items():
    pid = os.fork()
    if pid == 0:
        with open(argv.pop(), "w") as err:
            os.dup2(err.fileno(), 2)
            os.dup2(err.fileno(), 1)
            status = main(argv)
        os._exit(status)
    children[pid] = name
for _ in children:
    pid, status = os.wait()
    results[children[pid]] = os.waitstatus_to_exitcode(status)
print(json.dumps(results))
"""


def fork_runs(runs: dict[str, list[str]], logs: Path) -> dict[str, tuple[int, str]]:
    """Run each command line in its own forked process at once; returns name -> (status, output)."""
    argv = {name: [str(a) for a in args] + [str(logs / f"{name}.log")] for name, args in runs.items()}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORK_RUNS), json.dumps(argv)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    statuses = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: (statuses[name], (logs / f"{name}.log").read_text()) for name in runs}


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    from climate_optics.stores import ForecastStoreWriter
    from flows.cli import main

    root = tmp_path_factory.mktemp("load")
    truth = testing.canonical_dataset(
        n_time=12, n_lat=8, n_lon=16, levels=(500, 850), variables=["temperature", "2m_temperature"], seed=6
    )
    testing.era5_cds_netcdf(truth).to_netcdf(root / "era5.nc")
    assert main(["ingest", str(root / "era5.nc"), "--out", str(root / "truth.zarr")]) == 0
    with ForecastStoreWriter(
        root / "forecast.zarr",
        channels=["2m_temperature"],
        init_times=truth["time"].values[:4],
        lead_times=np.array([6], "timedelta64[h]"),
        latitude=truth["latitude"].values,
        longitude=truth["longitude"].values,
        attrs={"climate_optics_version": "test"},
    ) as writer:
        for t in range(4):
            writer.write(t, 0, truth["2m_temperature"].values[t + 1][None] + 0.5)  # the truth 6 h later, 0.5 K warm
    return {"root": root, "era5": root / "era5.nc", "truth": root / "truth.zarr", "forecast": root / "forecast.zarr"}


def test_twenty_concurrent_evaluations_of_one_truth_store(stores, tmp_path):
    truth_files = {str(p): p.read_bytes() for p in stores["truth"].rglob("*") if p.is_file()}
    runs = {
        f"e{i:02d}": [
            "evaluate",
            stores["forecast"],
            "--truth",
            stores["truth"],
            "--out",
            tmp_path / f"scores-{i:02d}.zarr",
            "--metrics",
            "rmse,bias",
            "--allow-in-sample-climatology",
        ]
        for i in range(20)
    }
    results = fork_runs(runs, tmp_path)
    failed = {name: out for name, (status, out) in results.items() if status != 0}
    assert not failed, failed
    reference = xr.open_zarr(tmp_path / "scores-00.zarr").load()
    assert float(
        reference["2m_temperature"].sel(model=reference["model"].values[0], metric="rmse").max()
    ) == pytest.approx(0.5, rel=1e-5)
    for i in range(1, 20):
        xr.testing.assert_identical(
            xr.open_zarr(tmp_path / f"scores-{i:02d}.zarr").load().drop_attrs(), reference.drop_attrs()
        )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporaries or locks left
    assert {str(p): p.read_bytes() for p in stores["truth"].rglob("*") if p.is_file()} == truth_files  # truth untouched


def test_four_concurrent_writers_in_one_directory(stores, tmp_path):
    ends = ["2020-01-01T18", "2020-01-02T06", "2020-01-02T18", "2020-01-03T06"]
    runs = {
        f"w{i}": ["ingest", stores["era5"], "--out", tmp_path / f"store-{i}.zarr", "--end", end]
        for i, end in enumerate(ends)
    }
    results = fork_runs(runs, tmp_path)
    assert all(status == 0 for status, _ in results.values()), results
    for i, end in enumerate(ends):
        ds = xr.open_zarr(tmp_path / f"store-{i}.zarr")
        assert ds.sizes["time"] == 4 + 2 * i and ds["time"].values[-1] == np.datetime64(end)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
