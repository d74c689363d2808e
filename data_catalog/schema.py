"""The canonical data schema (WeatherBench 2 conventions): names, units, dimensions.

This module owns the names. Readers map every source into this schema; writers and models
read only these names.
"""

from __future__ import annotations

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
        Variable("geopotential_at_surface", "m2 s-2", "Geopotential at the surface", False, "surface_geopotential", static=True),
        Variable("land_sea_mask", "1", "Land-sea mask (1 over land)", False, "land_binary_mask", static=True),
    )
}

STATIC_VARIABLES: tuple[str, ...] = tuple(n for n, v in VARIABLES.items() if v.static)

GRAVITY = 9.80665  # m s-2, standard gravity (WMO), for geopotential height <-> geopotential
EARTH_RADIUS = 6_371_000.0  # m
EARTH_OMEGA = 7.292e-5  # s-1
