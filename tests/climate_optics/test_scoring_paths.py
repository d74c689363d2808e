"""The fast scoring paths give the scores of the plain path: batches of init times, truth and
climatology read once into memory, stores opened without dask (two ways of computing the same thing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from climate_optics.evaluation import evaluate_datasets as evaluation
from climate_optics.evaluation import scoring

LAT = np.linspace(-78.75, 78.75, 8)
LON = np.arange(16) * 22.5
TIMES = pd.date_range("2020-03-01", periods=24, freq="6h").values.astype("datetime64[ns]")
LEADS = pd.to_timedelta([6, 12], "h").values.astype("timedelta64[ns]")
INITS = TIMES[:18:2]


def stores():
    rng = np.random.default_rng(1)
    shape = (TIMES.size, 2, LAT.size, LON.size)
    truth = xr.Dataset(
        {
            "temperature": (("time", "level", "latitude", "longitude"), 250 + rng.normal(size=shape), {"units": "K"}),
            "u_component_of_wind": (
                ("time", "level", "latitude", "longitude"),
                rng.normal(size=shape),
                {"units": "m s-1"},
            ),
            "v_component_of_wind": (
                ("time", "level", "latitude", "longitude"),
                rng.normal(size=shape),
                {"units": "m s-1"},
            ),
        },
        coords={"time": TIMES, "level": [500, 850], "latitude": LAT, "longitude": LON},
    )
    fields = {}
    for name, da in truth.data_vars.items():
        valid = np.stack([da.sel(time=INITS + lead).values for lead in LEADS], axis=1)
        fields[name] = (
            ("time", "prediction_timedelta", "level", "latitude", "longitude"),
            valid + rng.normal(scale=0.5, size=valid.shape),
            {"units": da.attrs["units"]},
        )
    forecast = xr.Dataset(
        fields,
        coords={"time": INITS, "prediction_timedelta": LEADS, "level": [500, 850], "latitude": LAT, "longitude": LON},
        attrs={"model_name": "vit-test"},
    )
    clim = truth.mean("time").expand_dims(hour=[0, 6, 12, 18], dayofyear=np.arange(1, 367))
    return forecast, truth, clim


def score(forecast, truth, clim):
    return evaluation.evaluate(
        forecast,
        truth,
        climatology=clim,
        metrics=["rmse", "bias", "acc"],
        regions=["global", "tropics"],
        allow_in_sample_climatology=True,
    )


@pytest.fixture(scope="module")
def plain():
    """Every input dask-backed in one chunk per init time, truth and climatology left lazy, one batch."""
    forecast, truth, clim = stores()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scoring, "IN_MEMORY_BYTES", 0)
        return score(
            forecast.chunk({"time": 1, "prediction_timedelta": 1}),
            truth.chunk({"time": 4}),
            clim.chunk({"dayofyear": 30}),
        )


FIELD_BYTES = 2 * LAT.size * LON.size * 8  # one (init, lead) field of a two-level float64 variable


@pytest.mark.parametrize(
    "batch_bytes, n_batches", [(3 * LEADS.size * FIELD_BYTES, 3), (FIELD_BYTES, INITS.size * LEADS.size)]
)
def test_batches_and_memory_paths_agree_with_the_plain_path(plain, monkeypatch, batch_bytes, n_batches):
    """3 batches of 3 init times and every lead; then one (init, lead) field per batch."""
    forecast, truth, clim = stores()
    monkeypatch.setattr(scoring, "BATCH_BYTES", batch_bytes)
    assert len(scoring.batches(forecast["temperature"])) == n_batches
    batched = score(forecast, truth, clim)  # numpy inputs: truth and climatology subsets in memory
    assert set(batched.data_vars) == {"temperature", "u_component_of_wind", "v_component_of_wind", "wind_vector"}
    for name in batched.data_vars:
        assert batched[name].dims == plain[name].dims
        np.testing.assert_allclose(batched[name].values, plain[name].values, rtol=1e-10, equal_nan=True)
    assert np.isfinite(batched["temperature"].sel(metric="acc", model="vit-test").values).all()
    assert np.isnan(batched["temperature"].sel(metric="acc", model="climatology").values).all()  # undefined, as before


def test_stores_opened_without_dask_score_the_same(plain, tmp_path):
    from climate_optics.evaluation.evaluate_stores import open_forecast

    forecast, truth, clim = stores()
    enc = {v: {"chunks": (1, 1, 2, LAT.size, LON.size)} for v in forecast.data_vars}
    forecast.to_zarr(tmp_path / "forecast.zarr", encoding=enc, consolidated=False)
    opened = open_forecast(tmp_path / "forecast.zarr")
    assert all(opened[v].chunks is None for v in opened.data_vars)  # lazily indexed, no dask graph
    scores = score(opened, truth, clim)
    for name in scores.data_vars:
        np.testing.assert_allclose(scores[name].values, plain[name].values, rtol=1e-10, equal_nan=True)
