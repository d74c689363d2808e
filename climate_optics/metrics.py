"""Skill scores in the WeatherBench 2 conventions: one small dataclass per metric.

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
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from climate_optics.errors import UsageInputError
from climate_optics.regions import resolve_regions
from climate_optics.spatial import LAT_LON, REGION, STAT, AreaMean, apply_kernel, lat_weights, whole_core
from data_catalog.errors import DataInputError
from data_catalog.schema import EARTH_RADIUS, LATITUDE, LONGITUDE, REALIZATION

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "Metric", "MSE", "RMSE", "RMSESqrtBeforeTimeMean", "Bias", "MAE", "ACC", "WindVectorMSE", "WindVectorRMSE",
    "EnsembleMeanRMSE", "EnsembleSpread", "SpreadSkillRatio", "CRPS", "StandardCRPS", "RankHistogram", "ZonalEnergySpectrum",
    "METRICS", "make_metric", "joint_statistics", "crps_pointwise", "lat_weights", "AreaMean",
    "rmse", "mse", "bias", "mae", "acc", "crps", "spread_skill_ratio", "ensemble_mean_rmse", "ensemble_spread",
    "wind_vector_rmse", "rank_histogram", "rmse_sqrt_before_time_mean", "zonal_energy_spectrum",
]

DET = list(LAT_LON)
ENS = [*LAT_LON, REALIZATION]


def _members(forecast: "xr.DataArray") -> "xr.DataArray":
    """An ensemble view: a deterministic forecast is a one-member ensemble."""
    return forecast if REALIZATION in forecast.dims else forecast.expand_dims(REALIZATION, axis=-1)


def _is_dataset(obj: Any) -> bool:
    return hasattr(obj, "data_vars")


# ----------------------------------------------------------------------------- base class


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
    spatial: bool = False

    def pointwise(self, f: np.ndarray, t: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def __dask_tokenize__(self) -> tuple:
        """Settings only: data (such as a climatology) reaches kernels as inputs, not through the metric."""
        return (type(self).__name__, *((f.name, repr(getattr(self, f.name))) for f in fields(self) if f.name != "climatology"))

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

    def compute(self, forecast: Any, truth: Any, region: Any = None, land_sea_mask: Any = None, time_dim: str = "time") -> Any:
        """The score averaged over ``time_dim`` the WeatherBench 2 way (e.g. sqrt after the mean for RMSE)."""

        def one(f, t):
            stats = self._stats(f, t, region, land_sea_mask)
            return self.finalize({k: v.mean(time_dim, skipna=False) if time_dim in v.dims else v for k, v in stats.items()})

        return self._per_variable(forecast, truth, one)

    def _stats(self, forecast, truth, region, land_sea_mask):
        area, squeeze = _area_for(forecast, region, land_sea_mask, self.spatial)
        stats = self.statistics(forecast, truth, area)
        return {k: v.squeeze(REGION, drop=True) if squeeze and REGION in v.dims else v for k, v in stats.items()}

    def _per_variable(self, forecast, truth, fn):
        if not _is_dataset(forecast) or isinstance(self, WindVectorMSE):
            return fn(forecast, truth)
        import xarray as xr

        missing = [v for v in forecast.data_vars if v not in truth.data_vars]
        if missing:
            raise DataInputError(f"truth has no variable {missing[0]!r} (truth variables: {', '.join(map(str, truth.data_vars))})")
        return xr.Dataset({v: fn(forecast[v], truth[v]) for v in forecast.data_vars})


def _area_for(forecast, region, land_sea_mask, spatial: bool) -> tuple[AreaMean | None, bool]:
    if spatial:
        return None, False
    if isinstance(region, AreaMean):
        return region, False
    regions = resolve_regions(region)
    squeeze = len(regions) == 1 and not isinstance(region, (list, tuple, Mapping))
    return AreaMean.build(forecast[LATITUDE], forecast[LONGITUDE], regions, land_sea_mask), squeeze


def joint_statistics(metrics: list[Metric], forecast: "xr.DataArray", truth: "xr.DataArray", area: AreaMean | None) -> list[dict]:
    """Statistics of several metrics from one pass over the data (one task per block).

    Deterministic metrics see the ensemble mean of an ensemble forecast. All metrics must
    agree on ``spatial``. Returns one ``{stat: DataArray}`` per metric, after ``per_time``.
    """
    if len({m.spatial for m in metrics}) > 1:
        raise UsageInputError("joint_statistics: metrics must all be spatial or all area-averaged")
    members = _members(forecast)
    inputs = [(members, ENS), (truth, DET)]
    clim_metric = next((m for m in metrics if m.needs_climatology), None)
    if clim_metric is not None:
        from climate_optics.baselines import climatology_like

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

    def __call__(self, f: np.ndarray, t: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        any_det = any(not m.ensemble for m in self.metrics)
        mean = (f[..., 0] if f.shape[-1] == 1 else f.mean(axis=-1)) if any_det else None  # (..., Y, X)
        parts = [m.pointwise(f if m.ensemble else mean, t, c) for m in self.metrics]
        shape = np.broadcast_shapes(*(p.shape[:-3] for p in parts))
        return np.concatenate([np.broadcast_to(p, shape + p.shape[-3:]) for p in parts], axis=-3)

    def __dask_tokenize__(self) -> tuple:
        return ("climate-optics-joint-kernel", *(m.__dask_tokenize__() for m in self.metrics))


def _one(x: np.ndarray) -> np.ndarray:
    return x[..., None, :, :]  # (..., Y, X) -> (..., 1, Y, X)


# ----------------------------------------------------------------------------- deterministic metrics


@dataclass
class MSE(Metric):
    """Mean squared error."""

    name: ClassVar[str] = "mse"
    stats: ClassVar[tuple[str, ...]] = ("mse",)

    def pointwise(self, f, t, c):
        d = np.subtract(f, t)
        return _one(np.multiply(d, d, out=d))


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

    def pointwise(self, f, t, c):
        return _one(np.subtract(f, t))


@dataclass
class MAE(Metric):
    """Mean absolute error."""

    name: ClassVar[str] = "mae"
    stats: ClassVar[tuple[str, ...]] = ("mae",)

    def pointwise(self, f, t, c):
        d = np.subtract(f, t)
        return _one(np.abs(d, out=d))


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
    u_name: str = "u_component_of_wind"
    v_name: str = "v_component_of_wind"

    def statistics(self, forecast, truth, area):
        names = (self.u_name, self.v_name)
        for ds, role in ((forecast, "forecast"), (truth, "truth")):
            if not _is_dataset(ds) or any(n not in ds.data_vars for n in names):
                raise DataInputError(f"wind vector metrics need a {role} Dataset holding {names[0]!r} and {names[1]!r}")
        fu, fv = (forecast[n].mean(REALIZATION) if REALIZATION in forecast[n].dims else forecast[n] for n in names)

        def kernel(fu, fv, tu, tv):
            du, dv = np.subtract(fu, tu), np.subtract(fv, tv)
            return _one(du * du + dv * dv)

        out = apply_kernel(kernel, [(fu, DET), (fv, DET), (truth[names[0]], DET), (truth[names[1]], DET)], 1, area)
        return {"mse": out.isel({STAT: 0}, drop=True)}


@dataclass
class WindVectorRMSE(WindVectorMSE):
    """Root mean squared error of the wind vector, square root after the time mean."""

    name: ClassVar[str] = "rmse"

    def finalize(self, stats):
        return np.sqrt(stats["mse"])


# ----------------------------------------------------------------------------- ensemble metrics


@dataclass
class EnsembleMeanRMSE(RMSE):
    """RMSE of the ensemble mean (square root after the time mean); for one member, the RMSE."""

    name: ClassVar[str] = "ensemble_mean_rmse"


def _variance(f: np.ndarray) -> np.ndarray:
    m = f.shape[-1]
    return f.var(axis=-1, ddof=1) if m > 1 else np.zeros(f.shape[:-1], np.result_type(f.dtype, np.float32))


@dataclass
class EnsembleSpread(Metric):
    """Ensemble spread: square root of the time-mean, area-mean unbiased ensemble variance."""

    name: ClassVar[str] = "ensemble_spread"
    stats: ClassVar[tuple[str, ...]] = ("variance",)
    ensemble: ClassVar[bool] = True

    def pointwise(self, f, t, c):
        return _one(_variance(f))

    def finalize(self, stats):
        return np.sqrt(stats["variance"])


@dataclass
class SpreadSkillRatio(Metric):
    """Spread / skill = sqrt(mean ensemble variance / mean squared error of the ensemble mean).

    ``ensemble_size_correction``: multiply by sqrt((M + 1) / M) (Fortuin et al. 2014) so that a
    perfectly reliable M-member ensemble scores 1; off by default, as in WeatherBench 2.
    """

    name: ClassVar[str] = "spread_skill_ratio"
    stats: ClassVar[tuple[str, ...]] = ("variance", "mse", "members")
    ensemble: ClassVar[bool] = True
    ensemble_size_correction: bool = False

    def pointwise(self, f, t, c):
        var = _variance(f)
        d = np.subtract(f.mean(axis=-1), t)
        var, mse = np.broadcast_arrays(var, d * d)
        return np.stack([var, mse, np.full_like(mse, f.shape[-1])], axis=-3)

    def finalize(self, stats):
        mse = stats["mse"]
        ratio = np.sqrt(stats["variance"] / mse.where(mse > 0))  # no error (e.g. persistence at lead 0): NaN
        if not self.ensemble_size_correction:
            return ratio
        m = stats["members"]
        return ratio * np.sqrt((m + 1) / m)


def crps_pointwise(f: np.ndarray, t: np.ndarray, *, fair: bool) -> np.ndarray:
    """CRPS of ensemble ``f`` (..., M) against ``t`` (...), by sorting: O(M log M).

    CRPS = E|X - y| - 1/2 E|X - X'|. With sorted members x_(1) <= ... <= x_(M),
    sum_ij |x_i - x_j| = 2 sum_i (2i - M - 1) x_(i); the standard estimator divides it by
    M^2, the fair (unbiased) one by M(M - 1) (Ferro 2014; Zamo & Naveau 2018).
    """
    m = f.shape[-1]
    dtype = np.result_type(f.dtype, t.dtype)
    work = np.sort(f, axis=-1).astype(dtype, copy=False)  # (..., M) ascending: one new array, reused below
    ranks = np.arange(1, m + 1, dtype=dtype)
    coef = (2 * ranks - m - 1) / (m * (m - 1) if fair and m > 1 else m * m)  # (M,)
    spread = work @ coef  # (...,) half the mean |x_i - x_j|; 0 for one member
    same_shape = np.broadcast_shapes(work.shape, t.shape + (1,)) == work.shape
    diff = np.subtract(work, t[..., None], out=work if same_shape else None)  # in place unless t broadcasts f
    skill = np.abs(diff, out=diff) @ np.full(m, 1.0 / m, dtype=dtype)  # (...,) mean |x_i - y| as a BLAS product
    return skill - spread


@dataclass
class CRPS(Metric):
    """Continuous ranked probability score of an ensemble, O(M log M) by sorting.

    ``fair=True`` (default, as WeatherBench 2): the unbiased estimator, spread term over
    M(M - 1) member pairs; ``fair=False``: the standard estimator of the empirical
    distribution (properscoring / xskillscore ``crps_ensemble``).
    """

    name: ClassVar[str] = "crps"
    stats: ClassVar[tuple[str, ...]] = ("crps",)
    ensemble: ClassVar[bool] = True
    fair: bool = True

    def pointwise(self, f, t, c):
        return _one(crps_pointwise(f, t, fair=self.fair))


@dataclass
class StandardCRPS(CRPS):
    """CRPS with the standard estimator (biased for small ensembles), as properscoring/xskillscore."""

    name: ClassVar[str] = "crps_standard"
    fair: bool = False


@dataclass
class RankHistogram(Metric):
    """Fraction of area (and, after the time mean, of time) where the truth has rank k
    among the M members, k = 0..M, along a ``bin`` dimension. Ties put the truth in the
    middle of the tied members; NaN anywhere gives NaN."""

    name: ClassVar[str] = "rank_histogram"
    ensemble: ClassVar[bool] = True

    def pointwise(self, f, t, c):
        tt = t[..., None]
        rank = (f < tt).sum(axis=-1) + (f == tt).sum(axis=-1) // 2  # (..., Y, X)
        bins = np.arange(f.shape[-1] + 1)[:, None, None]  # (B, 1, 1)
        one_hot = (rank[..., None, :, :] == bins).astype(np.result_type(f.dtype, np.float32))  # (..., B, Y, X)
        invalid = np.isnan(t) | np.isnan(f).any(axis=-1)
        if invalid.any():
            one_hot[np.broadcast_to(invalid[..., None, :, :], one_hot.shape)] = np.nan
        return one_hot

    def statistics(self, forecast, truth, area):
        members = _members(forecast)
        bins = members.sizes[REALIZATION] + 1
        out = apply_kernel(lambda f, t: self.pointwise(f, t, None), [(members, ENS), (truth, DET)], bins, area)
        return {"histogram": out.rename({STAT: "bin"}).assign_coords(bin=np.arange(bins))}


@dataclass
class ZonalEnergySpectrum:
    """Energy spectrum along circles of latitude, by zonal wavenumber.

    With F[k] the DFT of the L values on a circle (normalised by 1/L) and C its
    circumference, S[k] = C |F[k]|^2 for k = 0 and the Nyquist wavenumber (even L), and
    2 C |F[k]|^2 otherwise. Then sum_k S[k] = (C / L) sum_l f[l]^2 exactly (Parseval);
    WeatherBench 2 doubles the Nyquist term too. Coordinates ``wavelength`` [m] and
    ``frequency`` [1/m] vary with latitude.
    """

    earth_radius: float = EARTH_RADIUS

    def compute(self, data: Any) -> Any:
        import xarray as xr

        if _is_dataset(data):
            return xr.Dataset({v: self.compute(data[v]) for v in data.data_vars})
        if LONGITUDE not in data.dims or LATITUDE not in data.dims:
            raise DataInputError("zonal_energy_spectrum needs latitude and longitude dimensions", variable=data.name)
        n = data.sizes[LONGITUDE]
        n_k = n // 2 + 1
        factor = np.full(n_k, 2.0)
        factor[0] = 1.0
        if n % 2 == 0:
            factor[-1] = 1.0

        def power(x: np.ndarray) -> np.ndarray:
            fk = np.fft.rfft(x, axis=-1, norm="forward")  # (..., K)
            return (fk.real**2 + fk.imag**2) * factor.astype(fk.real.dtype)

        spec = xr.apply_ufunc(
            power,
            whole_core(data, [LONGITUDE]),
            input_core_dims=[[LONGITUDE]],
            output_core_dims=[["zonal_wavenumber"]],
            dask="parallelized",
            output_dtypes=[np.result_type(data.dtype, np.float32)],
            dask_gufunc_kwargs={"output_sizes": {"zonal_wavenumber": n_k}},
        )
        circumference = 2 * np.pi * self.earth_radius * np.cos(np.deg2rad(data[LATITUDE]))
        frequency = xr.DataArray(np.fft.rfftfreq(n), dims="zonal_wavenumber") / (circumference / n)
        spec = (spec * circumference).assign_coords(zonal_wavenumber=np.arange(n_k))
        return spec.assign_coords(
            frequency=frequency.assign_attrs(units="1 / m"), wavelength=(1 / frequency).assign_attrs(units="m")
        ).rename(data.name)


# ----------------------------------------------------------------------------- registry and shortcuts

METRICS: dict[str, type[Metric]] = {
    cls.name: cls
    for cls in (
        MSE, RMSE, RMSESqrtBeforeTimeMean, Bias, MAE, ACC, EnsembleMeanRMSE, EnsembleSpread, SpreadSkillRatio, CRPS,
        StandardCRPS, RankHistogram,
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
        raise UsageInputError(f"{cls.name}: unknown option {unknown[0]!r}; options: {', '.join(sorted(known | set(_CALL_OPTIONS)))}")
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
