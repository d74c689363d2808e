"""The blockwise engine's in-memory path gives exactly what ``xarray.apply_ufunc`` gives (its dask path).

Numpy inputs skip apply_ufunc's per-call machinery; these compare the two results identically
(values, dims, coordinates, indexes, name) on the layouts scoring produces, and check that what
only xarray decides (unequal indexes, conflicting sizes) still goes through xarray.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from climate_optics.evaluation import metrics as m
from climate_optics.evaluation.regions import resolve_regions
from climate_optics.evaluation.spatial import AreaMean, apply_kernel

LAT = np.linspace(-78.75, 78.75, 8)
LON = np.arange(16) * 22.5
INITS = pd.date_range("2020-01-01", periods=3, freq="12h")
LEADS = pd.to_timedelta([6, 24], "h")


def forecast(seed=0, members=None):
    """(time, prediction_timedelta, level, latitude, longitude[, realization]) with a scalar and a non-index coordinate."""
    rng = np.random.default_rng(seed)
    dims = ["time", "prediction_timedelta", "level", "latitude", "longitude"] + (["realization"] if members else [])
    shape = [3, 2, 2, 8, 16] + ([members] if members else [])
    coords = {
        "time": INITS,
        "prediction_timedelta": LEADS,
        "level": [500, 850],
        "latitude": LAT,
        "longitude": LON,
        "valid_time": (("time", "prediction_timedelta"), INITS.values[:, None] + LEADS.values[None, :]),
        "source": "test",
    }
    out = xr.DataArray(rng.normal(size=shape), dims=dims, coords=coords, name="temperature", attrs={"units": "K"})
    out["latitude"].attrs = {"units": "degrees_north"}
    return out


def truth(seed=1):
    """(time, level, latitude, longitude), dims in another order than the forecast's."""
    rng = np.random.default_rng(seed)
    return xr.DataArray(
        rng.normal(size=(2, 3, 16, 8)),
        dims=("level", "time", "longitude", "latitude"),
        coords={"time": INITS, "level": [500, 850], "latitude": LAT, "longitude": LON},
        name="temperature",
        attrs={"units": "kelvin", "source": "truth"},
    )


def both_paths(fn, *arrays, **kwargs):
    """fn on numpy inputs (the in-memory path) and on dask inputs (apply_ufunc), computed."""
    fast = fn(*arrays, **kwargs)
    lazy = fn(*(a.chunk() for a in arrays), **kwargs)
    assert lazy.chunks is not None
    return fast, lazy.compute()


@pytest.mark.parametrize("metric", ["rmse", "bias", "acc", "crps", "spread_skill_ratio", "rank_histogram"])
def test_in_memory_equals_apply_ufunc(metric):
    members = 5 if metric in ("crps", "spread_skill_ratio", "rank_histogram") else None
    f, t = forecast(members=members), truth()
    kwargs = {"region": ["global", "tropics", "europe"]}
    if metric == "acc":
        kwargs["climatology"] = xr.zeros_like(t)
    fast, reference = both_paths(getattr(m, metric), f, t, **kwargs)
    xr.testing.assert_identical(fast, reference)
    assert list(fast.indexes["region"]) == ["global", "tropics", "europe"] and "valid_time" in fast.coords


@pytest.mark.parametrize("keep_attrs", ["default", False])
@pytest.mark.parametrize("case", ["scalar level", "other name", "no coordinates"])
def test_engine_broadcasts_and_merges_coordinates_as_xarray_does(case, keep_attrs):
    f = forecast()
    t = {
        "scalar level": truth().isel(level=0),  # conflicts with the forecast's level dim: xarray decides
        "other name": truth().rename("other"),
        "no coordinates": truth().drop_vars(["time", "level"]),
    }[case]
    area = AreaMean.build(LAT, LON, resolve_regions(["global", "tropics"]))

    def kernel(a, b):  # (..., lat, lon) twice -> (..., 2, lat, lon)
        return np.stack(np.broadcast_arrays(a - b, a * b), axis=-3)

    def run(x, y):
        return apply_kernel(kernel, [(x, ["latitude", "longitude"]), (y, ["latitude", "longitude"])], 2, area)

    with xr.set_options(keep_attrs=keep_attrs):  # names and attributes follow xarray's option
        fast, reference = run(f, t), run(f.chunk(), t.chunk()).compute()
    xr.testing.assert_identical(fast, reference)
    assert fast.dims[-2:] == ("_stat", "region")


def test_unequal_indexes_still_fail_as_in_xarray():
    f, t = forecast(), truth()
    shifted = t.assign_coords(time=t["time"] + pd.Timedelta("6h"))
    with pytest.raises(ValueError, match="cannot align|indexes along dimension"):
        m.rmse(f, shifted)
    with pytest.raises(ValueError, match="cannot align|indexes along dimension"):
        m.rmse(f.chunk(), shifted.chunk()).compute()


def test_area_weights_are_shared_and_read_only():
    regions = resolve_regions(["global", "tropics"])
    a, b = AreaMean.build(LAT, LON, regions), AreaMean.build(LAT.copy(), LON.copy(), regions)
    assert a is b and not a.weights.flags.writeable
    other = AreaMean.build(LAT + 0.5, LON, regions)
    assert other is not a and not np.array_equal(other.weights, a.weights)


def test_metrics_scored_together_equal_each_alone():
    """One pass shares the forecast error among rmse, bias and mae; each alone computes its own."""
    from climate_optics.evaluation.metrics import joint_statistics

    f, t = forecast(members=3), truth()
    area = AreaMean.build(LAT, LON, resolve_regions(["global", "tropics"]))
    metrics = [m.make_metric(name) for name in ("rmse", "bias", "mae", "crps", "ensemble_spread")]
    together = joint_statistics(metrics, f, t, area)
    for metric, stats in zip(metrics, together):
        (alone,) = joint_statistics([metric], f, t, area)
        for name in stats:
            np.testing.assert_array_equal(stats[name].values, alone[name].values)
    error = (f.mean("realization") - t).transpose(*f.dims[:-1])
    expected = np.tensordot(error.values, area.weights, axes=([-2, -1], [1, 2]))  # (time, lead, level, region)
    np.testing.assert_allclose(
        together[1]["bias"].transpose("time", "prediction_timedelta", "level", "region").values, expected, rtol=1e-12
    )
