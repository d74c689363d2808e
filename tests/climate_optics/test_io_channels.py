"""Channel names ``variable@level``: the one formatter and the one parser agree, and a store's channels."""

import numpy as np
import pytest
import xarray as xr

from climate_optics.io.channels import channel_name, parse_channel, store_channels
from data_catalog.errors import DataInputError


@pytest.mark.parametrize(
    "variable, level", [("geopotential", 500), ("temperature", 850.0), ("2m_temperature", None), ("ozone", 0.5)]
)
def test_format_and_parse_round_trip(variable, level):
    name = channel_name(variable, level)
    assert parse_channel(name) == (variable, level)
    assert ("@" in name) == (level is not None)


def test_integer_levels_are_written_without_decimals_and_bad_levels_are_refused():
    assert channel_name("geopotential", np.float64(500.0)) == "geopotential@500"
    assert isinstance(parse_channel("geopotential@500")[1], int)
    with pytest.raises(DataInputError, match="not a number"):
        parse_channel("geopotential@high")


def test_store_channels_in_schema_or_store_order():
    time, lat, lon = np.arange(2), np.array([-45.0, 45.0]), np.array([0.0, 180.0])
    ds = xr.Dataset(
        {
            "2m_temperature": (("time", "latitude", "longitude"), np.zeros((2, 2, 2))),
            "geopotential": (("time", "level", "latitude", "longitude"), np.zeros((2, 2, 2, 2))),
            "land_sea_mask": (("latitude", "longitude"), np.zeros((2, 2))),
        },
        coords={"time": time, "level": [500, 850], "latitude": lat, "longitude": lon},
    )
    assert store_channels(ds) == ["geopotential@500", "geopotential@850", "2m_temperature"]
    assert store_channels(ds, schema_order=False) == ["2m_temperature", "geopotential@500", "geopotential@850"]
    assert store_channels(ds, ["2m_temperature"]) == ["2m_temperature"]
    with pytest.raises(DataInputError, match="not in the store"):
        store_channels(ds, ["temperature"])
