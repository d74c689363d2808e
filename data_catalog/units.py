"""Unit spellings and conversions into the canonical units of ``data_catalog.schema``.

A unit string is first normalised (case, ``**`` and ``^`` exponents, ``.`` separators,
spaces), then looked up in a per-canonical-unit table of ``(scale, offset)`` conversions:
``canonical = native * scale + offset``.
"""

from __future__ import annotations

import re

from data_catalog.schema import GRAVITY

# canonical unit -> {normalised native spelling: (scale, offset)}
CONVERSIONS: dict[str, dict[str, tuple[float, float]]] = {
    # geopotential; a height in (geopotential) metres is multiplied by standard gravity
    "m2 s-2": {
        "m2 s-2": (1.0, 0.0),
        "m2/s2": (1.0, 0.0),
        "j kg-1": (1.0, 0.0),
        "j/kg": (1.0, 0.0),
        "gpm": (GRAVITY, 0.0),
        "m": (GRAVITY, 0.0),
        "dam": (10.0 * GRAVITY, 0.0),
        "gpdm": (10.0 * GRAVITY, 0.0),
    },
    "K": {
        "k": (1.0, 0.0),
        "kelvin": (1.0, 0.0),
        "degk": (1.0, 0.0),
        "deg k": (1.0, 0.0),
        "degc": (1.0, 273.15),
        "deg c": (1.0, 273.15),
        "c": (1.0, 273.15),
        "celsius": (1.0, 273.15),
        "degrees_celsius": (1.0, 273.15),
        "degree_celsius": (1.0, 273.15),
        "°c": (1.0, 273.15),
    },
    "m s-1": {
        "m s-1": (1.0, 0.0),
        "m/s": (1.0, 0.0),
        "ms-1": (1.0, 0.0),
        "m/sec": (1.0, 0.0),
        "knots": (0.514444, 0.0),
        "kt": (0.514444, 0.0),
        "km h-1": (1.0 / 3.6, 0.0),
        "km/h": (1.0 / 3.6, 0.0),
    },
    "kg kg-1": {
        "kg kg-1": (1.0, 0.0),
        "kg/kg": (1.0, 0.0),
        "1": (1.0, 0.0),
        "g kg-1": (1e-3, 0.0),
        "g/kg": (1e-3, 0.0),
    },
    "Pa": {
        "pa": (1.0, 0.0),
        "pascal": (1.0, 0.0),
        "pascals": (1.0, 0.0),
        "hpa": (100.0, 0.0),
        "mb": (100.0, 0.0),
        "mbar": (100.0, 0.0),
        "millibar": (100.0, 0.0),
        "millibars": (100.0, 0.0),
        "kpa": (1000.0, 0.0),
    },
    # precipitation depth; kg m-2 of liquid water is a depth in mm
    "m": {
        "m": (1.0, 0.0),
        "mm": (1e-3, 0.0),
        "kg m-2": (1e-3, 0.0),
        "kg/m2": (1e-3, 0.0),
        "kg/m^2": (1e-3, 0.0),
    },
    # dimensionless (land-sea mask)
    "1": {
        "1": (1.0, 0.0),
        "": (1.0, 0.0),
        "0 - 1": (1.0, 0.0),
        "(0 - 1)": (1.0, 0.0),
        "fraction": (1.0, 0.0),
        "dimensionless": (1.0, 0.0),
        "~": (1.0, 0.0),
    },
}

# Pressure-level coordinate units -> factor to hPa.
LEVEL_TO_HPA: dict[str, float] = {
    "hpa": 1.0,
    "mb": 1.0,
    "mbar": 1.0,
    "millibar": 1.0,
    "millibars": 1.0,
    "pa": 0.01,
    "pascal": 0.01,
    "kpa": 10.0,
}


def normalise(units: str) -> str:
    """Normalise a unit spelling: ``'m**2 s**-2'`` -> ``'m2 s-2'``, ``'K'`` -> ``'k'``."""
    text = units.strip().lower()
    text = text.replace("**", "").replace("^", "")
    text = re.sub(r"(?<=[a-z0-9])\.(?=[a-z])", " ", text)  # "m.s-1" -> "m s-1"
    return " ".join(text.split())


def conversion(native: str, canonical: str) -> tuple[float, float] | None:
    """``(scale, offset)`` taking ``native`` units to ``canonical`` ones, or None if unknown."""
    table = CONVERSIONS.get(canonical, {})
    key = normalise(native)
    if key in table:
        return table[key]
    if key == normalise(canonical):
        return (1.0, 0.0)
    return None


def known_spellings(canonical: str) -> list[str]:
    """The native spellings accepted for ``canonical`` (for error messages)."""
    return sorted(CONVERSIONS.get(canonical, {canonical: (1.0, 0.0)}))


def level_factor(units: str | None, values_max: float) -> float:
    """Factor taking a pressure-level coordinate to hPa; without units, values > 2000 mean Pa."""
    if units:
        key = normalise(units)
        if key in LEVEL_TO_HPA:
            return LEVEL_TO_HPA[key]
    return 0.01 if values_max > 2000 else 1.0
