"""Ensemble metrics: ensemble-mean RMSE, spread, spread/skill, CRPS, rank histogram."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from climate_optics.evaluation.deterministic import RMSE
from climate_optics.evaluation.metric_base import DET, ENS, Metric, members_view, one_stat
from climate_optics.evaluation.spatial import STAT, apply_kernel
from data_catalog.schema import REALIZATION


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
        return one_stat(_variance(f))

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
        return one_stat(crps_pointwise(f, t, fair=self.fair))


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
        members = members_view(forecast)
        bins = members.sizes[REALIZATION] + 1
        out = apply_kernel(lambda f, t: self.pointwise(f, t, None), [(members, ENS), (truth, DET)], bins, area)
        return {"histogram": out.rename({STAT: "bin"}).assign_coords(bin=np.arange(bins))}
