"""--dask-workers / --dask-address: ingest and evaluate on a real 2-worker LocalCluster give the local results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 40-step 16x32 file: geopotential and temperature on two levels, 2 m temperature, a land mask."""
    from data_catalog import testing

    ds = testing.canonical_dataset(
        n_time=40,
        n_lat=16,
        n_lon=32,
        levels=(500, 850),
        seed=5,
        variables=["geopotential", "temperature", "2m_temperature", "land_sea_mask"],
    )
    path = tmp_path_factory.mktemp("cluster-source") / "source.nc"
    ds.to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def client():
    from climate_optics.cluster import dask_client

    with dask_client(workers=2) as client:
        yield client


def forecast_store(truth_path, out):
    """A forecast store in our layout: the truth at the valid time plus noise, (1, 1, ...) chunks."""
    truth = xr.open_zarr(truth_path)
    inits = truth["time"].values[20:30]
    leads = pd.to_timedelta([6, 12, 24], "h").values.astype("timedelta64[ns]")
    rng = np.random.default_rng(0)
    fields = {}
    for name, da in truth.data_vars.items():
        if "time" in da.dims:
            values = np.stack([da.sel(time=inits + lead).values for lead in leads], axis=1)
            fields[name] = (
                ("time", "prediction_timedelta", *da.dims[1:]),
                values + rng.normal(size=values.shape).astype("float32"),
                da.attrs,
            )
    ds = xr.Dataset(
        fields,
        coords={
            "time": inits,
            "prediction_timedelta": leads,
            "level": truth["level"],
            "latitude": truth["latitude"],
            "longitude": truth["longitude"],
        },
        attrs={"model_name": "vit-test"},
    )
    ds.to_zarr(out, consolidated=False, encoding={v: {"chunks": (1, 1, *ds[v].shape[2:])} for v in ds.data_vars})
    return out


def assert_same_store(a, b, group=None):
    x, y = xr.open_zarr(a, group=group), xr.open_zarr(b, group=group)
    assert set(x.data_vars) == set(y.data_vars) and x.data_vars
    for name in x.data_vars:
        np.testing.assert_array_equal(x[name].values, y[name].values)


def test_evaluate_on_the_cluster_equals_the_local_scores(source, tmp_path):
    """The CLI end to end: --dask-workers 2 scores in tasks on the cluster's workers, identical numbers."""
    from data_catalog.ingest import ingest
    from flows.cli import main

    truth = ingest(source, tmp_path / "truth.zarr")
    forecast = forecast_store(truth, tmp_path / "forecast.zarr")
    common = [
        "evaluate",
        str(forecast),
        "--truth",
        str(truth),
        "--allow-in-sample-climatology",
        "--regions",
        "global,tropics",
    ]
    assert main([*common, "--out", str(tmp_path / "local.zarr")]) == 0
    assert main([*common, "--out", str(tmp_path / "cluster.zarr"), "--dask-workers", "2"]) == 0
    assert_same_store(tmp_path / "local.zarr", tmp_path / "cluster.zarr")
    scores = xr.open_zarr(tmp_path / "cluster.zarr")
    assert np.isfinite(scores["geopotential"].sel(model="vit-test", metric="acc").values).all()


def test_ingest_on_the_cluster_equals_the_local_ingest(source, client, tmp_path):
    import dask

    from data_catalog.ingest import ingest

    with dask.config.set(scheduler="threads"):  # the client left aside: ingest's own synchronous reads
        local = ingest(source, tmp_path / "local.zarr")
    prefixes = lambda: set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))  # noqa: E731
    seen = prefixes()
    clustered = ingest(source, tmp_path / "cluster.zarr")
    assert any(p.startswith("open_dataset") for p in prefixes() - seen)  # the workers read the source file
    for group in (None, "statistics", "climatology"):
        assert_same_store(local, clustered, group)


def test_scoring_runs_as_tasks_on_the_workers(source, client, tmp_path):
    import dask

    from climate_optics.cluster import current_client
    from climate_optics.evaluation.evaluate_datasets import evaluate
    from climate_optics.evaluation.evaluate_stores import open_forecast, open_truth
    from data_catalog.ingest import ingest

    truth = ingest(source, tmp_path / "truth.zarr")
    forecast = forecast_store(truth, tmp_path / "forecast.zarr")
    assert current_client() is client
    on_cluster = evaluate(open_forecast(forecast), open_truth(truth), metrics=["rmse", "bias"])
    assert "on_worker" in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    with dask.config.set(scheduler="threads"):
        assert current_client() is None
        local = evaluate(open_forecast(forecast), open_truth(truth), metrics=["rmse", "bias"])
    for name in local.data_vars:
        np.testing.assert_array_equal(on_cluster[name].values, local[name].values)


def test_bad_dask_options_exit_2(run_cli, tmp_path, monkeypatch):
    import climate_optics.cluster as cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    status, _, err = run_cli(
        "evaluate",
        tmp_path / "f.zarr",
        "--truth",
        tmp_path / "t.zarr",
        "--out",
        tmp_path / "s.zarr",
        "--dask-workers",
        "2",
        "--dask-address",
        "tcp://127.0.0.1:1",
    )
    assert status == 2 and "give one of them" in err and len(err.strip().splitlines()) == 1
    status, _, err = run_cli(
        "ingest", tmp_path / "nothing.nc", "--out", tmp_path / "o.zarr", "--dask-address", "tcp://127.0.0.1:1"
    )
    assert status == 2 and "no dask scheduler answers" in err and not (tmp_path / "o.zarr").exists()
    for options in (
        ["--dask-address", "tcp://127.0.0.1:1"],
        ["--dask-workers", "0"],
    ):  # the pipeline: before Prefect starts
        status, _, err = run_cli("demo", "--out", tmp_path / "run", *options)
        assert (
            status == 2 and "--dask-" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
        )


def test_pipeline_cluster_serves_only_the_data_steps():
    """dask_cluster (what the pipeline holds for the run) is not dask's default scheduler: training in the
    block stays local; a data step connects with dask_client(address=...) and leaves the default as it was."""
    import dask.array

    from climate_optics.cluster import current_client, dask_client, dask_cluster

    before = current_client()  # another test's client may still be the default: it must stay so
    with dask_cluster(workers=2) as address:
        assert address.startswith("tcp://") and current_client() is before
        assert float(dask.array.ones(4).sum().compute()) == 4.0  # the default scheduler, not the new cluster
        with dask_client(address=address) as client:
            assert current_client() is client and len(client.scheduler_info()["workers"]) == 2
        assert current_client() is before
    with dask_cluster() as address:
        assert address is None
