"""Quick in-memory skill of a forecaster on held-out times, against persistence and climatology.

Used by the skill test and the DFA study and skill benchmarks: the forecasts are rolled out on the
validation split of an ingested store and scored by ``evaluate_datasets.evaluate``, the same path as
``climate-optics evaluate`` and the flows (latitude-weighted RMSE, square root after the time mean;
uncentred ACC against the store's climatology).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import xarray as xr

from climate_optics.evaluation.evaluate_datasets import evaluate
from climate_optics.io.channels import parse_channel
from climate_optics.io.windows import ZarrWindowSampler, open_store
from climate_optics.models.forecaster import Forecaster, earlier_states
from data_catalog.stats import read_climatology


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
    """RMSE and ACC of ``model`` for ``channel`` at ``lead_hours`` from ``n_init`` initial times >= ``start``,
    scored by ``evaluate`` like every forecast store (latitude-weighted RMSE, sqrt after the time mean;
    uncentred ACC against the store's climatology) with its persistence and climatology baselines.

    Autoregressive rollout by default; ``direct=True`` uses one lead-conditioned step.

    Returns ``rmse``, ``acc``, ``persistence_rmse``, ``persistence_acc``, ``climatology_rmse``.
    """
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
        static = torch.from_numpy(np.stack([ds[n].values.astype(np.float32) for n in config.static_channels])).to(
            device
        )
    forecasts = []
    model.eval()
    for first in range(0, inits.size, batch_size):
        idx = inits[first : first + batch_size]
        first_t = int(idx[0]) - back
        span = reader.read_times(first_t, int(idx[-1]) + 1)  # (T, C, H, W)
        local = idx - first_t  # (B,)
        state = torch.from_numpy(span[local]).to(device)  # (B, C, H, W)
        previous = earlier_states(span, local, config.history, ips)  # (B, history - 1, C, H, W) or None
        previous = None if previous is None else previous.to(device)
        stat = None if static is None else static[None].expand(len(idx), -1, -1, -1)
        forecasts.append(
            model.rollout(state, [lead_hours], stat, direct=direct, previous=previous)[0][:, c].float().cpu().numpy()
        )
    return _score(np.concatenate(forecasts), ds, store, channel, inits, k, lead_hours)


def _score(
    forecast: np.ndarray, ds: Any, store: str | os.PathLike, channel: str, inits: np.ndarray, k: int, lead_hours: int
) -> dict[str, float]:
    """RMSE and ACC of ``forecast`` (n_init, H, W) through ``evaluate`` (the one scoring path), with its baselines."""

    var, level = parse_channel(channel)
    levels = {} if level is None else {"level": [level]}
    dims = ("time", "prediction_timedelta", *levels, "latitude", "longitude")
    values = forecast[:, None, None] if level is not None else forecast[:, None]  # (n_init, 1, [1,] H, W)
    coords = {
        "time": ds["time"].values[inits],
        "prediction_timedelta": [np.timedelta64(lead_hours, "h")],
        **levels,
        "latitude": ds["latitude"].values,
        "longitude": ds["longitude"].values,
    }
    prediction = xr.Dataset({var: (dims, values)}, coords=coords)
    truth = ds[[var]].isel(time=np.union1d(inits, inits + k))
    climatology = read_climatology(store)[[var]]
    if level is not None:
        truth, climatology = truth.sel(level=[level]), climatology.sel(level=[level])
    # The store's own climatology includes the held-out times: this quick score allows it (evaluate refuses by default).
    scores = (
        evaluate(
            prediction,
            truth,
            climatology=climatology,
            metrics=["rmse", "acc"],
            regions=["global"],
            model_name="model",
            allow_in_sample_climatology=True,
        )[var]
        .isel(lead_time=0)
        .sel(region="global")
    )
    if level is not None:
        scores = scores.sel(level=level)
    value = lambda model, metric: float(scores.sel(model=model, metric=metric))  # noqa: E731
    return {
        "rmse": value("model", "rmse"),
        "acc": value("model", "acc"),
        "persistence_rmse": value("persistence", "rmse"),
        "persistence_acc": value("persistence", "acc"),
        "climatology_rmse": value("climatology", "rmse"),
    }


def summary(scores: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in scores.items())
