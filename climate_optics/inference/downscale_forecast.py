"""Downscale a forecast store: every (init time, lead) field into an M-member fine-grid ensemble.

``downscale_forecast(checkpoint, forecast, members=M, out=...)`` reads a forecast store
``(time, prediction_timedelta, [level,] latitude, longitude)`` on the downscaler's coarse grid
(the globe or a region of it) one init time at a time, downscales each lead with
``EnsembleDownscaler.ensemble`` and writes the forecast-store layout with ``realization`` on the
fine grid, de-normalised, chunked ``(1, 1, all, ...)``, atomically. Its attributes hold the
downscaler's provenance and, prefixed ``forecast_``, the forecaster's (checkpoint sha256,
model config, training backend). Each field's noise is seeded by ``seed``, its init time and
lead, so downscaling a subset of init times gives the same members.

``interpolate_forecast(checkpoint, forecast, out=...)`` writes the baseline: the same forecast
interpolated bilinearly to the same fine grid (deterministic, same layout without
``realization``), to be scored alongside (``climate-optics evaluate --reference``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from climate_optics.errors import UsageInputError
from climate_optics.inference.downscale import coarse_fields, load_downscaler, open_coarse, target_grid
from climate_optics.training.sampler import parse_channel
from data_catalog.errors import DataInputError
from data_catalog.schema import PREDICTION_TIMEDELTA

FORECASTER_KEYS = ("checkpoint_sha256", "model_config", "training_backend", "opu_config", "trained_steps", "rollout", "input_store", "created")


def is_forecast_store(source: str | os.PathLike) -> bool:
    """Whether ``source`` is a Zarr store with a ``prediction_timedelta`` dimension."""
    path = Path(source)
    if not (path.is_dir() and (path / "prediction_timedelta").exists()):
        return False
    from climate_optics.evaluate_stores import open_forecast

    return PREDICTION_TIMEDELTA in open_forecast(path).dims


def check_channels(ds, channels: list[str], source: str | os.PathLike) -> None:
    """Every ``variable`` / ``variable@level`` channel of the model is in ``ds``; else a DataInputError naming it."""
    available = []
    for name, da in ds.data_vars.items():
        levels = ds["level"].values if "level" in da.dims else [None]
        available += [str(name) if lev is None else f"{name}@{lev:g}" for lev in levels]
    for channel in channels:
        var, level = parse_channel(channel)
        present = var in ds.data_vars and (
            level is None or ("level" in ds[var].dims and bool(np.any(np.isclose(ds["level"].values, level)))))
        if not present:
            raise DataInputError(f"the downscaler needs channel {channel!r}, absent from the forecast store "
                                 f"(it holds {', '.join(available) or 'no variables'})", source=source, variable=var)


def forecaster_provenance(attrs: dict[str, Any]) -> dict[str, Any]:
    """The input forecast's provenance, keys prefixed ``forecast_`` (present keys only)."""
    return {f"forecast_{k}": attrs[k] for k in FORECASTER_KEYS if k in attrs}


def _open_forecast(checkpoint, forecast, *, device: str = "cpu", steps: int | None = None, start: Any = None, end: Any = None,
                   coarsen: int = 1):
    """(engine, checkpoint state, forecast Dataset, fine TargetGrid): everything checked, nothing computed."""
    import xarray as xr

    engine, state = load_downscaler(checkpoint, device=device, sampler_steps=steps)
    channels = list(engine.config.channels)
    if not Path(forecast).is_dir():
        raise DataInputError("forecast store does not exist", source=forecast)
    raw = xr.open_zarr(forecast)
    if PREDICTION_TIMEDELTA not in raw.dims:
        raise DataInputError("not a forecast store: no prediction_timedelta dimension", source=forecast)
    check_channels(raw, channels, forecast)
    ds = open_coarse(forecast, channels, start=start, end=end, coarsen=coarsen)
    grid = target_grid(state["task"], ds["latitude"].values, ds["longitude"].values, engine.config.interpolation,
                       engine.config.factor, str(forecast))
    return engine, state, ds, grid


def field_seed(seed: int, init_time: np.datetime64, lead: np.timedelta64) -> int:
    """Noise seed of one (init time, lead) field: independent of which other fields are downscaled."""
    hours = [int(np.datetime64(init_time, "h").astype(np.int64)), int(np.timedelta64(lead, "h").astype(np.int64))]
    return int(np.random.SeedSequence([seed, hours[0] % 2**32, hours[1]]).generate_state(1)[0])


def downscale_forecast(checkpoint: str | os.PathLike, forecast: str | os.PathLike, out: str | os.PathLike, *, members: int,
                       seed: int = 0, steps: int | None = None, start: Any = None, end: Any = None, coarsen: int = 1,
                       device: str = "cpu", overwrite: bool = False) -> Path:
    """Downscale every (init, lead) of the forecast store into an ``members``-member ensemble store at ``out``.

    ``steps``: Heun sampler steps (default: the model's); ``start``/``end``: init times kept
    (inclusive); ``coarsen``: coarsen a fine-grid forecast conservatively first.
    """
    from climate_optics.inference.forecast import forecast_provenance
    from climate_optics.stores import ForecastStoreWriter
    from data_catalog.store import check_target

    for option, value in (("--members", members), ("--steps", steps)):
        if value is not None and value < 1:
            raise UsageInputError(f"{option} must be >= 1, got {value}")
    check_target(out, overwrite=overwrite)
    engine, state, ds, grid = _open_forecast(checkpoint, forecast, device=device, steps=steps, start=start, end=end, coarsen=coarsen)
    channels, extra = list(engine.config.channels), state["task"]
    inits, leads = ds["time"].values, ds[PREDICTION_TIMEDELTA].values
    backend = state.get("train_config", {}).get("mode", "backprop")
    attrs = forecast_provenance(state["path"], {**state, "task": {**extra, "model_config": extra["config"]}},
                                str(ds.attrs.get("source_dataset", forecast)), {
        "model_name": f"downscaler-{backend}", "product": "downscaled forecast ensemble", "input_store": str(forecast),
        "members": members, "seed": seed, "sampler_steps": engine.sampler.steps, "coarsen_input": coarsen, "channels": channels,
        **forecaster_provenance(ds.attrs),
    })
    writer = ForecastStoreWriter(out, channels=channels, init_times=inits, lead_times=leads, latitude=grid.lat,
                                 longitude=grid.lon, realizations=members, attrs=attrs, overwrite=overwrite)
    with writer:
        for i_time, init in enumerate(inits):
            one_init = ds.isel(time=i_time).load()  # every lead of one init: (L, C, Hc, Wc) in memory
            for i_lead, lead in enumerate(leads):
                fields = coarse_fields(one_init.isel({PREDICTION_TIMEDELTA: i_lead}), channels, str(forecast))  # (C, Hc, Wc)
                writer.write(i_time, i_lead, engine.ensemble(fields, grid, members, seed=field_seed(seed, init, lead)))  # (M, C, H, W)
    return Path(out)


def interpolate_forecast(checkpoint: str | os.PathLike, forecast: str | os.PathLike, out: str | os.PathLike, *,
                         method: str = "linear", start: Any = None, end: Any = None, coarsen: int = 1,
                         overwrite: bool = False) -> Path:
    """The baseline: the forecast interpolated (bilinear by default) to the downscaler's fine grid."""
    from climate_optics import interpolation
    from climate_optics.provenance import provenance_attrs
    from climate_optics.stores import ForecastStoreWriter
    from data_catalog.store import check_target

    check_target(out, overwrite=overwrite)
    engine, state, ds, _ = _open_forecast(checkpoint, forecast, start=start, end=end, coarsen=coarsen)
    channels = list(engine.config.channels)
    grid = target_grid(state["task"], ds["latitude"].values, ds["longitude"].values, method, engine.config.factor, str(forecast))
    attrs = provenance_attrs(
        source_dataset=str(ds.attrs.get("source_dataset", forecast)), model_config={"interpolation": method},
        training_backend="none", opu_config=None, checkpoint=None,
        extra={"model_name": "bilinear" if method == "linear" else method, "product": f"{method} interpolation of a forecast",
               "input_store": str(forecast), "grid_from": str(state["path"]), "channels": channels,
               **forecaster_provenance(ds.attrs)},
    )
    inits, leads = ds["time"].values, ds[PREDICTION_TIMEDELTA].values
    writer = ForecastStoreWriter(out, channels=channels, init_times=inits, lead_times=leads, latitude=grid.lat,
                                 longitude=grid.lon, attrs=attrs, overwrite=overwrite)
    with writer:
        for i_time in range(inits.size):
            one_init = ds.isel(time=i_time).load()
            coarse = np.stack([coarse_fields(one_init.isel({PREDICTION_TIMEDELTA: i}), channels, str(forecast))
                               for i in range(leads.size)])  # (L, C, Hc, Wc)
            fine = interpolation.apply(coarse, grid.w_lat, grid.w_lon)  # (L, C, H, W)
            for i_lead in range(leads.size):
                writer.write(i_time, i_lead, np.asarray(fine[i_lead]))
    return Path(out)
