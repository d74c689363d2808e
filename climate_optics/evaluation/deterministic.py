"""Deterministic metrics: MSE, RMSE, bias, MAE, ACC and the wind-vector errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from climate_optics.errors import UsageInputError
from climate_optics.evaluation.metric_base import DET, Metric, is_dataset, one_stat
from climate_optics.evaluation.spatial import STAT, apply_kernel
from data_catalog.errors import DataInputError
from data_catalog.schema import REALIZATION


@dataclass
class MSE(Metric):
    """Mean squared error."""

    name: ClassVar[str] = "mse"
    stats: ClassVar[tuple[str, ...]] = ("mse",)
    error_only: ClassVar[bool] = True

    def pointwise(self, f, t, c):
        return self.of_error(np.subtract(f, t))

    def of_error(self, d):
        return one_stat(np.multiply(d, d))


@dataclass
class RMSE(MSE):
    """Root mean squared error; the square root is taken after the time mean (WeatherBench 2)."""

    name: ClassVar[str] = "rmse"

    def finalize(self, stats):
        return np.sqrt(stats["mse"])


@dataclass
class RMSESqrtBeforeTimeMean(MSE):
    """RMSE with the square root taken at each time, before any time mean."""

    name: ClassVar[str] = "rmse_sqrt_before_time_avg"

    def per_time(self, stats):
        return {"rmse": np.sqrt(stats["mse"])}


@dataclass
class Bias(Metric):
    """Mean error, forecast minus truth."""

    name: ClassVar[str] = "bias"
    stats: ClassVar[tuple[str, ...]] = ("bias",)
    error_only: ClassVar[bool] = True

    def pointwise(self, f, t, c):
        return self.of_error(np.subtract(f, t))

    def of_error(self, d):
        return one_stat(d)


@dataclass
class MAE(Metric):
    """Mean absolute error."""

    name: ClassVar[str] = "mae"
    stats: ClassVar[tuple[str, ...]] = ("mae",)
    error_only: ClassVar[bool] = True

    def pointwise(self, f, t, c):
        return self.of_error(np.subtract(f, t))

    def of_error(self, d):
        return one_stat(np.abs(d))


@dataclass
class ACC(Metric):
    """Anomaly correlation coefficient, WeatherBench 2's uncentred form.

    ACC = mean(f' t') / sqrt(mean(f'^2) mean(t'^2)) with anomalies f' = f - c, t' = t - c
    against the climatology c at each valid time; the time mean averages ACC itself. With
    ``spatial=True`` the means run over time per grid point (temporal anomaly correlation).

    ``climatology``: a WeatherBench 2 climatology (``dayofyear``[, ``hour``] dims; a Dataset
    holding the variable or a DataArray), or one already aligned with the forecast.
    """

    name: ClassVar[str] = "acc"
    stats: ClassVar[tuple[str, ...]] = ("ft", "ff", "tt")
    needs_climatology: ClassVar[bool] = True
    climatology: Any = None

    def __post_init__(self) -> None:
        if self.climatology is None:
            raise UsageInputError("acc needs a climatology (a WeatherBench 2 climatology with dayofyear/hour dims)")

    def pointwise(self, f, t, c):
        fa, ta = np.broadcast_arrays(np.subtract(f, c), np.subtract(t, c))
        return np.stack([fa * ta, fa * fa, ta * ta], axis=-3)  # (..., 3, Y, X)

    def per_time(self, stats):
        return stats if self.spatial else {"acc": _acc(stats)}

    def finalize(self, stats):
        return stats["acc"] if "acc" in stats else _acc(stats)


def _acc(stats):
    norm = np.sqrt(stats["ff"] * stats["tt"])
    return stats["ft"] / norm.where(norm > 0)  # a constant forecast (e.g. climatology) has no ACC: NaN


@dataclass
class WindVectorMSE(Metric):
    """Mean squared error of the wind vector |(u, v)_forecast - (u, v)_truth|^2; takes Datasets."""

    name: ClassVar[str] = "mse"
    stats: ClassVar[tuple[str, ...]] = ("mse",)
    takes_datasets: ClassVar[bool] = True
    u_name: str = "u_component_of_wind"
    v_name: str = "v_component_of_wind"

    def statistics(self, forecast, truth, area):
        names = (self.u_name, self.v_name)
        for ds, role in ((forecast, "forecast"), (truth, "truth")):
            if not is_dataset(ds) or any(n not in ds.data_vars for n in names):
                raise DataInputError(f"wind vector metrics need a {role} Dataset holding {names[0]!r} and {names[1]!r}")
        fu, fv = (forecast[n].mean(REALIZATION) if REALIZATION in forecast[n].dims else forecast[n] for n in names)

        def kernel(fu, fv, tu, tv):
            du, dv = np.subtract(fu, tu), np.subtract(fv, tv)
            return one_stat(du * du + dv * dv)

        out = apply_kernel(kernel, [(fu, DET), (fv, DET), (truth[names[0]], DET), (truth[names[1]], DET)], 1, area)
        return {"mse": out.isel({STAT: 0}, drop=True)}


@dataclass
class WindVectorRMSE(WindVectorMSE):
    """Root mean squared error of the wind vector, square root after the time mean."""

    name: ClassVar[str] = "rmse"

    def finalize(self, stats):
        return np.sqrt(stats["mse"])
