"""Skill of a downscaler against the fine truth and the bilinear baseline.

For held-out times of a fine-grid store: coarsen the truth conservatively (what the model is
given), downscale it into an M-member ensemble over the globe, and score per channel

- ``crps``: fair ensemble CRPS (``climate_optics.metrics.crps``), area-weighted, time-mean;
- ``mae_bilinear``: MAE of bilinear interpolation of the same coarse fields (the baseline);
- ``spread`` and ``spread_skill``: ensemble spread and spread / ensemble-mean RMSE;
- ``spectrum_error`` / ``spectrum_error_bilinear``: mean |log10(S / S_truth)| of the zonal
  energy spectrum (averaged over times, members and latitudes within 60 degrees of the
  equator) over the highest wavenumbers the fine truth resolves: above the coarse grid's
  Nyquist wavenumber, where the truth still holds at least ``RESOLVED_FRACTION`` of its
  energy at that wavenumber. (A spectral model truncated below the fine grid's Nyquist, like
  the embedded T42 reanalysis, has no energy left in the last few wavenumbers.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from climate_optics import interpolation
from climate_optics.evaluation.metrics import crps, ensemble_spread, mae, spread_skill_ratio, zonal_energy_spectrum
from climate_optics.inference.downscale import EnsembleDownscaler, target_grid
from climate_optics.io.windows import ZarrWindowSampler
from data_catalog.regrid import coarsen_conservative

RESOLVED_FRACTION = 1e-3


def _spectrum(x: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Zonal energy spectrum averaged over all leading dims and |lat| <= 60: (K,)."""

    dims = tuple(f"d{i}" for i in range(x.ndim - 2)) + ("latitude", "longitude")
    spec = zonal_energy_spectrum(xr.DataArray(x, dims=dims, coords={"latitude": lat, "longitude": lon}, name="x"))
    band = spec.sel(latitude=slice(-60, 60))
    return band.mean([d for d in band.dims if d != "zonal_wavenumber"]).values


def resolved_band(truth: np.ndarray, k_coarse: int) -> np.ndarray:
    """Wavenumbers k > k_coarse where the truth spectrum is >= RESOLVED_FRACTION * truth[k_coarse]."""
    k = np.arange(truth.size)
    return k[(k > k_coarse) & (truth >= RESOLVED_FRACTION * truth[k_coarse])]


def spectrum_error(spec: np.ndarray, truth: np.ndarray, band: np.ndarray) -> float:
    """Mean |log10(spec / truth)| over the wavenumbers ``band``."""
    return float(np.mean(np.abs(np.log10(spec[band] / truth[band]))))


def downscale_skill(
    engine: EnsembleDownscaler,
    extra: dict[str, Any],
    store: str | os.PathLike,
    *,
    times: Sequence[int],
    members: int = 4,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Scores per channel (see the module docstring) over the store's time indices ``times``."""

    config = engine.config
    reader = ZarrWindowSampler(store, config.channels, starts=np.asarray(times))
    lat, lon = reader.ds["latitude"].values, reader.ds["longitude"].values
    truth = np.stack([reader.read_times(int(t), int(t) + 1)[0] for t in times])  # (T, C, H, W)
    dims = ("time", "channel", "latitude", "longitude")
    coarse = coarsen_conservative(
        xr.DataArray(truth, dims=dims, coords={"latitude": lat, "longitude": lon}), config.factor
    )
    grid = target_grid(
        extra,
        coarse["latitude"].values,
        coarse["longitude"].values,
        config.interpolation,
        config.factor,
        str(store),
        great_circles=config.great_circles,
    )
    w_lat, w_lon = interpolation.grid_matrices(
        coarse["latitude"].values, coarse["longitude"].values, lat, lon, method="linear"
    )
    bilinear = interpolation.apply(coarse.values, w_lat, w_lon)  # (T, C, H, W)
    ensemble = np.stack(
        [engine.ensemble(coarse.values[i], grid, members, seed=seed + i) for i in range(len(times))]
    )  # (T, M, C, H, W)

    k_coarse = coarse.sizes["longitude"] // 2  # coarse Nyquist wavenumber
    scores: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(config.channels):
        coords = {"latitude": lat, "longitude": lon}
        t_da = xr.DataArray(truth[:, c], dims=("time", "latitude", "longitude"), coords=coords)
        e_da = xr.DataArray(ensemble[:, :, c], dims=("time", "realization", "latitude", "longitude"), coords=coords)
        b_da = xr.DataArray(bilinear[:, c], dims=("time", "latitude", "longitude"), coords=coords)
        s_truth = _spectrum(truth[:, c], lat, lon)
        band = resolved_band(s_truth, k_coarse)
        scores[name] = {
            "crps": float(crps(e_da, t_da).mean()),
            "mae_bilinear": float(mae(b_da, t_da).mean()),
            "mae_ensemble_mean": float(mae(e_da.mean("realization"), t_da).mean()),
            "spread": float(ensemble_spread(e_da, t_da).mean()),
            "spread_skill": float(spread_skill_ratio(e_da, t_da).mean()),
            "spectrum_error": spectrum_error(_spectrum(ensemble[:, :, c], lat, lon), s_truth, band),
            "spectrum_error_bilinear": spectrum_error(_spectrum(bilinear[:, c], lat, lon), s_truth, band),
            "spectrum_band": f"{band.min()}-{band.max()}" if band.size else "",
        }
    return scores
