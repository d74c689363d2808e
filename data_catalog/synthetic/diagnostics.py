"""From the model state to WeatherBench 2 variables on the equiangular output grid.

- ``geopotential`` at 500 hPa from the streamfunction by linear balance,
  ``lap(Phi) = div(f grad psi)`` (Charney 1955; Holton & Hakim 5th ed., sec. 6.4), so the
  winds and the height field are geostrophically consistent away from the equator.
  At 850 hPa the equivalent-barotropic structure scales the anomaly by ``A850``.
- ``u/v_component_of_wind``: the model's non-divergent wind at 500 hPa, ``A850`` times it at 850 hPa.
- ``temperature`` at 850 hPa: the advected tracer; at 500 hPa, 850 hPa temperature minus a
  6.5 K/km lapse rate over the 850-500 hPa thickness.
- ``2m_temperature``: 850 hPa temperature brought down to the surface height with the same
  lapse rate, plus a diurnal cycle (peak at 14 h local solar time) much larger over land.
- ``mean_sea_level_pressure``: a climatological zonal profile (subtropical highs, subpolar
  lows) plus ``rho0 * A_sfc`` times the 500 hPa geopotential eddies (deviation from the
  zonal mean), i.e. surface lows under upper troughs in an equivalent-barotropic column.

Spectral fields are synthesised directly at the output latitudes, so no interpolation is involved.
"""

from __future__ import annotations

import numpy as np

from data_catalog.schema import GRAVITY
from data_catalog.synthetic.geography import static_fields
from data_catalog.synthetic.model import EquivalentBarotropicModel

LAPSE_RATE = 6.5e-3  # K m-1
MEAN_Z500_M = 5560.0  # global mean 500 hPa geopotential height
MEAN_Z850_M = 1460.0
REFERENCE_MSLP = 101325.0  # Pa
SURFACE_AIR_DENSITY = 1.2  # kg m-3
DIURNAL_PEAK_HOUR = 14.0

LEVELS = (500, 850)
LEVEL_VARIABLES = ("geopotential", "temperature", "u_component_of_wind", "v_component_of_wind")
SURFACE_VARIABLES = ("2m_temperature", "mean_sea_level_pressure")


def zonal_mslp_profile(lat_deg: np.ndarray) -> np.ndarray:
    """Climatological zonal-mean MSLP anomaly [Pa]: equatorial trough, subtropical highs, subpolar lows."""
    a = np.abs(lat_deg)
    return (
        -400.0 * np.exp(-((lat_deg / 8.0) ** 2))
        + 1200.0 * np.exp(-(((a - 32.0) / 10.0) ** 2))
        - 1500.0 * np.exp(-(((a - 62.0) / 9.0) ** 2))
    )


class Diagnostics:
    """Computes output fields on an equiangular grid (``lat``, ``lon`` in degrees) from a model state."""

    def __init__(self, model: EquivalentBarotropicModel, lat: np.ndarray, lon: np.ndarray):
        self.model = model
        self.lat, self.lon = lat, lon
        self.at = model.sh.tables_at(lat, lon.size)
        statics = static_fields(lat, lon)
        self.land = statics["land_sea_mask"]  # (J, I)
        self.surface_geopotential = statics["geopotential_at_surface"]  # (J, I)
        self.mslp_zonal = zonal_mslp_profile(lat)[:, None]  # (J, 1)
        self.diurnal_amplitude = (
            model.config.diurnal_sea + (model.config.diurnal_land - model.config.diurnal_sea) * self.land
        ) * np.cos(np.deg2rad(lat))[:, None]

    def balanced_geopotential(self, psi: np.ndarray) -> np.ndarray:
        """Spectrum of the linear-balance geopotential anomaly (zero global mean) from the streamfunction."""
        sh = self.model.sh
        east, north = sh.scaled_gradient(psi)  # (B, J, I) on the Gaussian grid
        f = self.model.coriolis
        return sh.invert_laplacian(sh.divergence(f * east, f * north))

    def fields(self, q: np.ndarray, temp: np.ndarray, time: np.datetime64) -> dict[str, np.ndarray]:
        """Output variables: level variables (B, 2, J, I) for (500, 850) hPa, surface ones (B, J, I)."""
        model, sh, at = self.model, self.model.sh, self.at
        c = model.config
        psi = model.streamfunction(q)
        u500, v500 = sh.winds_from_streamfunction(psi, at)  # (B, J, I)
        phi_anom = sh.synthesis(self.balanced_geopotential(psi), at)  # (B, J, I)
        t850 = sh.synthesis(temp, at)
        a850 = c.level_850_factor
        z500 = GRAVITY * MEAN_Z500_M + phi_anom
        z850 = GRAVITY * MEAN_Z850_M + a850 * phi_anom
        t500 = t850 - LAPSE_RATE * (z500 - z850) / GRAVITY
        hour = (time - time.astype("datetime64[D]")) / np.timedelta64(1, "h")
        local_hour = (hour + self.lon / 15.0) % 24.0  # (I,)
        diurnal = self.diurnal_amplitude * np.cos(2.0 * np.pi * (local_hour - DIURNAL_PEAK_HOUR) / 24.0)[None, :]
        t2m = t850 + LAPSE_RATE * (z850 - self.surface_geopotential) / GRAVITY + diurnal
        eddy = phi_anom - phi_anom.mean(axis=-1, keepdims=True)
        mslp = REFERENCE_MSLP + self.mslp_zonal + SURFACE_AIR_DENSITY * c.surface_factor * eddy
        return {
            "geopotential": np.stack([z500, z850], axis=1),
            "temperature": np.stack([t500, t850], axis=1),
            "u_component_of_wind": np.stack([u500, a850 * u500], axis=1),
            "v_component_of_wind": np.stack([v500, a850 * v500], axis=1),
            "2m_temperature": t2m,
            "mean_sea_level_pressure": mslp,
        }

    def static(self) -> dict[str, np.ndarray]:
        return {"land_sea_mask": self.land, "geopotential_at_surface": self.surface_geopotential}
