"""``open_synthetic``: options -> configuration -> cached store (generated on first use) -> lazy dataset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.synthetic.config import COARSE_VIEWS, FIELD_NAMES, GRIDS, NATIVE_GRIDS, SyntheticConfig

SOURCE = "synthetic-reanalysis"
DAYS_PER_YEAR = 365
RUN_OPTIONS = ("years", "progress")  # options that are not configuration fields


def default_cache_dir() -> Path:
    """``$CLIMATE_OPTICS_CACHE`` or ``~/.cache/climate-optics``, plus ``synthetic/``."""
    root = os.environ.get("CLIMATE_OPTICS_CACHE") or Path.home() / ".cache" / "climate-optics"
    return Path(root) / "synthetic"


def config_from_options(options: dict[str, Any] | None) -> tuple[SyntheticConfig, int]:
    """Turn catalog/CLI options into a configuration and a coarsening factor for the requested grid."""
    opts = {k: v for k, v in dict(options or {}).items() if v is not None}
    unknown = sorted(set(opts) - set(FIELD_NAMES) - set(RUN_OPTIONS))
    if unknown:
        raise DataInputError(
            f"unknown synthetic option(s) {unknown}; valid: {sorted(FIELD_NAMES + RUN_OPTIONS)}", source=SOURCE
        )
    opts.pop("progress", None)
    if "years" in opts:
        if "days" in opts:
            raise DataInputError("give either 'years' or 'days', not both", source=SOURCE)
        try:
            years = float(opts.pop("years"))
        except (TypeError, ValueError) as exc:
            raise DataInputError("synthetic option 'years' must be a number", source=SOURCE) from exc
        opts["days"] = years * DAYS_PER_YEAR
    grid = str(opts.pop("grid", "2.8125deg"))
    if grid in COARSE_VIEWS:
        native, factor = COARSE_VIEWS[grid]
    elif grid in NATIVE_GRIDS:
        native, factor = grid, 1
    else:
        raise DataInputError(f"synthetic option 'grid' must be one of {list(GRIDS)}, got {grid!r}", source=SOURCE)
    if "forcing_band" in opts:
        opts["forcing_band"] = tuple(int(v) for v in opts["forcing_band"])
    for name in ("seed", "members", "truncation", "dt_seconds"):
        if name in opts:
            try:
                opts[name] = int(opts[name])
            except (TypeError, ValueError) as exc:
                raise DataInputError(
                    f"synthetic option {name!r} must be an integer, got {opts[name]!r}", source=SOURCE
                ) from exc
    try:
        config = SyntheticConfig.for_grid(native, **opts)
    except TypeError as exc:
        raise DataInputError(f"bad synthetic options: {exc}", source=SOURCE) from exc
    return config, factor


def store_path(config: SyntheticConfig, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the store for ``config`` lives in the cache (keyed by the configuration's hash)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / f"synthetic-{config.grid}-seed{config.seed}-{config.digest()}.zarr"


def ensure_store(
    config: SyntheticConfig, cache_dir: str | os.PathLike | None = None, *, progress: bool | None = None
) -> Path:
    """Path of the cached store for ``config``, generating it first when absent."""
    from data_catalog.synthetic.writer import ensure_generated

    return ensure_generated(config, store_path(config, cache_dir), progress=progress)


def open_synthetic(options: dict[str, Any] | None = None, *, cache_dir: str | os.PathLike | None = None) -> xr.Dataset:
    """The synthetic reanalysis as a lazy canonical dataset; generated into the cache on first use.

    Options: ``grid`` ("2.8125deg", the native default; "5.625deg", the conservatively
    coarsened view of the same run; "1.40625deg", a separate high-resolution run),
    ``years`` or ``days``, ``seed``, ``start``,
    ``spinup_days``, ``members``, ``progress`` and any other ``SyntheticConfig`` field.
    """
    from data_catalog.regrid import coarsen_conservative

    config, factor = config_from_options(options)
    path = ensure_store(config, cache_dir, progress=(options or {}).get("progress"))
    ds = xr.open_zarr(path, consolidated=False, chunks={})
    if factor > 1:
        ds = coarsen_conservative(ds, factor)
        ds.attrs["grid"] = next(
            name for name, (native, f) in COARSE_VIEWS.items() if native == config.grid and f == factor
        )
        ds.attrs["regridding"] = f"conservative (area-weighted) {factor}x{factor} coarsening of the {config.grid} run"
    return ds
