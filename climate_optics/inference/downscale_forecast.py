"""Downscale a forecast store: every (init time, lead) field into an M-member fine-grid ensemble.

``downscale_forecast(checkpoint, forecast, members=M, out=...)`` checks that the store is a
forecast ``(time, prediction_timedelta, [level,] latitude, longitude)`` and runs the one
downscaling loop, ``climate_optics.inference.downscale.run_downscale``: one init time at a time,
the forecast-store layout with ``realization`` on the fine grid, de-normalised, chunked
``(1, 1, all, ...)``, atomically, the downscaler's provenance plus, prefixed ``forecast_``, the
forecaster's; each field's noise seeded by ``seed``, its init time and lead.

``interpolate_forecast(checkpoint, forecast, out=...)`` writes the baseline: the same forecast
interpolated bilinearly to the same fine grid (deterministic, same layout without
``realization``), to be scored alongside (``climate-optics evaluate --reference``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from climate_optics import interpolation
from climate_optics.evaluation.evaluate_stores import open_forecast
from climate_optics.inference.downscale import (
    coarse_fields,
    forecaster_provenance,
    load_downscaler,
    open_coarse,
    run_downscale,
    target_grid,
)
from climate_optics.provenance import provenance_attrs
from climate_optics.stores import ForecastStoreWriter
from data_catalog.cf import absolute_source
from data_catalog.errors import DataInputError
from data_catalog.schema import PREDICTION_TIMEDELTA
from data_catalog.store import check_target


def is_forecast_store(source: str | os.PathLike) -> bool:
    """Whether ``source`` is a Zarr store with a ``prediction_timedelta`` dimension."""
    path = Path(source)
    if not (path.is_dir() and (path / "prediction_timedelta").exists()):
        return False

    return PREDICTION_TIMEDELTA in open_forecast(path).dims


def _require_forecast(forecast: str | os.PathLike) -> None:
    """A DataInputError unless ``forecast`` is a Zarr store with a ``prediction_timedelta`` dimension."""
    if not Path(forecast).is_dir():
        raise DataInputError("forecast store does not exist", source=forecast)
    if not is_forecast_store(forecast):
        raise DataInputError("not a forecast store: no prediction_timedelta dimension", source=forecast)


def downscale_forecast(
    checkpoint: str | os.PathLike, forecast: str | os.PathLike, out: str | os.PathLike, *, members: int, **options: Any
) -> Path:
    """``run_downscale`` for a store that must be a forecast (``prediction_timedelta``), checked first.

    ``options``: ``seed``, ``steps`` (Heun sampler steps), ``start``/``end`` (init times kept,
    inclusive), ``coarsen`` (coarsen a fine-grid forecast conservatively first), ``device``, ``overwrite``.
    """
    _require_forecast(forecast)
    return run_downscale(checkpoint, forecast, out=out, members=members, **options)


def interpolate_forecast(
    checkpoint: str | os.PathLike,
    forecast: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str = "linear",
    start: Any = None,
    end: Any = None,
    coarsen: int = 1,
    overwrite: bool = False,
) -> Path:
    """The baseline: the forecast interpolated (bilinear by default) to the downscaler's fine grid."""

    check_target(out, overwrite=overwrite)
    engine, state = load_downscaler(checkpoint)
    _require_forecast(forecast)
    channels = list(engine.config.channels)
    ds = open_coarse(forecast, channels, start=start, end=end, coarsen=coarsen)
    grid = target_grid(
        state["task"],
        ds["latitude"].values,
        ds["longitude"].values,
        method,
        engine.config.factor,
        str(forecast),
        great_circles=engine.config.great_circles,
    )
    attrs = provenance_attrs(
        source_dataset=ds.attrs.get("source_dataset", absolute_source(forecast)),
        model_config={"interpolation": method},
        training_backend="none",
        opu_config=None,
        checkpoint=None,
        extra={
            "model_name": "bilinear" if method == "linear" else method,
            "product": f"{method} interpolation of a forecast",
            "input_store": absolute_source(forecast),
            "grid_from": absolute_source(state["path"]),
            "channels": channels,
            **forecaster_provenance(ds.attrs),
        },
    )
    inits, leads = ds["time"].values, ds[PREDICTION_TIMEDELTA].values
    writer = ForecastStoreWriter(
        out,
        channels=channels,
        init_times=inits,
        lead_times=leads,
        latitude=grid.lat,
        longitude=grid.lon,
        attrs=attrs,
        overwrite=overwrite,
    )
    with writer:
        for i_time in range(inits.size):
            one_init = ds.isel(time=i_time).load()
            coarse = np.stack(
                [
                    coarse_fields(one_init.isel({PREDICTION_TIMEDELTA: i}), channels, str(forecast))
                    for i in range(leads.size)
                ]
            )  # (L, C, Hc, Wc)
            fine = interpolation.apply(coarse, grid.w_lat, grid.w_lon)  # (L, C, H, W)
            for i_lead in range(leads.size):
                writer.write(i_time, i_lead, np.asarray(fine[i_lead]))
    return Path(out)
