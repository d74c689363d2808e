"""Measures of realism used by the tests, the benchmark and the README figures.

- ``persistence_ratio``: area-weighted RMSE of persistence at a lead over the RMSE of the
  climatology (the record's time mean at each point), WeatherBench-style (Rasp et al. 2020:
  ERA5 Z500 persistence 936 m2 s-2 at 3 days against climatology 1075, ratio 0.87).
- ``geostrophic_correlation``: correlation between the wind and the geostrophic wind
  ``u_g = -(1 / (f a)) dPhi/dlat`` (centred differences) over a band of latitudes.
- ``zonal_spectrum_slope``: log-log slope of the kinetic energy spectrum in zonal wavenumber
  (averaged over mid-latitude rows and time) between two wavenumbers.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from data_catalog.regrid import cell_area_weights
from data_catalog.schema import EARTH_OMEGA, EARTH_RADIUS


def persistence_ratio(field: xr.DataArray, lead_hours: float) -> float:
    """RMSE(persistence at ``lead_hours``) / RMSE(time-mean climatology), area-weighted; dims (time, latitude, longitude)."""
    values = np.asarray(field.transpose("time", "latitude", "longitude").values, dtype=np.float64)
    step = (field.time.values[1] - field.time.values[0]) / np.timedelta64(1, "h")
    lag = int(round(lead_hours / step))
    weights = cell_area_weights(field.latitude.values)[None, :, None]

    def rmse(err: np.ndarray) -> float:
        return float(np.sqrt((err**2 * weights).mean()))

    return rmse(values[lag:] - values[:-lag]) / rmse(values - values.mean(axis=0))


def geostrophic_correlation(geopotential: xr.DataArray, u: xr.DataArray, band: tuple[float, float] = (30.0, 70.0)) -> float:
    """corr(u, u_geostrophic) over |latitude| in ``band``; inputs (time, latitude, longitude)."""
    phi = geopotential.transpose("time", "latitude", "longitude").values.astype(np.float64)
    lat = np.deg2rad(geopotential.latitude.values)
    f = 2.0 * EARTH_OMEGA * np.sin(lat)
    ug = -np.gradient(phi, lat, axis=1) / (f[None, :, None] * EARTH_RADIUS)
    rows = (np.abs(geopotential.latitude.values) >= band[0]) & (np.abs(geopotential.latitude.values) <= band[1])
    uu = u.transpose("time", "latitude", "longitude").values[:, rows].ravel()
    return float(np.corrcoef(uu, ug[:, rows].ravel())[0, 1])


def zonal_energy_spectrum(u: xr.DataArray, v: xr.DataArray, band: tuple[float, float] = (30.0, 60.0)) -> np.ndarray:
    """Kinetic energy per zonal wavenumber k = 0..n_lon/2, mean over time and rows with |lat| in ``band``."""
    rows = (np.abs(u.latitude.values) >= band[0]) & (np.abs(u.latitude.values) <= band[1])
    energy = 0.0
    for comp in (u, v):
        values = comp.transpose("time", "latitude", "longitude").values[:, rows].astype(np.float64)
        spec = np.abs(np.fft.rfft(values, axis=-1, norm="forward")) ** 2
        spec[..., 1:] *= 2.0
        energy = energy + 0.5 * spec.mean(axis=(0, 1))
    return energy


def zonal_spectrum_slope(u: xr.DataArray, v: xr.DataArray, k_range: tuple[int, int] = (8, 30)) -> float:
    """Least-squares slope of log E(k) against log k for k in ``k_range`` (inclusive)."""
    energy = zonal_energy_spectrum(u, v)
    k = np.arange(k_range[0], k_range[1] + 1)
    return float(np.polyfit(np.log(k), np.log(energy[k]), 1)[0])
