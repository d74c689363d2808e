"""Quick in-memory skill of a forecaster on held-out times, against persistence and climatology.

Used by the skill test and ``benchmarks/bench_skill.py``: the forecasts are rolled out on the
validation split of an ingested store and scored with ``climate_optics.metrics`` (latitude-
weighted RMSE, square root after the time mean; uncentred ACC against the store's climatology).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from climate_optics.io.channels import parse_channel
from climate_optics.io.windows import ZarrWindowSampler, open_store
from climate_optics.models.forecaster import Forecaster, earlier_states


def _climatology_at(store: str | os.PathLike, name: str, times: np.ndarray):
    """The store's climatology of channel ``name`` at ``times``: (T, H, W) DataArray over time."""
    import pandas as pd
    import xarray as xr

    from data_catalog.stats import read_climatology

    var, level = parse_channel(name)
    clim = read_climatology(store)[var]
    if level is not None:
        clim = clim.sel(level=level)
    stamps = pd.DatetimeIndex(times)
    index = {"dayofyear": xr.DataArray(np.asarray(stamps.day_of_year), dims="time"), "hour": xr.DataArray(np.asarray(stamps.hour), dims="time")}
    if "hour" not in clim.dims:
        index.pop("hour")
    return clim.sel(index).assign_coords(time=times).load()


def forecast_skill(
    model: Forecaster,
    store: str | os.PathLike,
    *,
    start: int,
    lead_hours: int = 24,
    channel: str = "geopotential@500",
    n_init: int = 24,
    batch_size: int = 8,
    direct: bool = False,
) -> dict[str, float]:
    """RMSE and ACC of ``model`` for ``channel`` at ``lead_hours`` from ``n_init`` initial times >= ``start``.

    Autoregressive rollout by default; ``direct=True`` uses one lead-conditioned step.

    Returns ``rmse``, ``acc``, ``persistence_rmse``, ``persistence_acc``, ``climatology_rmse``.
    """
    import xarray as xr

    from climate_optics.evaluation import metrics

    ds = open_store(store)
    config = model.config
    dt = int(np.diff(ds["time"].values[:2])[0] // np.timedelta64(1, "h"))
    k = lead_hours // dt
    ips = config.step_hours // dt  # time indices per model step
    back = (config.history - 1) * ips  # time indices of the model's input history
    inits = np.arange(max(start, back), ds.sizes["time"] - k)
    inits = inits[np.linspace(0, inits.size - 1, min(n_init, inits.size)).round().astype(int)]
    reader = ZarrWindowSampler(store, config.channels, starts=inits, group_chunks=1)
    c = list(config.channels).index(channel)
    device = next(model.parameters()).device
    static = None
    if config.static_channels:
        static = torch.from_numpy(np.stack([ds[n].values.astype(np.float32) for n in config.static_channels])).to(device)
    states, truths, forecasts = [], [], []
    model.eval()
    for first in range(0, inits.size, batch_size):
        idx = inits[first : first + batch_size]
        first_t = int(idx[0]) - back
        span = reader.read_times(first_t, int(idx[-1]) + k + 1)  # (T, C, H, W)
        local = idx - first_t  # (B,)
        state = torch.from_numpy(span[local]).to(device)  # (B, C, H, W)
        previous = earlier_states(span, local, config.history, ips)  # (B, history - 1, C, H, W) or None
        previous = None if previous is None else previous.to(device)
        stat = None if static is None else static[None].expand(len(idx), -1, -1, -1)
        forecasts.append(model.rollout(state, [lead_hours], stat, direct=direct, previous=previous)[0][:, c].float().cpu().numpy())
        states.append(span[local, c])
        truths.append(span[local + k, c])
    valid = ds["time"].values[inits + k]
    coords = {"time": valid, "latitude": ds["latitude"].values, "longitude": ds["longitude"].values}

    def array(values: list[np.ndarray]) -> xr.DataArray:
        return xr.DataArray(np.concatenate(values), dims=("time", "latitude", "longitude"), coords=coords)

    truth, forecast, persistence = array(truths), array(forecasts), array(states)
    clim = _climatology_at(store, channel, valid)
    rmse, acc = metrics.RMSE(), metrics.ACC(climatology=clim)
    score = lambda metric, f: float(metric.compute(f, truth))  # noqa: E731
    return {
        "rmse": score(rmse, forecast),
        "acc": score(acc, forecast),
        "persistence_rmse": score(rmse, persistence),
        "persistence_acc": score(acc, persistence),
        "climatology_rmse": score(rmse, clim.transpose("time", "latitude", "longitude")),
    }


def summary(scores: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in scores.items())
