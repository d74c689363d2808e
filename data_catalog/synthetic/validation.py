"""Measures of realism used by the tests, the benchmark and the figures of docs/results.md.

- ``persistence_ratio``: area-weighted RMSE of persistence at a lead over the RMSE of a
  climatology, WeatherBench-style (Rasp et al. 2020: ERA5 Z500 persistence 936 m2 s-2 at
  3 days against climatology 1075, ratio 0.87). As in WeatherBench the reference is a
  *seasonal* climatology (``seasonal_climatology``), not the record's time mean: a time mean
  also counts the seasonal migration of the jets as "error" and makes persistence look too
  good on long records. ``climatology="time-mean"`` keeps the old reference for comparison.
- ``seasonal_climatology``: per grid point, least-squares fit of the mean plus the first
  annual harmonics of time (period 365.2425 days). A synthetic record holds one realisation of
  each season, so the number of harmonics is restricted with the record's span (see
  ``climatology_harmonics``) to keep the fit from absorbing synoptic and intraseasonal
  variability: 0 (time mean) below 120 days, the annual harmonic alone below a year, two
  harmonics from a year on (WeatherBench 2 smooths a 30-year day-of-year mean, which keeps
  about that much).
- ``geostrophic_correlation``: correlation between the wind and the geostrophic wind
  ``u_g = -(1 / (f a)) dPhi/dlat`` (centred differences) over a band of latitudes.
- ``zonal_spectrum_slope``: log-log slope of the kinetic energy spectrum in zonal wavenumber
  (averaged over mid-latitude rows and time) between two wavenumbers.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.regrid import cell_area_weights
from data_catalog.schema import EARTH_OMEGA, EARTH_RADIUS

YEAR_DAYS = 365.2425
MIN_DAYS_FOR_ANNUAL = 120.0  # shorter records: time mean only
MIN_DAYS_FOR_SECOND = 365.0  # shorter records: annual harmonic only


def climatology_harmonics(span_days: float) -> int:
    """Annual harmonics a record of ``span_days`` supports without fitting its weather."""
    if span_days < MIN_DAYS_FOR_ANNUAL:
        return 0
    return 1 if span_days < MIN_DAYS_FOR_SECOND else 2


def seasonal_climatology(field: xr.DataArray, harmonics: int | None = None) -> xr.DataArray:
    """Mean + ``harmonics`` annual harmonics fitted per point (least squares); same dims and coords as ``field``.

    ``harmonics=None`` chooses from the record's span with ``climatology_harmonics``.
    """
    field = field.transpose("time", ...)
    days = (field.time.values - np.datetime64("2000-01-01T00:00")) / np.timedelta64(1, "D")  # (T,)
    if harmonics is None:
        harmonics = climatology_harmonics(float(days[-1] - days[0]))
    omega = 2.0 * np.pi * days / YEAR_DAYS
    columns = [np.ones_like(days)]
    for k in range(1, harmonics + 1):
        columns += [np.cos(k * omega), np.sin(k * omega)]
    design = np.stack(columns, axis=1)  # (T, 1 + 2H)
    values = np.asarray(field.values, dtype=np.float64).reshape(len(days), -1)  # (T, P)
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)  # (1 + 2H, P)
    fitted = (design @ coef).reshape(field.shape)
    out = field.copy(data=fitted)
    out.attrs["climatology_harmonics"] = harmonics
    return out


def persistence_ratio(field: xr.DataArray, lead_hours: float, climatology: str = "seasonal") -> float:
    """RMSE(persistence at ``lead_hours``) / RMSE(climatology), area-weighted; dims (time, latitude, longitude).

    ``climatology``: ``"seasonal"`` (``seasonal_climatology``, default) or ``"time-mean"``.
    """
    if climatology not in ("seasonal", "time-mean"):
        raise DataInputError(f"persistence_ratio: climatology must be 'seasonal' or 'time-mean', got {climatology!r}")
    field = field.transpose("time", "latitude", "longitude")
    values = np.asarray(field.values, dtype=np.float64)
    reference = values.mean(axis=0) if climatology == "time-mean" else seasonal_climatology(field).values
    step = (field.time.values[1] - field.time.values[0]) / np.timedelta64(1, "h")
    lag = int(round(lead_hours / step))
    weights = cell_area_weights(field.latitude.values)[None, :, None]

    def rmse(err: np.ndarray) -> float:
        return float(np.sqrt((err**2 * weights).mean()))

    return rmse(values[lag:] - values[:-lag]) / rmse(values - reference)


def geostrophic_correlation(
    geopotential: xr.DataArray, u: xr.DataArray, band: tuple[float, float] = (30.0, 70.0)
) -> float:
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
