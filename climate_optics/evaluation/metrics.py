"""Skill scores in the WeatherBench 2 conventions: the metric registry and function shortcuts.

Every metric is a small dataclass (``metric_base.Metric``; deterministic metrics in
``deterministic.py``, ensemble metrics in ``ensemble.py``) listed in ``METRICS`` below;
``make_metric(name)`` builds one by name. The function shortcuts (``rmse(forecast, truth,
**options)``) return one value per time, lead time and level (``Metric.compute_chunk``);
``Metric.compute`` averages over time the WeatherBench 2 way. ``climate_optics.metrics``
re-exports this module.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from climate_optics.errors import UsageInputError
from climate_optics.evaluation.deterministic import (
    ACC,
    MAE,
    MSE,
    RMSE,
    Bias,
    RMSESqrtBeforeTimeMean,
    WindVectorMSE,
    WindVectorRMSE,
)
from climate_optics.evaluation.ensemble import (
    CRPS,
    EnsembleMeanRMSE,
    EnsembleSpread,
    RankHistogram,
    SpreadSkillRatio,
    StandardCRPS,
    crps_pointwise,
)
from climate_optics.evaluation.metric_base import Metric, joint_statistics
from climate_optics.evaluation.spatial import AreaMean
from climate_optics.evaluation.spectrum import ZonalEnergySpectrum
from climate_optics.evaluation.weights import lat_weights

__all__ = [
    "Metric",
    "MSE",
    "RMSE",
    "RMSESqrtBeforeTimeMean",
    "Bias",
    "MAE",
    "ACC",
    "WindVectorMSE",
    "WindVectorRMSE",
    "EnsembleMeanRMSE",
    "EnsembleSpread",
    "SpreadSkillRatio",
    "CRPS",
    "StandardCRPS",
    "RankHistogram",
    "ZonalEnergySpectrum",
    "METRICS",
    "make_metric",
    "joint_statistics",
    "crps_pointwise",
    "lat_weights",
    "AreaMean",
    "rmse",
    "mse",
    "bias",
    "mae",
    "acc",
    "crps",
    "spread_skill_ratio",
    "ensemble_mean_rmse",
    "ensemble_spread",
    "wind_vector_rmse",
    "rank_histogram",
    "rmse_sqrt_before_time_mean",
    "zonal_energy_spectrum",
]

METRICS: dict[str, type[Metric]] = {
    cls.name: cls
    for cls in (
        MSE,
        RMSE,
        RMSESqrtBeforeTimeMean,
        Bias,
        MAE,
        ACC,
        EnsembleMeanRMSE,
        EnsembleSpread,
        SpreadSkillRatio,
        CRPS,
        StandardCRPS,
        RankHistogram,
    )
}


def make_metric(name: str, **settings: Any) -> Metric:
    """A metric by registry name; unknown names and settings list the valid ones."""
    if name not in METRICS:
        raise UsageInputError(f"unknown metric {name!r}; available: {', '.join(METRICS)}")
    cls = METRICS[name]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UsageInputError(f"metric {name!r} has no setting {unknown[0]!r}; settings: {', '.join(sorted(known))}")
    return cls(**settings)


_CALL_OPTIONS = ("region", "land_sea_mask")


def _shortcut(cls: type[Metric], forecast: Any, truth: Any, options: dict[str, Any]) -> Any:
    call = {k: options.pop(k) for k in _CALL_OPTIONS if k in options}
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageInputError(
            f"{cls.name}: unknown option {unknown[0]!r}; options: {', '.join(sorted(known | set(_CALL_OPTIONS)))}"
        )
    return cls(**options).compute_chunk(forecast, truth, **call)


def mse(forecast, truth, **options):
    """Area-weighted mean squared error at each time. Options: region, land_sea_mask, spatial."""
    return _shortcut(MSE, forecast, truth, options)


def rmse(forecast, truth, **options):
    """Area-weighted RMSE at each time (``RMSE().compute`` takes the sqrt after the time mean)."""
    return _shortcut(RMSE, forecast, truth, options)


def rmse_sqrt_before_time_mean(forecast, truth, **options):
    """RMSE at each time; its ``compute`` averages these square roots over time."""
    return _shortcut(RMSESqrtBeforeTimeMean, forecast, truth, options)


def bias(forecast, truth, **options):
    """Area-weighted mean of forecast - truth at each time."""
    return _shortcut(Bias, forecast, truth, options)


def mae(forecast, truth, **options):
    """Area-weighted mean absolute error at each time."""
    return _shortcut(MAE, forecast, truth, options)


def acc(forecast, truth, **options):
    """Uncentred anomaly correlation at each time; needs ``climatology=``."""
    return _shortcut(ACC, forecast, truth, options)


def crps(forecast, truth, **options):
    """Ensemble CRPS (``fair=True`` unbiased, ``fair=False`` standard) at each time."""
    return _shortcut(CRPS, forecast, truth, options)


def ensemble_mean_rmse(forecast, truth, **options):
    """RMSE of the ensemble mean at each time."""
    return _shortcut(EnsembleMeanRMSE, forecast, truth, options)


def ensemble_spread(forecast, truth, **options):
    """Square root of the area-mean ensemble variance at each time."""
    return _shortcut(EnsembleSpread, forecast, truth, options)


def spread_skill_ratio(forecast, truth, **options):
    """Ensemble spread / RMSE of the ensemble mean at each time."""
    return _shortcut(SpreadSkillRatio, forecast, truth, options)


def rank_histogram(forecast, truth, **options):
    """Area fraction of each rank of the truth among the members (``bin`` dimension)."""
    return _shortcut(RankHistogram, forecast, truth, options)


def wind_vector_rmse(forecast, truth, **options):
    """RMSE of the wind vector from Datasets holding ``u_name`` and ``v_name`` (defaults: pressure-level wind)."""
    return _shortcut(WindVectorRMSE, forecast, truth, options)


def zonal_energy_spectrum(data, **options):
    """Zonal energy spectrum of a field (DataArray or Dataset) per latitude; see ``ZonalEnergySpectrum``."""
    return ZonalEnergySpectrum(**options).compute(data)
