"""One table per source: native variable names -> canonical names (``data_catalog.schema``).

Each table maps a native name to a pair ``(on pressure levels, on a single level)``: the
same short name means a different canonical variable with and without a ``level``
dimension (ERA5 ``z`` is geopotential on pressure levels and the surface geopotential on a
single level; NCEP ``air`` is temperature on levels and 2 m temperature in ``air.2m``).
``None`` means the name has no canonical meaning in that layout.
"""

from __future__ import annotations

from data_catalog.schema import VARIABLES

Pair = tuple[str | None, str | None]

# ERA5 short names (CDS NetCDF and cfgrib-decoded GRIB).
ERA5: dict[str, Pair] = {
    "z": ("geopotential", "geopotential_at_surface"),
    "t": ("temperature", None),
    "u": ("u_component_of_wind", None),
    "v": ("v_component_of_wind", None),
    "q": ("specific_humidity", None),
    "t2m": (None, "2m_temperature"),
    "u10": (None, "10m_u_component_of_wind"),
    "v10": (None, "10m_v_component_of_wind"),
    "msl": (None, "mean_sea_level_pressure"),
    "tp": (None, "total_precipitation_6hr"),  # hourly accumulations, summed over 6 h
    "lsm": (None, "land_sea_mask"),
}

# NCEP/NCAR Reanalysis 1 and 2 as distributed by NOAA PSL.
NCEP: dict[str, Pair] = {
    "hgt": ("geopotential", "geopotential_at_surface"),
    "air": ("temperature", "2m_temperature"),
    "uwnd": ("u_component_of_wind", "10m_u_component_of_wind"),
    "vwnd": ("v_component_of_wind", "10m_v_component_of_wind"),
    "shum": ("specific_humidity", None),
    "slp": (None, "mean_sea_level_pressure"),
    "land": (None, "land_sea_mask"),
}

# CF standard names.
CF_STANDARD_NAMES: dict[str, Pair] = {
    "geopotential": ("geopotential", None),
    "geopotential_height": ("geopotential", None),
    "air_temperature": ("temperature", "2m_temperature"),
    "eastward_wind": ("u_component_of_wind", "10m_u_component_of_wind"),
    "northward_wind": ("v_component_of_wind", "10m_v_component_of_wind"),
    "specific_humidity": ("specific_humidity", None),
    "air_pressure_at_mean_sea_level": (None, "mean_sea_level_pressure"),
    "air_pressure_at_sea_level": (None, "mean_sea_level_pressure"),
    "surface_geopotential": (None, "geopotential_at_surface"),
    "land_binary_mask": (None, "land_sea_mask"),
    "land_area_fraction": (None, "land_sea_mask"),
}

# Source tables in lookup order (WeatherBench 2 names are the canonical names themselves).
SOURCE_TABLES: dict[str, dict[str, Pair]] = {"era5": ERA5, "ncep": NCEP}

# Native variables holding accumulations over this many hours (summed to 6 h by the reader).
ACCUMULATION_HOURS: dict[str, int] = {"tp": 1}


def lookup_pair(native: str, standard_name: str | None) -> Pair | None:
    """The (on pressure levels, on a single level) pair of a native name or CF standard_name, if any."""
    for table in SOURCE_TABLES.values():
        if native in table:
            return table[native]
    if standard_name and standard_name in CF_STANDARD_NAMES:
        return CF_STANDARD_NAMES[standard_name]
    return None


def canonical_name(
    native: str, standard_name: str | None, has_level: bool, overrides: dict[str, str] | None = None
) -> tuple[str | None, str]:
    """The canonical name for a native variable and how it was found (for the history).

    Lookup order: the catalog entry's own mapping, canonical names, the source tables,
    then the CF ``standard_name`` attribute. Without a level the choice between the pair's
    two names is checked by ``data_catalog.vertical.single_level_name``.
    """
    if overrides and native in overrides:
        return overrides[native], "catalog mapping"
    if native in VARIABLES:
        return native, "canonical name"
    for source, table in SOURCE_TABLES.items():
        if native in table:
            return table[native][0 if has_level else 1], f"{source} name"
    if standard_name and standard_name in CF_STANDARD_NAMES:
        return CF_STANDARD_NAMES[standard_name][0 if has_level else 1], "CF standard_name"
    return None, "unmapped"
