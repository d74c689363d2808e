"""Forced-dissipative equivalent-barotropic vorticity model on the sphere with an advected temperature.

Prognostic variables, as spectra (B members, triangular truncation T):

- potential vorticity ``q = lap(psi) - psi / L_R^2`` at 500 hPa (equivalent-barotropic level),
- 850 hPa temperature ``T``, carried by the 850 hPa wind ``A850 * (u, v)``.

Equations (Holton & Hakim, *An Introduction to Dynamic Meteorology*, 5th ed., ch. 4 and
13.4; the equivalent-barotropic form as in Charney & DeVore 1979 and Vallis, *Atmospheric
and Oceanic Fluid Dynamics*, 2nd ed., ch. 12)::

    dq/dt = -div(v (q + f + f h / H)) + (q_eq(t) - q) / tau_R + S - nu del^8 q
    dT/dt = -div(A850 v T)             + (T_eq(t) - T) / tau_T    - nu del^8 T

- ``q_eq`` is the potential vorticity of a seasonally varying zonal jet in each hemisphere
  (stronger in winter); relaxation towards it stands for the baroclinic forcing the
  barotropic model cannot produce itself, and also damps the eddies (Ekman-like drag).
- ``S`` is red-noise (AR(1)) vorticity forcing in a band of total wavenumbers, weighted
  towards the mid-latitude storm tracks (floor elsewhere), the usual
  way to keep a barotropic model turbulent and statistically steady (e.g. Vallis et al.
  2004, *J. Atmos. Sci.* 61, 264-280; Barnes & Hartmann 2011).
- ``f h / H`` is the topographic term of the idealised orography (stationary waves).
- ``T_eq`` decreases from equator to pole, with a seasonal cycle that is larger over land.

Numerics: spectral transform method on an alias-free Gaussian grid (see ``sht``), classic
fourth-order Runge-Kutta for the explicit terms, and the hyperdiffusion integrated exactly
(integrating factor) after each step. No gravity waves, so no semi-implicit step is
needed: the time step is limited only by advection.
"""

from __future__ import annotations

import numpy as np

from data_catalog.schema import EARTH_OMEGA, EARTH_RADIUS
from data_catalog.synthetic.config import SyntheticConfig
from data_catalog.synthetic.geography import land_fraction_at, orography_at
from data_catalog.synthetic.sht import SphericalHarmonics

DAY = 86400.0
YEAR_DAYS = 365.2425
NH_WINTER_PEAK_DAY = 15.0  # day of year of the strongest northern jet
NH_SUMMER_PEAK_DAY = 200.0  # day of year of the warmest northern equilibrium temperature
EPOCH = np.datetime64("2000-01-01T00:00", "s")


def seasonal_phase(time: np.datetime64, peak_day: float) -> float:
    """cos(2 pi (day - peak) / year): 1 at the peak day, -1 half a year later."""
    days = (np.datetime64(time, "s") - EPOCH) / np.timedelta64(1, "D")
    return float(np.cos(2.0 * np.pi * (days - peak_day) / YEAR_DAYS))


class EquivalentBarotropicModel:
    """Integrates B members at once. State: ``q``, ``temp`` (B, T+1, T+1) spectra; ``forcing`` likewise."""

    def __init__(self, config: SyntheticConfig, rng: np.random.Generator):
        self.config = c = config
        n_lat, n_lon = c.model_shape
        self.sh = sh = SphericalHarmonics(c.truncation, n_lat, n_lon, radius=EARTH_RADIUS)
        self.rng = rng
        self.dt = float(c.dt_seconds)
        lat = np.deg2rad(sh.lat)[:, None]  # (J, 1)
        lon_deg = sh.lon[None, :]  # (1, I)
        inv_rr = 0.0 if c.deformation_radius_km <= 0 else 1.0 / (c.deformation_radius_km * 1e3) ** 2
        # q = (lap - 1/L_R^2) psi; the global mean of psi is irrelevant (set to zero)
        self.q_to_psi_eigen = np.where(sh.valid & (sh.l > 0), sh.lap_eigen - inv_rr, np.inf)  # (T+1, T+1)
        f = 2.0 * EARTH_OMEGA * np.sin(lat)  # (J, 1)
        self.coriolis = f
        orography = orography_at(sh.lat[:, None], lon_deg)  # (J, I) metres
        self.orography_spec = self._smooth(sh.analysis(orography))
        topo = f * sh.synthesis(self.orography_spec) / c.topography_depth_m  # (J, I)
        self.background_pv = f + topo  # (J, I) planetary + topographic
        # relaxation targets: annual mean and seasonal anomaly, as spectra
        self.q_eq_mean, self.q_eq_season = self._jet_pv(lat)
        land = land_fraction_at(sh.lat[:, None], lon_deg)  # (J, I)
        s = np.sin(lat)
        t_mean = c.equator_t850 - c.pole_t850_drop * s**2 + 0.0 * lon_deg  # (J, I)
        t_season = c.seasonal_t850 * s + c.land_seasonal_t850 * land * s
        self.t_eq_mean = self._smooth(sh.analysis(t_mean))
        self.t_eq_season = self._smooth(sh.analysis(t_season))
        # hyperdiffusion del^8, e-folding time `hyperdiffusion_hours` at l = T
        ll = sh.l * (sh.l + 1.0)
        rate = (ll / (c.truncation * (c.truncation + 1.0))) ** 4 / (c.hyperdiffusion_hours * 3600.0)
        self.diffusion_factor = np.exp(-rate * self.dt) * sh.valid  # (T+1, T+1)
        lo, hi = c.forcing_band
        self.forcing_mask = (sh.valid & (sh.l >= lo) & (sh.l <= hi)).astype(float)
        self.forcing_ar = float(np.exp(-self.dt / (c.forcing_memory_days * DAY)))
        # storm tracks: the eddy forcing is concentrated in the mid-latitudes of both hemispheres
        self.storm_track = (
            c.forcing_floor
            + (1.0 - c.forcing_floor)
            * np.exp(-(((np.abs(sh.lat) - c.storm_track_latitude) / c.storm_track_width) ** 2))[:, None]
        )  # (J, 1)
        shape = (c.members, c.truncation + 1, c.truncation + 1)
        self.q = np.zeros(shape, complex)
        self.temp = np.zeros(shape, complex)
        self.noise = np.zeros(shape, complex)  # AR(1) state, isotropic
        self.forcing = np.zeros(shape, complex)  # noise localised in the storm tracks

    # -- set-up helpers -----------------------------------------------------------------------

    def _smooth(self, spec: np.ndarray) -> np.ndarray:
        """Truncate with a gentle high-wavenumber taper (limits Gibbs ringing of sharp fields)."""
        l = self.sh.l
        taper = np.exp(-((l / (0.8 * self.config.truncation)) ** 6))
        return spec * taper * self.sh.valid

    def _jet_pv(self, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PV spectra of the jet profile: annual mean and the (winter-positive in the north) seasonal part."""
        c, sh = self.config, self.sh
        lat_deg = np.rad2deg(lat)
        north = c.jet_speed * np.exp(-(((lat_deg - c.jet_latitude) / c.jet_width) ** 2))
        south = c.jet_speed * np.exp(-(((lat_deg + c.jet_latitude) / c.jet_width) ** 2))
        zeros = np.zeros((lat.size, sh.n_lon))
        out = []
        for u in (north + south, c.jet_seasonal_amplitude * (north - south)):
            u_scaled = u * np.cos(lat) + zeros  # (J, I)
            zeta = sh.vorticity(u_scaled, zeros)
            psi = sh.invert_laplacian(zeta)
            out.append(self._smooth(psi * self.q_to_psi_finite()))
        return out[0], out[1]

    def q_to_psi_finite(self) -> np.ndarray:
        """PV eigenvalues with the l = 0 entry zeroed (q = eigen * psi)."""
        return np.where(np.isfinite(self.q_to_psi_eigen), self.q_to_psi_eigen, 0.0)

    # -- state ----------------------------------------------------------------------------------

    def initialise(self, time: np.datetime64) -> None:
        """Jet plus a small random perturbation; equilibrium temperature."""
        shape = self.q.shape
        noise = self.rng.standard_normal(shape + (2,)) @ np.array([1.0, 1j])
        band = self.forcing_mask
        pv_scale = 2e-6  # s^-1 per coefficient: small against the jet
        phase = seasonal_phase(time, NH_WINTER_PEAK_DAY)
        self.q = self.q_eq_mean + phase * self.q_eq_season + pv_scale * noise * band
        self.q[..., 0, :] = self.q[..., 0, :].real
        self.temp = np.broadcast_to(
            self.t_eq_mean + seasonal_phase(time, NH_SUMMER_PEAK_DAY) * self.t_eq_season, shape
        ).copy()

    def streamfunction(self, q: np.ndarray | None = None) -> np.ndarray:
        return (self.q if q is None else q) / self.q_to_psi_eigen

    def _tendencies(
        self, q: np.ndarray, temp: np.ndarray, q_eq: np.ndarray, t_eq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        sh, c = self.sh, self.config
        psi = q / self.q_to_psi_eigen
        east, north = sh.scaled_gradient(psi)  # (B, J, I): v cos, -u cos
        u_scaled, v_scaled = -north, east
        grids = sh.synthesis(np.stack([q, temp]))  # (2, B, J, I)
        pv = grids[0] + self.background_pv
        a850 = c.level_850_factor
        flux_u = np.stack([u_scaled * pv, a850 * u_scaled * grids[1]])
        flux_v = np.stack([v_scaled * pv, a850 * v_scaled * grids[1]])
        div = sh.divergence(flux_u, flux_v)  # (2, B, T+1, T+1)
        dq = -div[0] + (q_eq - q) / (c.relaxation_days * DAY) + self.forcing
        dt_ = -div[1] + (t_eq - temp) / (c.temperature_relaxation_days * DAY)
        return dq, dt_

    def step(self, time: np.datetime64) -> None:
        """Advance one time step from ``time`` (RK4; forcing and targets held over the step)."""
        dt = self.dt
        mid = time + np.timedelta64(int(dt // 2), "s")
        q_eq = self.q_eq_mean + seasonal_phase(mid, NH_WINTER_PEAK_DAY) * self.q_eq_season
        t_eq = self.t_eq_mean + seasonal_phase(mid, NH_SUMMER_PEAK_DAY) * self.t_eq_season
        self._update_forcing()
        q0, t0 = self.q, self.temp
        k1 = self._tendencies(q0, t0, q_eq, t_eq)
        k2 = self._tendencies(q0 + 0.5 * dt * k1[0], t0 + 0.5 * dt * k1[1], q_eq, t_eq)
        k3 = self._tendencies(q0 + 0.5 * dt * k2[0], t0 + 0.5 * dt * k2[1], q_eq, t_eq)
        k4 = self._tendencies(q0 + dt * k3[0], t0 + dt * k3[1], q_eq, t_eq)
        q1 = q0 + dt / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        t1 = t0 + dt / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        self.q = q1 * self.diffusion_factor
        self.temp = t1 * self.diffusion_factor

    def _update_forcing(self) -> None:
        """AR(1) red noise in the forcing band with stationary rms ``forcing_amplitude`` per coefficient."""
        a = self.forcing_ar
        noise = self.rng.standard_normal(self.q.shape + (2,)) @ np.array([1.0, 1j]) / np.sqrt(2.0)
        noise[..., 0, :] = noise[..., 0, :].real * np.sqrt(2.0)
        self.noise = a * self.noise + np.sqrt(1.0 - a * a) * self.config.forcing_amplitude * noise * self.forcing_mask
        self.forcing = self.sh.analysis(self.storm_track * self.sh.synthesis(self.noise))
