"""Configuration of the synthetic reanalysis: one validated dataclass, hashed for the cache key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import pandas as pd

from data_catalog.errors import DataInputError

GENERATOR_VERSION = "1"  # bump when the generated numbers change for a given configuration

# Native output grids: name -> (output rows, model truncation, model time step in s)
NATIVE_GRIDS: dict[str, tuple[int, int, int]] = {
    "2.8125deg": (64, 42, 3600),
    "1.40625deg": (128, 85, 1800),
}
# Views derived from a native run by conservative coarsening: name -> (native grid, factor)
COARSE_VIEWS: dict[str, tuple[str, int]] = {"5.625deg": ("2.8125deg", 2)}
GRIDS = tuple(NATIVE_GRIDS) + tuple(COARSE_VIEWS)
OUTPUT_STEP_S = 6 * 3600


@dataclass(frozen=True)
class SyntheticConfig:
    """Physical and numerical settings of one run; every field is saved in the store's attributes."""

    seed: int = 0  # seeds the initial perturbation and the stochastic forcing
    start: str = "2000-01-01T00:00"  # first output time (after spin-up), UTC
    days: float = 365.0  # length of the output record in days (6-hourly)
    spinup_days: float = 60.0  # integrated before ``start`` and discarded
    members: int = 1  # independent members integrated as one batch (adds ``realization`` when > 1)
    grid: str = "2.8125deg"  # native output grid (equiangular cell centres)
    truncation: int = 42  # triangular truncation T of the spectral model
    dt_seconds: int = 3600  # RK4 time step; must divide 6 hours
    # barotropic dynamics ------------------------------------------------------------------
    deformation_radius_km: float = 1000.0  # equivalent-barotropic Rossby radius (0: pure barotropic)
    jet_speed: float = 32.0  # m/s, peak of the zonal jet the flow is relaxed towards (annual mean)
    jet_seasonal_amplitude: float = 0.3  # fractional winter strengthening / summer weakening of the jet
    jet_latitude: float = 42.0  # degrees, jet axis in each hemisphere
    jet_width: float = 11.0  # degrees, Gaussian half-width of the jet
    relaxation_days: float = 12.0  # time scale of relaxation towards the jet (also damps eddies)
    forcing_band: tuple[int, int] = (8, 16)  # total wavenumbers of the stochastic vorticity forcing
    forcing_amplitude: float = 1.7e-11  # s^-2, rms of each forced spectral coefficient's tendency
    forcing_memory_days: float = 3.0  # AR(1) decorrelation time of the forcing
    storm_track_latitude: float = 45.0  # degrees, where the forcing peaks in each hemisphere
    storm_track_width: float = 20.0  # degrees, Gaussian half-width of the storm tracks
    forcing_floor: float = 0.3  # relative forcing far from the storm tracks
    hyperdiffusion_hours: float = 6.0  # e-folding time of the smallest resolved scale (del^8)
    topography_depth_m: float = 18000.0  # H in the topographic term f h / H
    # thermodynamics and surface -------------------------------------------------------------
    temperature_relaxation_days: float = 6.0  # T850 relaxation towards its equilibrium
    equator_t850: float = 291.0  # K, equilibrium T850 at the equator (annual mean)
    pole_t850_drop: float = 40.0  # K, equator-to-pole decrease of equilibrium T850
    seasonal_t850: float = 12.0  # K, amplitude of the seasonal cycle at the poles (sin(lat) shape)
    land_seasonal_t850: float = 8.0  # K, extra seasonal amplitude over land
    level_850_factor: float = 0.65  # equivalent-barotropic amplitude at 850 hPa relative to 500 hPa
    surface_factor: float = 0.5  # amplitude at the surface relative to 500 hPa (for MSLP)
    diurnal_land: float = 5.0  # K, amplitude of the 2m temperature diurnal cycle over land at the equator
    diurnal_sea: float = 0.5  # K, amplitude over the sea

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> DataInputError:
            return DataInputError(f"synthetic option {name!r}: {why}", source="synthetic-reanalysis")

        if self.grid not in NATIVE_GRIDS:
            raise bad("grid", f"must be one of {GRIDS}, got {self.grid!r}")
        try:
            pd.Timestamp(self.start)
        except (ValueError, TypeError) as exc:
            raise bad("start", f"not a date/time: {self.start!r}") from exc
        if not self.days > 0:
            raise bad("days", f"must be positive, got {self.days!r}")
        if self.spinup_days < 0:
            raise bad("spinup_days", f"must be >= 0, got {self.spinup_days!r}")
        if not (isinstance(self.members, int) and self.members >= 1):
            raise bad("members", f"must be an integer >= 1, got {self.members!r}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise bad("seed", f"must be an integer >= 0, got {self.seed!r}")
        if self.truncation < 10:
            raise bad("truncation", f"must be >= 10, got {self.truncation!r}")
        if self.dt_seconds <= 0 or OUTPUT_STEP_S % self.dt_seconds:
            raise bad("dt_seconds", f"must be a positive divisor of {OUTPUT_STEP_S} s, got {self.dt_seconds!r}")
        lo, hi = self.forcing_band
        if not 1 <= lo <= hi <= self.truncation:
            raise bad("forcing_band", f"needs 1 <= low <= high <= truncation, got {self.forcing_band!r}")
        for name in (
            "relaxation_days",
            "forcing_memory_days",
            "hyperdiffusion_hours",
            "topography_depth_m",
            "temperature_relaxation_days",
            "jet_width",
        ):
            if not getattr(self, name) > 0:
                raise bad(name, f"must be positive, got {getattr(self, name)!r}")

    @classmethod
    def for_grid(cls, grid: str, **overrides: Any) -> "SyntheticConfig":
        """Defaults for a native grid (truncation and time step follow the resolution)."""
        if grid not in NATIVE_GRIDS:
            raise DataInputError(
                f"synthetic option 'grid': must be one of {GRIDS}, got {grid!r}", source="synthetic-reanalysis"
            )
        _, trunc, dt = NATIVE_GRIDS[grid]
        return cls(
            grid=grid,
            truncation=overrides.pop("truncation", trunc),
            dt_seconds=overrides.pop("dt_seconds", dt),
            **overrides,
        )

    @property
    def output_shape(self) -> tuple[int, int]:
        n_lat = NATIVE_GRIDS[self.grid][0]
        return n_lat, 2 * n_lat

    @property
    def model_shape(self) -> tuple[int, int]:
        """Gaussian grid rows and columns: alias-free for quadratic terms (n_lon >= 3T + 1)."""
        n_lon = 3 * self.truncation + 1
        n_lon += (-n_lon) % 16  # FFT-friendly
        return n_lon // 2, n_lon

    @property
    def n_times(self) -> int:
        return int(round(self.days * 86400 / OUTPUT_STEP_S))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["forcing_band"] = list(self.forcing_band)
        return out

    def digest(self) -> str:
        """Hash of every field and the generator version: the cache key."""
        payload = json.dumps({"version": GENERATOR_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> "SyntheticConfig":
        return replace(self, **changes)


FIELD_NAMES = tuple(f.name for f in fields(SyntheticConfig))
