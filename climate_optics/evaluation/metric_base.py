"""The metric base class and the engine that computes several metrics in one pass.

Skill scores follow the WeatherBench 2 conventions: one small dataclass per metric
(deterministic ones in ``deterministic.py``, ensemble ones in ``ensemble.py``).

Every metric works in two steps, the way WeatherBench 2 averages over time:

1. ``statistics(forecast, truth, area)`` -> ``{name: DataArray}``: per-time statistics,
   area-weighted over (latitude, longitude) for each region (or per grid point when
   ``spatial=True``), keeping every other dimension (time, lead time, level).
2. ``finalize(stats)`` turns (time-averaged) statistics into the score, e.g. RMSE is the
   square root of the time-mean MSE.

``metric.compute_chunk`` applies both steps without a time mean; ``metric.compute`` takes
the time mean in between. The function shortcuts (``rmse(forecast, truth, **options)``)
call ``compute_chunk``: one value per time, lead time and level. Ensembles sit on a
``realization`` dimension; a forecast without it is a one-member ensemble.

All computations are blockwise (``xarray.apply_ufunc`` with ``dask="parallelized"``): dask
inputs stay lazy, numpy inputs are computed at once, with identical results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from climate_optics.errors import UsageInputError
from climate_optics.evaluation.baselines import climatology_like
from climate_optics.evaluation.regions import resolve_regions
from climate_optics.evaluation.spatial import LAT_LON, REGION, STAT, AreaMean, apply_kernel, stack_broadcast
from data_catalog.errors import DataInputError
from data_catalog.schema import LATITUDE, LONGITUDE, REALIZATION

DET = list(LAT_LON)
ENS = [*LAT_LON, REALIZATION]


def members_view(forecast: "xr.DataArray") -> "xr.DataArray":
    """An ensemble view: a deterministic forecast is a one-member ensemble."""
    return forecast if REALIZATION in forecast.dims else forecast.expand_dims(REALIZATION, axis=-1)


def is_dataset(obj: Any) -> bool:
    return hasattr(obj, "data_vars")


@dataclass
class Metric:
    """Base class. Settings are dataclass fields; a metric overrides ``pointwise``.

    ``pointwise(f, t, c)`` is a numpy kernel on one block: f (..., lat, lon), or
    (..., lat, lon, M) for ensemble metrics; t and the climatology c (..., lat, lon).
    It returns ``len(stats)`` statistics stacked as (..., S, lat, lon); the engine takes
    their area mean. ``per_time`` then runs before the time mean, ``finalize`` after it.

    ``spatial``: per-grid-point variant; the area mean (and any region) is skipped.
    """

    name: ClassVar[str] = ""
    stats: ClassVar[tuple[str, ...]] = ("value",)
    ensemble: ClassVar[bool] = False  # pointwise gets the members; otherwise the ensemble mean
    needs_climatology: ClassVar[bool] = False
    takes_datasets: ClassVar[bool] = False  # statistics() reads several variables of a Dataset
    error_only: ClassVar[bool] = (
        False  # pointwise depends on f - t alone: of_error(d) takes it, computed once per block
    )
    spatial: bool = False

    def pointwise(self, f: np.ndarray, t: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def of_error(self, d: np.ndarray) -> np.ndarray:
        """``pointwise`` from the error d = f - t (..., lat, lon), for ``error_only`` metrics; d is shared: not modified."""
        raise NotImplementedError

    def __dask_tokenize__(self) -> tuple:
        """Settings only: data (such as a climatology) reaches kernels as inputs, not through the metric."""
        return (
            type(self).__name__,
            *((f.name, repr(getattr(self, f.name))) for f in fields(self) if f.name != "climatology"),
        )

    def per_time(self, stats: dict[str, "xr.DataArray"]) -> dict[str, "xr.DataArray"]:
        return stats

    def finalize(self, stats: Mapping[str, "xr.DataArray"]) -> "xr.DataArray":
        (value,) = stats.values()
        return value

    def statistics(self, forecast: Any, truth: Any, area: AreaMean | None) -> dict[str, "xr.DataArray"]:
        """Per-time statistics (area means unless ``spatial``) whose time mean ``finalize`` takes."""
        return joint_statistics([self], forecast, truth, area)[0]

    # -- both steps, per DataArray or per Dataset variable
    def compute_chunk(self, forecast: Any, truth: Any, region: Any = None, land_sea_mask: Any = None) -> Any:
        """The score at every time (no time mean), over one region or several (``region`` dim)."""
        return self._per_variable(forecast, truth, lambda f, t: self.finalize(self._stats(f, t, region, land_sea_mask)))

    def compute(
        self, forecast: Any, truth: Any, region: Any = None, land_sea_mask: Any = None, time_dim: str = "time"
    ) -> Any:
        """The score averaged over ``time_dim`` the WeatherBench 2 way (e.g. sqrt after the mean for RMSE)."""

        def one(f, t):
            stats = self._stats(f, t, region, land_sea_mask)
            return self.finalize(
                {k: v.mean(time_dim, skipna=False) if time_dim in v.dims else v for k, v in stats.items()}
            )

        return self._per_variable(forecast, truth, one)

    def _stats(self, forecast, truth, region, land_sea_mask):
        area, squeeze = area_for(forecast, region, land_sea_mask, self.spatial)
        stats = self.statistics(forecast, truth, area)
        return {k: v.squeeze(REGION, drop=True) if squeeze and REGION in v.dims else v for k, v in stats.items()}

    def _per_variable(self, forecast, truth, fn):
        if not is_dataset(forecast) or self.takes_datasets:
            return fn(forecast, truth)

        missing = [v for v in forecast.data_vars if v not in truth.data_vars]
        if missing:
            raise DataInputError(
                f"truth has no variable {missing[0]!r} (truth variables: {', '.join(map(str, truth.data_vars))})"
            )
        return xr.Dataset({v: fn(forecast[v], truth[v]) for v in forecast.data_vars})


def area_for(forecast, region, land_sea_mask, spatial: bool) -> tuple[AreaMean | None, bool]:
    if spatial:
        return None, False
    if isinstance(region, AreaMean):
        return region, False
    regions = resolve_regions(region)
    squeeze = len(regions) == 1 and not isinstance(region, (list, tuple, Mapping))
    return AreaMean.build(forecast[LATITUDE], forecast[LONGITUDE], regions, land_sea_mask), squeeze


def joint_statistics(
    metrics: list[Metric], forecast: "xr.DataArray", truth: "xr.DataArray", area: AreaMean | None
) -> list[dict]:
    """Statistics of several metrics from one pass over the data (one task per block).

    Deterministic metrics see the ensemble mean of an ensemble forecast. All metrics must
    agree on ``spatial``. Returns one ``{stat: DataArray}`` per metric, after ``per_time``.
    """
    if len({m.spatial for m in metrics}) > 1:
        raise UsageInputError("joint_statistics: metrics must all be spatial or all area-averaged")
    members = members_view(forecast)
    inputs = [(members, ENS), (truth, DET)]
    clim_metric = next((m for m in metrics if m.needs_climatology), None)
    if clim_metric is not None:
        inputs.append((climatology_like(clim_metric.climatology, forecast), DET))
    kernel = _JointKernel(tuple(metrics))
    out = apply_kernel(kernel, inputs, sum(len(m.stats) for m in metrics), area)
    results, i = [], 0
    for m in metrics:
        stats = {name: out.isel({STAT: i + k}, drop=True) for k, name in enumerate(m.stats)}
        results.append(m.per_time(stats))
        i += len(m.stats)
    return results


@dataclass(frozen=True)
class _JointKernel:
    """Numpy kernel of several metrics on one block; cheap to tokenize for dask."""

    metrics: tuple[Metric, ...]

    def parts(self, f: np.ndarray, t: np.ndarray, c: np.ndarray | None = None) -> list[np.ndarray]:
        """Each metric's statistics (..., S_m, Y, X) in turn; leading dims may differ by broadcasting."""
        any_det = any(not m.ensemble for m in self.metrics)
        mean = (f[..., 0] if f.shape[-1] == 1 else f.mean(axis=-1)) if any_det else None  # (..., Y, X)
        error = None  # f - t of the (mean) forecast, once for every error_only metric
        parts = []
        for m in self.metrics:
            if m.error_only and not m.ensemble:
                error = np.subtract(mean, t) if error is None else error
                parts.append(m.of_error(error))
            else:
                parts.append(m.pointwise(f if m.ensemble else mean, t, c))
        return parts

    def __call__(self, f: np.ndarray, t: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        return stack_broadcast(self.parts(f, t, c), axis=-3)  # (..., S, Y, X)

    def __dask_tokenize__(self) -> tuple:
        return ("climate-optics-joint-kernel", *(m.__dask_tokenize__() for m in self.metrics))


def one_stat(x: np.ndarray) -> np.ndarray:
    return x[..., None, :, :]  # (..., Y, X) -> (..., 1, Y, X)
