"""Channel names: a model channel is ``"variable"`` or ``"variable@level"`` (level in hPa).

``channel_name`` is the one formatter and ``parse_channel`` the one parser; ``store_channels``
lists the channels of a store (every time-dependent field, each level a channel).
"""

from __future__ import annotations

from collections.abc import Sequence

from data_catalog.errors import DataInputError
from data_catalog.schema import VARIABLES


def channel_name(variable: str, level: float | None = None) -> str:
    """``("geopotential", 500.0)`` -> ``"geopotential@500"``; no level -> the variable's name."""
    return str(variable) if level is None else f"{variable}@{float(level):g}"


def parse_channel(name: str) -> tuple[str, int | float | None]:
    """``"geopotential@500"`` -> ``("geopotential", 500)``; ``"2m_temperature"`` -> (name, None)."""
    if "@" not in name:
        return name, None
    var, text = name.split("@", 1)
    try:
        level = float(text)
    except ValueError:
        raise DataInputError(f"channel {name!r}: level {text!r} is not a number of hPa", variable=var) from None
    return var, int(level) if level.is_integer() else level


def store_channels(ds, variables: Sequence[str] | None = None, *, schema_order: bool = True) -> list[str]:
    """The channels of a store: every time-dependent field, each level a channel.

    ``schema_order``: schema variables in the schema's order (the forecaster's default); else every
    (time, latitude) variable in the store's order (the downscaler's default, kept so that its
    presets train as before). ``variables`` keeps only those variables.
    """
    if schema_order:
        names = [n for n in VARIABLES if n in ds.data_vars and "time" in ds[n].dims]
    else:
        names = [str(n) for n, da in ds.data_vars.items() if "time" in da.dims and "latitude" in da.dims]
    if variables is not None:
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise DataInputError(f"variable {missing[0]!r} is not in the store")
        names = [n for n in names if n in variables]
    out = []
    for name in names:
        levels = ds["level"].values if "level" in ds[name].dims else [None]
        out += [channel_name(name, level) for level in levels]
    return out
