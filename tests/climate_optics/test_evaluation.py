"""Evaluation: valid-time alignment, baselines, the scores layout, the CLI end to end."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from climate_optics.errors import UsageInputError
from climate_optics.evaluation import baselines
from climate_optics.evaluation.evaluate_datasets import evaluate, forecast_name
from data_catalog.errors import DataInputError

LAT = np.linspace(-78.75, 78.75, 8)
LON = np.arange(16) * 22.5
TIMES = pd.date_range("2020-03-01", periods=12, freq="6h").values.astype("datetime64[ns]")
LEADS = pd.to_timedelta([0, 6, 12], "h").values.astype("timedelta64[ns]")
INITS = TIMES[:8:2]  # every valid time init + lead lies inside TIMES
T2M_BASE = 280.0  # K


def truth_dataset(seed=0):
    """Truth with 2m_temperature = 280 K + time index + noise, temperature on two levels, a land mask."""
    rng = np.random.default_rng(seed)
    n = TIMES.size
    t2m = T2M_BASE + np.arange(n, dtype=float)[:, None, None] + 0.1 * rng.normal(size=(n, LAT.size, LON.size))
    temp = 250 + rng.normal(size=(n, 2, LAT.size, LON.size))
    lsm = (np.arange(LON.size)[None, :] < 8) * np.ones((LAT.size, 1))
    return xr.Dataset(
        {
            "2m_temperature": (("time", "latitude", "longitude"), t2m, {"units": "K"}),
            "temperature": (("time", "level", "latitude", "longitude"), temp, {"units": "K"}),
            "land_sea_mask": (("latitude", "longitude"), lsm, {"units": "1"}),
        },
        coords={"time": TIMES, "level": [500, 850], "latitude": LAT, "longitude": LON},
    )


def forecast_from(truth, error=0.0, members=None):
    """A forecast store: truth at the valid time plus ``error`` (per init if an array)."""
    fields = {}
    for name in ("2m_temperature", "temperature"):
        valid = baselines.verifying_truth(truth[name], INITS, LEADS)
        err = xr.DataArray(np.broadcast_to(error, INITS.shape), dims="time", coords={"time": INITS})
        fields[name] = (valid + err).transpose("time", "prediction_timedelta", ...)
    ds = xr.Dataset(fields)
    if members:
        ds = xr.concat([ds + k for k in np.linspace(-1, 1, members)], dim="realization").transpose(
            "time", "prediction_timedelta", "realization", ...
        )
    return ds.drop_vars([c for c in ds.coords if c not in ds.dims]).assign_attrs(training_backend="optical")


def climatology_of(truth):
    clim = truth[["2m_temperature", "temperature"]].mean("time")
    return clim.expand_dims(hour=[0, 6, 12, 18], dayofyear=np.arange(1, 367))


@pytest.fixture(scope="module")
def truth():
    return truth_dataset()


def test_persistence_is_truth_at_init_verified_at_valid_time(truth):
    t2m = truth["2m_temperature"]
    persisted = baselines.persistence(t2m, INITS, LEADS)
    verifying = baselines.verifying_truth(t2m, INITS, LEADS)
    assert persisted.dims[:2] == ("time", "prediction_timedelta")
    # init index i (0, 2, 4, 6), lead k steps: persistence holds value i, truth i + k
    np.testing.assert_allclose(
        persisted.mean(["latitude", "longitude"]).values - T2M_BASE, [[i] * 3 for i in (0, 2, 4, 6)], atol=0.05
    )
    np.testing.assert_allclose(
        verifying.mean(["latitude", "longitude"]).values - T2M_BASE,
        [[i, i + 1, i + 2] for i in (0, 2, 4, 6)],
        atol=0.05,
    )
    np.testing.assert_array_equal(verifying["time"].values, INITS)

    scores = evaluate(
        forecast_from(truth), truth, metrics=["bias", "rmse"], regions="global", variables=["2m_temperature"]
    )
    s = scores["2m_temperature"].sel(region="global")
    np.testing.assert_allclose(s.sel(model="persistence", metric="bias").values, [0.0, -1.0, -2.0], atol=0.01)
    np.testing.assert_allclose(s.sel(model="vit-optical", metric="rmse").values, 0.0, atol=1e-12)
    with pytest.raises(DataInputError, match="2020-03-04T00:00"):  # init 2020-03-02T12 + 36 h
        baselines.verifying_truth(t2m, INITS, LEADS + np.timedelta64(24, "h"))


def test_scores_layout_time_mean_and_baselines(truth):
    errors = np.array([1.0, 3.0, 1.0, 3.0])  # per init: RMSE is sqrt(mean(1, 9)) = sqrt(5), not 2
    clim = climatology_of(truth)
    scores = evaluate(forecast_from(truth, errors), truth, climatology=clim, regions=["global", "tropics", "land"])
    da = scores["temperature"]
    assert da.dims == ("model", "metric", "region", "lead_time", "level")
    assert list(scores.model.values) == ["vit-optical", "persistence", "climatology"]
    assert list(scores.metric.values) == ["rmse", "bias", "mae", "acc"]
    assert scores.lead_time.dtype.kind == "m" and list(scores.lead_time.values) == list(LEADS)
    rmse = da.sel(model="vit-optical", metric="rmse")
    np.testing.assert_allclose(rmse.values, np.sqrt(5.0), rtol=1e-6)
    np.testing.assert_allclose(da.sel(model="vit-optical", metric="bias").values, 2.0, rtol=1e-6)
    # climatology baseline is the same at every lead (valid times differ, the climatology here does not)
    clim_rmse = da.sel(model="climatology", metric="rmse", region="global")
    assert np.isfinite(clim_rmse.values).all() and np.all(clim_rmse.values > 0.5)
    assert np.isnan(da.sel(model="climatology", metric="acc").values).all()  # a constant forecast has no ACC
    np.testing.assert_allclose(da.sel(model="persistence", metric="acc", lead_time=LEADS[0]).values, 1.0, rtol=1e-6)


def test_ensemble_forecast_and_dask_match_numpy(truth):
    fc = forecast_from(truth, 0.5, members=4)
    kwargs = dict(
        metrics=["crps", "rmse", "spread_skill_ratio"], regions=["global", "europe"], baselines=["persistence"]
    )
    eager = evaluate(fc, truth, **kwargs)
    lazy = evaluate(fc.chunk({"time": 1, "prediction_timedelta": 1}), truth.chunk({"time": 5}), **kwargs)
    xr.testing.assert_allclose(eager, lazy, rtol=1e-10)
    s = eager["2m_temperature"].sel(model="vit-optical")
    np.testing.assert_allclose(s.sel(metric="rmse").values, 0.5, rtol=1e-6)  # deterministic metrics: ensemble mean
    crps_persistence = eager["2m_temperature"].sel(model="persistence", metric="crps")
    mae_free = crps_persistence.sel(lead_time=LEADS[2], region="global")
    assert 1.9 < float(mae_free) < 2.1  # a deterministic baseline's CRPS is its MAE
    assert eager.attrs["ensemble_size"] == 4


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda f, t: (f, t.drop_vars("temperature")), "truth has no variable 'temperature'"),
        (lambda f, t: (f, t.sel(level=[850])), "no level 500"),
        (lambda f, t: (f, t.assign_coords(longitude=t.longitude + 1.0)), "grids differ"),
        (lambda f, t: (f, t.isel(time=slice(0, 8))), "lead 12 h"),
    ],
    ids=["variable", "level", "grid", "lead"],
)
def test_bad_inputs_name_what_is_missing(truth, change, match):
    fc, tr = change(forecast_from(truth), truth)
    with pytest.raises(DataInputError, match=match):
        evaluate(fc, tr, metrics="rmse")


def test_usage_errors(truth):
    fc = forecast_from(truth)
    with pytest.raises(UsageInputError, match="climatology"):
        evaluate(fc, truth, metrics="acc")
    with pytest.raises(UsageInputError, match="rank_histogram"):
        evaluate(fc, truth, metrics="rank_histogram")
    assert forecast_name(fc) == "vit-optical"
    assert forecast_name(fc.assign_attrs(model_name="mine")) == "mine"


@pytest.fixture(scope="module")
def stores(tmp_path_factory, truth):
    root = tmp_path_factory.mktemp("evaluate")
    truth.to_zarr(root / "truth.zarr", consolidated=False)
    climatology_of(truth).chunk({"dayofyear": 61}).to_zarr(
        root / "truth.zarr", group="climatology", mode="a", consolidated=False
    )
    forecast_from(truth, 1.0).chunk({"time": 1, "prediction_timedelta": 1}).to_zarr(
        root / "forecast.zarr", consolidated=False
    )
    return root


def test_cli_end_to_end(run_cli, stores):
    out = stores / "scores.zarr"
    status, stdout, stderr = run_cli(
        "evaluate",
        stores / "forecast.zarr",
        "--truth",
        stores / "truth.zarr",
        "--out",
        out,
        "--metrics",
        "rmse,acc,bias",
        "--regions",
        "global,tropics,land,box=30,60,0,50",
    )
    assert status == 0, stderr
    scores = xr.open_zarr(out)
    assert list(scores.region.values) == ["global", "tropics", "land", "box"]
    assert scores["temperature"].dims == ("model", "metric", "region", "lead_time", "level")
    np.testing.assert_allclose(scores["2m_temperature"].sel(model="vit-optical", metric="rmse").values, 1.0, rtol=1e-6)
    assert scores.attrs["training_backend"] == "optical" and scores.attrs["truth"] == str(stores / "truth.zarr")
    table = (stores / "scores.md").read_text()  # beside the store, not inside it
    assert "## temperature 850 hPa, global" in table and "| vit-optical | rmse | 1 | 1 | 1 |" in table
    pngs = sorted(p.name for p in (stores / "figures" / "scores").glob("*.png"))
    assert pngs == ["skill_2m_temperature.png", "skill_temperature_850.png"]
    assert f"table: {stores / 'scores.md'}" in stdout and f"figure: {stores / 'figures' / 'scores'}" in stdout
    assert not list(out.rglob("*.md")) and not list(out.rglob("*.png"))

    status, _, stderr = run_cli("evaluate", stores / "forecast.zarr", "--truth", stores / "truth.zarr", "--out", out)
    assert status == 2 and "already exists" in stderr


@pytest.mark.parametrize(
    "args, match",
    [
        (["--metrics", "nope"], "unknown metric 'nope'"),
        (["--regions", "atlantis"], "unknown region 'atlantis'"),
        (["--climatology", "missing.zarr"], "climatology store does not exist"),
    ],
)
def test_cli_bad_input_is_status_2_and_writes_nothing(run_cli, stores, args, match):
    out = stores / f"bad-{len(args[1])}.zarr"
    status, _, stderr = run_cli(
        "evaluate", stores / "forecast.zarr", "--truth", stores / "truth.zarr", "--out", out, *args
    )
    assert status == 2
    assert len(stderr.strip().splitlines()) == 1 and match in stderr
    assert not out.exists() and not list(stores.glob(f".{out.name}*"))


def test_cli_refuses_a_table_beside_the_store_that_it_did_not_write(run_cli, stores):
    out, notes = stores / "notes.zarr", stores / "notes.md"
    notes.write_text("my notes\n")
    status, _, stderr = run_cli(
        "evaluate", stores / "forecast.zarr", "--truth", stores / "truth.zarr", "--out", out, "--overwrite"
    )
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"{notes}: is not a scores table this tool wrote" in stderr
    assert notes.read_text() == "my notes\n" and not out.exists() and not list(stores.glob(".notes.*"))
    notes.unlink()


def test_wind_vector_and_weatherbench2_spellings(truth):
    rng = np.random.default_rng(1)
    shape = (TIMES.size, LAT.size, LON.size)
    winds = xr.Dataset(
        {
            n: (("time", "latitude", "longitude"), rng.normal(size=shape))
            for n in ("10m_u_component_of_wind", "10m_v_component_of_wind")
        },
        coords={"time": TIMES, "latitude": LAT, "longitude": LON},
    )
    fc = xr.Dataset({n: baselines.verifying_truth(winds[n], INITS, LEADS[:2]) + 1.0 for n in winds.data_vars})
    fc = fc.rename({"time": "init_time", "prediction_timedelta": "lead_time"}).isel(latitude=slice(None, None, -1))
    scores = evaluate(
        fc.drop_vars("valid_time", errors="ignore"), winds, metrics="rmse", regions="global", baselines="none"
    )
    np.testing.assert_allclose(scores["10m_wind_vector"].values, np.sqrt(2.0), rtol=1e-10)  # |(1, 1)|
    np.testing.assert_allclose(scores["10m_u_component_of_wind"].values, 1.0, rtol=1e-10)
    assert list(scores.model.values) == ["forecast"]


# ----------------------------------------------------------------------------- refusals and out-of-sample climatology


def celsius(fc):
    return fc.assign({"2m_temperature": (fc["2m_temperature"] - 273.15).assign_attrs(units="degC")})


def all_nan(fc):
    return fc.assign({"temperature": fc["temperature"] * np.nan})


@pytest.mark.parametrize(
    "change, kwargs, error, match",
    [
        (celsius, {}, DataInputError, "variable '2m_temperature': forecast units 'degC' differ from the truth's 'K'"),
        (all_nan, {}, DataInputError, "forecast: variable 'temperature': all values are NaN"),
        (lambda f: f, {"variables": ["geopotential"]}, DataInputError, "forecast has no variable 'geopotential'"),
        (
            lambda f: f,
            {"metrics": "rmse,ensemble_spread"},
            UsageInputError,
            "'ensemble_spread' needs an ensemble forecast",
        ),
    ],
    ids=["units", "all-nan", "variable", "metric"],
)
def test_refuses_what_it_cannot_score(truth, change, kwargs, error, match):
    fc = change(forecast_from(truth).assign({k: v.assign_attrs(units="K") for k, v in forecast_from(truth).items()}))
    with pytest.raises(error, match=match):
        evaluate(fc, truth, **kwargs)


def test_ensemble_truth_is_refused(truth):
    members = xr.concat([truth, truth], dim="realization")
    with pytest.raises(DataInputError, match="truth has 2 ensemble members"):
        evaluate(forecast_from(truth), members, metrics="rmse")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, truth):
    """Truth stores written by ingest: climatology over the whole record and over the times after the last init."""
    from data_catalog.ingest import write_store

    root = tmp_path_factory.mktemp("ingested")
    whole = write_store(truth, root / "whole.zarr", source="truth")
    later = write_store(truth, root / "later.zarr", source="truth", climatology_period="2020-03-02T18/2020-03-03T18")
    forecast = root / "forecast.zarr"
    forecast_from(truth, 1.0).drop_vars("temperature").chunk({"time": 1, "prediction_timedelta": 1}).to_zarr(
        forecast, consolidated=False
    )
    return {"whole": whole, "later": later, "forecast": forecast, "root": root}


def test_in_sample_climatology_is_refused_naming_both_periods(run_cli, ingested):
    out = ingested["root"] / "in-sample.zarr"
    status, _, stderr = run_cli("evaluate", ingested["forecast"], "--truth", ingested["whole"], "--out", out)
    assert status == 2 and len(stderr.strip().splitlines()) == 1
    assert "period 2020-03-01T00:00:00..2020-03-03T18:00:00 overlaps the forecast's init times" in stderr
    assert "2020-03-01T00:00..2020-03-02T12:00" in stderr and not out.exists()

    status, _, stderr = run_cli(
        "evaluate", ingested["forecast"], "--truth", ingested["whole"], "--out", out, "--allow-in-sample-climatology"
    )
    assert status == 0, stderr
    attrs = xr.open_zarr(out).attrs
    assert (
        attrs["climatology_period"] == "2020-03-01T00:00:00/2020-03-03T18:00:00" and attrs["climatology_in_sample"] == 1
    )


def test_out_of_sample_climatology_is_recorded_and_skips_named(run_cli, ingested):
    out = ingested["root"] / "out-of-sample.zarr"
    status, _, stderr = run_cli("evaluate", ingested["forecast"], "--truth", ingested["later"], "--out", out)
    assert status == 0, stderr
    assert "not scored: temperature (truth: not in the forecast)" in stderr
    scores = xr.open_zarr(out)
    assert scores.attrs["climatology_period"] == "2020-03-02T18:00:00/2020-03-03T18:00:00"
    assert scores.attrs["climatology_in_sample"] == 0
    assert "acc" in scores.metric.values and "climatology" in scores.model.values
    assert np.isfinite(scores["2m_temperature"].sel(model="climatology", metric="rmse").values).all()


def test_ensemble_forecast_store_gets_the_ensemble_metrics(run_cli, ingested, truth):
    store = ingested["root"] / "ensemble.zarr"
    forecast_from(truth, 0.5, members=4).chunk({"time": 1, "prediction_timedelta": 1}).to_zarr(
        store, consolidated=False
    )
    out = ingested["root"] / "ensemble-scores.zarr"
    status, _, stderr = run_cli("evaluate", store, "--truth", ingested["later"], "--out", out)
    assert status == 0, stderr
    scores = xr.open_zarr(out)
    assert {"crps", "ensemble_mean_rmse", "ensemble_spread", "spread_skill_ratio"} <= set(scores.metric.values)
    assert scores.attrs["ensemble_size"] == 4
    t2m = scores["2m_temperature"].sel(model="vit-optical", region="global")
    # members truth + 0.5 + (-1, -1/3, 1/3, 1): unbiased spread sqrt(20/27), ensemble-mean error 0.5
    np.testing.assert_allclose(t2m.sel(metric="ensemble_spread").values, np.sqrt(20 / 27), rtol=1e-5)
    np.testing.assert_allclose(t2m.sel(metric="ensemble_mean_rmse").values, 0.5, rtol=1e-5)
    # CRPS = mean|x - y| - mean|x - x'| / 2 over members x (fair estimator: M (M - 1) pairs)
    members = 0.5 + np.linspace(-1, 1, 4)
    fair = np.abs(members).mean() - np.abs(members[:, None] - members[None]).sum() / (2 * 4 * 3)
    np.testing.assert_allclose(t2m.sel(metric="crps").values, fair, rtol=1e-5)


def test_scores_store_is_cf_with_metric_units_and_absolute_provenance(run_cli, ingested, monkeypatch):
    pytest.importorskip("cf_xarray", reason="the CF checks use cf_xarray (dev extra)")
    root = ingested["root"]
    monkeypatch.chdir(root)
    status, _, stderr = run_cli(
        "evaluate",
        "forecast.zarr",
        "--truth",
        "later.zarr",
        "--out",
        "cf-scores.zarr",
        "--metrics",
        "rmse,mse,acc,bias",
    )
    assert status == 0, stderr
    scores = xr.open_zarr(root / "cf-scores.zarr")
    assert scores.attrs["Conventions"].startswith("CF-")
    assert scores.cf.standard_names["forecast_period"] == ["lead_time"]
    t2m = scores["2m_temperature"]
    assert "units" not in t2m.attrs  # mixed metrics: no single physical unit
    assert t2m.attrs["metric_units"] == "rmse: K; mse: (K)2; acc: 1; bias: K"
    for coord in ("model", "metric", "region", "lead_time"):
        assert scores[coord].attrs["long_name"], coord
    assert scores.attrs["truth"] == str(root / "later.zarr") and scores.attrs["source_dataset"] == str(
        root / "forecast.zarr"
    )
