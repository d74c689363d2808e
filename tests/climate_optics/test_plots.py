"""Skill figures label each metric with the units the scores store records, not a guess."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from climate_optics.evaluation.evaluate_datasets import describe
from climate_optics.plots import recorded_units, skill_curves

METRICS = ["rmse", "mse", "acc", "bias", "crps"]


@pytest.fixture
def scores():
    """A scores dataset described as evaluate describes it, for a forecast in K and one without units."""
    lead = np.array([6, 12, 24], dtype="timedelta64[h]").astype("timedelta64[ns]")
    values = np.random.default_rng(0).random((2, len(METRICS), 1, lead.size))
    dims = ("model", "metric", "region", "lead_time")
    coords = {"model": ["vit-optical", "persistence"], "metric": METRICS, "region": ["global"], "lead_time": lead}
    scores = xr.Dataset({"2m_temperature": (dims, values), "mystery": (dims, values)}, coords=coords)
    forecast = xr.Dataset({"2m_temperature": ("x", [1.0], {"units": "K"}), "mystery": ("x", [1.0])})
    return describe(scores, forecast)


def test_recorded_units_per_metric(scores):
    attrs = scores["2m_temperature"].attrs
    assert [recorded_units(attrs, m) for m in METRICS] == ["K", "(K)2", "", "K", "K"]
    assert [recorded_units(scores["mystery"].attrs, m) for m in METRICS] == ["", "", "", "", ""]  # unknown: no label


@pytest.mark.parametrize(
    "metric, label", [("rmse", "rmse [K]"), ("mse", "mse [(K)2]"), ("acc", "acc"), ("crps", "crps [K]")]
)
def test_skill_curves_label_the_recorded_units(scores, metric, label):
    import matplotlib.pyplot as plt

    fig = skill_curves(scores, ["2m_temperature", "mystery"], metric=metric)
    try:
        assert [ax.get_ylabel() for ax in fig.axes] == [label, metric]
    finally:
        plt.close(fig)


def test_report_tables_carry_the_recorded_units(scores, tmp_path):
    from climate_optics.report import headline_lines, skill_rows

    scores.to_zarr(tmp_path / "scores.zarr")
    rows = skill_rows(tmp_path / "scores.zarr")
    assert {row["variable"] for row in rows} == {"2m_temperature [K]"}  # the headline variable
    assert " K (" in headline_lines(tmp_path / "scores.zarr")[1]
    assert {row["variable"] for row in skill_rows(tmp_path / "scores.zarr", metric="acc")} == {"2m_temperature"}
