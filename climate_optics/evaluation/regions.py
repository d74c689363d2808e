"""Regions for area-averaged scores (WeatherBench 2 names where they exist).

A region turns a (latitude, longitude) grid into a 0/1 mask; the area weights of the
spatial mean are multiplied by it. Box regions are latitude/longitude boxes (longitudes
wrap around 0/360 when ``lon_min > lon_max``); land and sea come from a ``land_sea_mask``.

>>> resolve_regions(["global", "tropics", "alps=44,48,5,16"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from climate_optics.errors import UsageInputError
from data_catalog.errors import DataInputError

Box = tuple[float, float]


@dataclass(frozen=True)
class Region:
    """Base class: ``mask(lat, lon, land_sea_mask)`` returns a (lat, lon) array of 0/1."""

    def mask(self, latitude: np.ndarray, longitude: np.ndarray, land_sea_mask: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class BoxRegion(Region):
    """Union of latitude bands times union of longitude ranges, bounds inclusive (degrees).

    ``lat``/``lon`` hold (min, max) pairs; ``None`` means the whole range. A longitude
    pair with min > max wraps through 0 (e.g. Europe, (347.5, 42.5)).
    """

    lat: tuple[Box, ...] | None = None
    lon: tuple[Box, ...] | None = None

    def __post_init__(self) -> None:
        for lo, hi in self.lat or ():
            if not -90 <= lo <= hi <= 90:
                raise UsageInputError(f"region latitude bounds must satisfy -90 <= min <= max <= 90, got ({lo}, {hi})")

    def mask(self, latitude, longitude, land_sea_mask=None):
        lat = np.asarray(latitude, dtype=float)
        lon = np.mod(np.asarray(longitude, dtype=float), 360.0)
        in_lat = (
            np.ones(lat.shape, bool)
            if self.lat is None
            else np.any([(lat >= lo) & (lat <= hi) for lo, hi in self.lat], axis=0)
        )
        in_lon = (
            np.ones(lon.shape, bool)
            if self.lon is None
            else np.any([_in_lon_range(lon, lo, hi) for lo, hi in self.lon], axis=0)
        )
        return (in_lat[:, None] & in_lon[None, :]).astype(float)


def _in_lon_range(lon: np.ndarray, lo: float, hi: float) -> np.ndarray:
    lo = lo % 360.0
    hi = hi if hi == 360.0 else hi % 360.0
    return (lon >= lo) & (lon <= hi) if lo <= hi else (lon >= lo) | (lon <= hi)


@dataclass(frozen=True)
class LandSeaRegion(Region):
    """Grid points over land (``land=True``) or sea, from the dataset's ``land_sea_mask``.

    ``threshold``: a fractional mask counts as land where it exceeds this value.
    ``within``: an optional box the land/sea points are restricted to.
    """

    land: bool = True
    threshold: float = 0.5
    within: BoxRegion | None = None

    def mask(self, latitude, longitude, land_sea_mask=None):
        if land_sea_mask is None:
            raise DataInputError(
                f"region {'land' if self.land else 'sea'!r} needs a land_sea_mask (a static field in the truth dataset)",
                variable="land_sea_mask",
            )
        lsm = np.asarray(land_sea_mask, dtype=float)
        if lsm.shape != (len(latitude), len(longitude)):
            raise DataInputError(
                f"land_sea_mask has shape {lsm.shape}, expected (latitude, longitude) = {(len(latitude), len(longitude))}"
            )
        selected = lsm > self.threshold if self.land else lsm <= self.threshold
        box = 1.0 if self.within is None else self.within.mask(latitude, longitude)
        return selected.astype(float) * box


REGIONS: dict[str, Region] = {
    "global": BoxRegion(),
    "tropics": BoxRegion(lat=((-20.0, 20.0),)),
    "extra-tropics": BoxRegion(lat=((-90.0, -20.0), (20.0, 90.0))),
    "northern-hemisphere": BoxRegion(lat=((20.0, 90.0),)),  # northern extra-tropics, as in WeatherBench 2
    "southern-hemisphere": BoxRegion(lat=((-90.0, -20.0),)),  # southern extra-tropics
    "europe": BoxRegion(lat=((35.0, 75.0),), lon=((347.5, 42.5),)),
    "north-america": BoxRegion(lat=((25.0, 60.0),), lon=((240.0, 285.0),)),
    "north-atlantic": BoxRegion(lat=((25.0, 65.0),), lon=((290.0, 350.0),)),
    "east-asia": BoxRegion(lat=((25.0, 60.0),), lon=((102.5, 150.0),)),
    "arctic": BoxRegion(lat=((60.0, 90.0),)),
    "antarctic": BoxRegion(lat=((-90.0, -60.0),)),
    "land": LandSeaRegion(land=True),
    "sea": LandSeaRegion(land=False),
}
"""Built-in regions by name (WeatherBench 2 spellings)."""

DEFAULT_REGIONS: tuple[str, ...] = (
    "global",
    "tropics",
    "northern-hemisphere",
    "southern-hemisphere",
    "europe",
    "north-america",
)


def parse_region(spec: str) -> tuple[str, Region]:
    """A built-in name, or a user box ``NAME=LAT_MIN,LAT_MAX,LON_MIN,LON_MAX`` (degrees)."""
    spec = spec.strip()
    if "=" not in spec:
        if spec not in REGIONS:
            raise UsageInputError(
                f"unknown region {spec!r}; built-in regions: {', '.join(REGIONS)}; or NAME=LAT_MIN,LAT_MAX,LON_MIN,LON_MAX"
            )
        return spec, REGIONS[spec]
    name, _, bounds = spec.partition("=")
    try:
        lat0, lat1, lon0, lon1 = (float(v) for v in bounds.split(","))
    except ValueError:
        raise UsageInputError(
            f"region {spec!r}: expected NAME=LAT_MIN,LAT_MAX,LON_MIN,LON_MAX with four numbers"
        ) from None
    if not name.strip():
        raise UsageInputError(f"region {spec!r} has no name before '='")
    return name.strip(), BoxRegion(lat=((lat0, lat1),), lon=((lon0, lon1),))


def resolve_regions(regions: str | Region | Sequence[str | Region] | Mapping[str, Region] | None) -> dict[str, Region]:
    """Normalise a region argument into ``{name: Region}`` (None -> global only)."""
    if regions is None:
        return {"global": REGIONS["global"]}
    if isinstance(regions, Mapping):
        return dict(regions)
    if isinstance(regions, (str, Region)):
        regions = [regions]
    resolved: dict[str, Region] = {}
    for item in _flatten(regions):
        name, region = (f"region{len(resolved)}", item) if isinstance(item, Region) else parse_region(item)
        resolved[name] = region
    if not resolved:
        raise UsageInputError("no regions given")
    return resolved


def _flatten(items: Iterable[str | Region]) -> Iterable[str | Region]:
    """Split comma-separated specs; a ``NAME=a,b,c,d`` box keeps its four numbers together."""
    for item in items:
        if not isinstance(item, str):
            yield item
            continue
        tokens = [t for t in item.split(",") if t.strip()]
        while tokens:
            token = tokens.pop(0)
            if "=" in token:
                token = ",".join([token, *tokens[:3]])
                tokens = tokens[3:]
            yield token
