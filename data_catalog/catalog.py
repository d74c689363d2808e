"""The data catalog: a shipped YAML file plus user catalogs, validated with pydantic.

Catalog files map entry names to entries::

    entries:
      my-era5:
        description: ERA5 on pressure levels, downloaded from the CDS
        driver: netcdf
        location: era5/*.nc          # relative to the catalog file
        licence: CC-BY-4.0
        citation: Hersbach et al. (2020), doi:10.1002/qj.3803

User catalogs (``catalog=`` argument, ``--catalog FILE``, or the ``CLIMATE_OPTICS_CATALOG``
environment variable, several files separated by ``os.pathsep``) are merged over the shipped
one; an entry with the same name replaces the shipped entry. A broken user catalog breaks only what
needs the catalog: ``find_entry`` lets a source that is a plain path be read without it.
Relative locations must stay below their catalog file's directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data_catalog.errors import DataInputError
from data_catalog.schema import VARIABLES

SHIPPED = Path(__file__).with_name("catalog.yaml")
ENV_VAR = "CLIMATE_OPTICS_CATALOG"

CatalogArg = Union[str, os.PathLike, list, tuple, None]


class TimeRange(BaseModel):
    """The period an entry covers (informational; ISO dates)."""

    model_config = ConfigDict(extra="forbid")
    start: str | None = None  # first valid time, e.g. "1959-01-01"
    end: str | None = None  # last valid time
    step: str | None = None  # sampling, e.g. "6h"


class Grid(BaseModel):
    """The horizontal grid of an entry (informational)."""

    model_config = ConfigDict(extra="forbid")
    resolution_deg: float = Field(gt=0)  # grid spacing in degrees
    n_lat: int | None = Field(default=None, gt=0)
    n_lon: int | None = Field(default=None, gt=0)
    kind: str = "equiangular"  # equiangular, equiangular_with_poles, gaussian


class CatalogEntry(BaseModel):
    """One data source."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    driver: Literal["zarr", "netcdf", "grib", "synthetic"]
    location: str | None = None  # path, glob or fsspec URL; relative paths: to the catalog file
    variables: dict[str, str] = {}  # native name -> canonical name, over the built-in tables
    levels: list[float] | None = None  # pressure levels available, hPa (informational)
    time: TimeRange | None = None
    grid: Grid | None = None
    licence: str = Field(min_length=1)
    citation: str = Field(min_length=1)
    options: dict[str, Any] = {}  # passed to the driver (chunks, storage_options, grid, ...)
    catalog_file: str | None = None  # where the entry was defined (filled in on loading)

    @field_validator("variables")
    @classmethod
    def _known_canonical(cls, value: dict[str, str]) -> dict[str, str]:
        for native, canonical in value.items():
            if canonical not in VARIABLES:
                raise ValueError(
                    f"{native!r} maps to unknown canonical name {canonical!r}; expected one of {', '.join(VARIABLES)}"
                )
        return value

    @model_validator(mode="after")
    def _location_needed(self) -> "CatalogEntry":
        if self.driver != "synthetic" and not self.location:
            raise ValueError(f"driver {self.driver!r} needs a location (path, glob or URL)")
        return self


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise DataInputError("catalog file not found; expected a YAML catalog", source=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataInputError(f"not valid YAML ({' '.join(str(exc).split())})", source=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise DataInputError("expected a mapping with an 'entries' mapping of entry names", source=path)
    return data["entries"]


def _is_url(location: str) -> bool:
    return "://" in location


def parse_entries(raw: dict[str, Any], path: Path) -> dict[str, CatalogEntry]:
    """Validate the entries of one catalog file; the first bad one raises DataInputError."""
    entries = {}
    for name, fields in raw.items():
        if not isinstance(fields, dict):
            raise DataInputError(f"entry {name!r}: expected a mapping of fields", source=path)
        fields = {"name": str(name), **fields, "catalog_file": str(path)}
        try:
            entry = CatalogEntry.model_validate(fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "(entry)"
            reason = err["msg"].removeprefix("Value error, ")
            raise DataInputError(f"entry {name!r}: field {field!r}: {reason}", source=path) from None
        if entry.location and not _is_url(entry.location) and not os.path.isabs(entry.location):
            if os.path.normpath(entry.location).split(os.sep)[0] == os.pardir:
                raise DataInputError(
                    f"entry {name!r}: field 'location': {entry.location!r} leaves the catalog's directory;"
                    " relative locations stay below it (write an absolute path to mean one elsewhere)",
                    source=path,
                )
            entry = entry.model_copy(update={"location": str(path.parent / entry.location)})
        entries[entry.name] = entry
    return entries


def _user_files(catalog: CatalogArg) -> list[Path]:
    files = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    if catalog is not None:
        files += [Path(p) for p in (catalog if isinstance(catalog, (list, tuple)) else [catalog])]
    return files


def load_catalog(catalog: CatalogArg = None) -> dict[str, CatalogEntry]:
    """The shipped entries, then ``$CLIMATE_OPTICS_CATALOG``, then ``catalog``, merged by name."""
    entries = parse_entries(_read_yaml(SHIPPED), SHIPPED)
    for path in _user_files(catalog):
        entries.update(parse_entries(_read_yaml(path), path))
    return entries


def find_entry(name: str, catalog: CatalogArg = None, *, readable_without: bool = False) -> CatalogEntry | None:
    """The entry called ``name``, or None. A broken catalog file raises, unless ``readable_without``
    (``name`` is a path that can be read without the catalog): commands on plain paths keep working."""
    try:
        entries = load_catalog(catalog)
    except DataInputError:
        if readable_without:
            return None
        raise
    return entries.get(name)


def list_entries(catalog: CatalogArg = None) -> list[CatalogEntry]:
    """All catalog entries, sorted by name."""
    return sorted(load_catalog(catalog).values(), key=lambda e: e.name)


def get_entry(name: str, catalog: CatalogArg = None) -> CatalogEntry:
    """The entry called ``name``; an unknown name lists the valid ones."""
    entries = load_catalog(catalog)
    if name not in entries:
        raise DataInputError(f"unknown catalog entry {name!r}; available: {', '.join(sorted(entries))}")
    return entries[name]
