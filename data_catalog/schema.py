"""The canonical data schema (WeatherBench 2 conventions): names, units, dimensions.

This module owns the names. Readers map every source into this schema; writers and models
read only these names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Dimension names, in canonical order for a variable's dims.
TIME = "time"  # valid time for analyses; initialisation time in forecasts
PREDICTION_TIMEDELTA = "prediction_timedelta"  # forecasts only
REALIZATION = "realization"  # ensemble member
LEVEL = "level"  # pressure level in hPa, ascending
LATITUDE = "latitude"  # degrees_north, ascending, -90..90
LONGITUDE = "longitude"  # degrees_east, 0..360

DIM_ORDER: tuple[str, ...] = (TIME, PREDICTION_TIMEDELTA, REALIZATION, LEVEL, LATITUDE, LONGITUDE)


@dataclass(frozen=True)
class Variable:
    """One canonical variable."""

    name: str  # WeatherBench 2 name
    units: str  # canonical units (UDUNITS spelling)
    long_name: str
    has_level: bool  # defined on pressure levels
    standard_name: str | None = None  # CF standard name
    static: bool = False  # no time dimension


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("geopotential", "m2 s-2", "Geopotential", True, "geopotential"),
        Variable("temperature", "K", "Temperature", True, "air_temperature"),
        Variable("u_component_of_wind", "m s-1", "U component of wind", True, "eastward_wind"),
        Variable("v_component_of_wind", "m s-1", "V component of wind", True, "northward_wind"),
        Variable("specific_humidity", "kg kg-1", "Specific humidity", True, "specific_humidity"),
        Variable("2m_temperature", "K", "2 metre temperature", False, "air_temperature"),
        Variable("10m_u_component_of_wind", "m s-1", "10 metre U wind component", False, "eastward_wind"),
        Variable("10m_v_component_of_wind", "m s-1", "10 metre V wind component", False, "northward_wind"),
        Variable("mean_sea_level_pressure", "Pa", "Mean sea level pressure", False, "air_pressure_at_mean_sea_level"),
        Variable("total_precipitation_6hr", "m", "Total precipitation over 6 hours", False, "precipitation_amount"),
        Variable(
            "geopotential_at_surface",
            "m2 s-2",
            "Geopotential at the surface",
            False,
            "surface_geopotential",
            static=True,
        ),
        Variable("land_sea_mask", "1", "Land-sea mask (1 over land)", False, "land_binary_mask", static=True),
    )
}

STATIC_VARIABLES: tuple[str, ...] = tuple(n for n, v in VARIABLES.items() if v.static)

# Physical ranges in canonical units, checked where data enter (``data_catalog.checks.check_plausible``
# on the first and last time steps, after unit conversion): wide enough for any real analysis,
# narrow enough that a mislabelled unit (degC as K, hPa as Pa, g kg-1 as kg kg-1) falls outside.
# Geopotential depends on the level: see ``plausible_range``.
PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (150.0, 350.0),  # K
    "2m_temperature": (150.0, 350.0),  # K
    "u_component_of_wind": (-150.0, 150.0),  # m s-1
    "v_component_of_wind": (-150.0, 150.0),
    "10m_u_component_of_wind": (-150.0, 150.0),
    "10m_v_component_of_wind": (-150.0, 150.0),
    "specific_humidity": (-1e-5, 0.05),  # kg kg-1: >= 0 (to packing noise), below 50 g kg-1
    "mean_sea_level_pressure": (85_000.0, 110_000.0),  # Pa
    "total_precipitation_6hr": (-1e-5, 0.5),  # m: >= 0 (to packing noise), below 500 mm in 6 h
    "geopotential_at_surface": (-5_000.0, 90_000.0),  # m2 s-2: Dead Sea shore to above Everest
    "land_sea_mask": (0.0, 1.0),
}
GEOPOTENTIAL_MARGIN = (0.25, 2000.0)  # around the standard-atmosphere height: 25 % and 2000 m either side


def standard_atmosphere_height(level_hpa: float) -> float:
    """Geopotential height (m) of a pressure level in the ICAO standard atmosphere (up to about 1 hPa)."""
    if level_hpa >= 226.32:  # troposphere, lapse rate 6.5 K km-1
        return 44_330.77 * (1.0 - (level_hpa / 1013.25) ** 0.190263)
    if level_hpa >= 54.749:  # isothermal 216.65 K to 20 km
        return 11_000.0 + 6_341.62 * math.log(226.32 / level_hpa)
    return 20_000.0 + 216_650.0 * ((level_hpa / 54.749) ** -0.0292718 - 1.0)  # warming 1 K km-1


def plausible_range(name: str, level_hpa: float | None = None) -> tuple[float, float] | None:
    """(lowest, highest) plausible value of a canonical variable (at a level, for geopotential); None: unchecked."""
    if name == "geopotential":
        if level_hpa is None:
            return None
        height = standard_atmosphere_height(float(level_hpa))
        share, metres = GEOPOTENTIAL_MARGIN
        return (GRAVITY * (height * (1 - share) - metres), GRAVITY * (height * (1 + share) + metres))
    return PLAUSIBLE_RANGES.get(name)


GRAVITY = 9.80665  # m s-2, standard gravity (WMO), for geopotential height <-> geopotential
EARTH_RADIUS = 6_371_000.0  # m
EARTH_OMEGA = 7.292e-5  # s-1
