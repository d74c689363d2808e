"""Run a trained forecaster over initial states from a store and write a forecast store.

``run_forecast(checkpoint, data, init=("2020-01-01", "2020-01-31"), lead_hours=[6, 24])``
reads the initial states, rolls the model forward (autoregressively by default, or with direct
lead-time conditioning) and writes the forecast store (``climate_optics.stores``) with
provenance attributes, one (init, lead) slab at a time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from climate_optics.errors import UsageInputError
from climate_optics.io.models import load_forecaster
from climate_optics.io.windows import ZarrWindowSampler, open_store, time_step_hours
from climate_optics.models.forecaster import earlier_states
from climate_optics.provenance import provenance_attrs
from climate_optics.stores import ForecastStoreWriter
from data_catalog.cf import absolute_source
from data_catalog.errors import DataInputError
from data_catalog.store import check_target

_UNITS_HOURS = {"h": 1, "d": 24, "w": 168}


def parse_lead_times(text: str | Sequence[str | int]) -> list[int]:
    """``"6h,24h,3d"`` (or a list) -> [6, 24, 72] hours; a bare number means hours."""
    items = text.split(",") if isinstance(text, str) else list(text)
    hours = []
    for item in items:
        match = re.fullmatch(r"\s*(\d+)\s*([hdw]?)\s*", str(item).lower())
        if match is None or int(match.group(1)) <= 0:
            raise UsageInputError(f"--lead-times: {str(item).strip()!r} is not a lead time such as 6h, 24h or 5d")
        hours.append(int(match.group(1)) * _UNITS_HOURS[match.group(2) or "h"])
    if len(set(hours)) != len(hours):
        raise UsageInputError(f"--lead-times: repeated lead time in {text!r}")
    return hours


def parse_init(text: str) -> tuple[np.datetime64, np.datetime64]:
    """``"START:END"`` (ISO dates or times, inclusive) or one time -> (start, end)."""
    match = re.fullmatch(r"\s*(\S+?)(?::(\d{4}-\S*))?\s*", text)
    try:
        if match is None:
            raise ValueError(text)
        start = np.datetime64(match.group(1), "ns")
        end = np.datetime64(match.group(2) or match.group(1), "ns")
    except ValueError as exc:
        raise UsageInputError(f"--init: {text!r} is not START:END with ISO dates (e.g. 2020-01-01:2020-01-31)") from exc
    if end < start:
        raise UsageInputError(f"--init: end {end} is before start {start}")
    return start, end


def forecast_provenance(
    checkpoint: str | os.PathLike, state: dict[str, Any], source: str, extra: dict[str, Any]
) -> dict[str, Any]:
    train_config = state.get("train_config", {})
    engine = state.get("engine", {})
    mode = train_config.get("mode", "backprop")
    backend = mode if mode != "dfa" else f"dfa-{train_config.get('projector', 'structured')}"
    path = Path(checkpoint)
    return provenance_attrs(
        source_dataset=source,
        model_config=state["task"]["model_config"],
        training_backend=backend,
        opu_config=engine.get("opu_config") if isinstance(engine, dict) else None,
        checkpoint=path / "checkpoint.pt" if path.is_dir() else path,
        extra={"train_config": train_config, "trained_steps": int(state.get("step", 0)), **extra},
    )


def run_forecast(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    *,
    init: tuple[Any, Any],
    lead_hours: Sequence[int],
    out: str | os.PathLike,
    overwrite: bool = False,
    direct: bool = False,
    batch_size: int = 8,
    device: str = "cpu",
) -> Path:
    """Forecast from every store time in ``init`` (inclusive range) at ``lead_hours``; returns ``out``."""
    check_target(out, overwrite=overwrite)
    model, state = load_forecaster(checkpoint, device=device)
    config = model.config
    bad = [h for h in lead_hours if h % config.step_hours]
    if bad:
        raise UsageInputError(f"--lead-times: {bad[0]} h is not a multiple of the model step ({config.step_hours} h)")
    if not Path(data).exists():
        raise DataInputError("forecast input store does not exist", source=data)
    ds = open_store(data)
    grid = (ds.sizes.get("latitude"), ds.sizes.get("longitude"))
    if grid != tuple(config.grid):
        raise DataInputError(f"grid {grid} does not match the model's {tuple(config.grid)}", source=data)
    times = ds["time"].values
    start, end = np.datetime64(init[0], "ns"), np.datetime64(init[1], "ns")
    indices = np.flatnonzero((times >= start) & (times <= end))
    if indices.size == 0:
        raise DataInputError(
            f"no initial times between {start} and {end} (store covers {times[0]} to {times[-1]})", source=data
        )
    ips, back = 1, 0  # time indices per model step; the model's input history in time indices
    if config.history > 1:
        ips = max(1, config.step_hours // time_step_hours(ds, data))
        back = (config.history - 1) * ips
        if indices[0] < back:
            raise DataInputError(
                f"the model needs {config.history - 1} earlier state(s) {config.step_hours} h apart before the first initial time {times[indices[0]]}",
                source=data,
            )
    reader = ZarrWindowSampler(data, config.channels, starts=indices, group_chunks=1)
    static = None
    if config.static_channels:
        missing = [n for n in config.static_channels if n not in ds.data_vars]
        if missing:
            raise DataInputError("static field needed by the model is missing", source=data, variable=missing[0])
        static = torch.from_numpy(
            np.stack(
                [ds[n].transpose("latitude", "longitude").values.astype(np.float32) for n in config.static_channels]
            )
        )
    lead_hours = sorted(lead_hours)
    attrs = forecast_provenance(
        checkpoint,
        state,
        ds.attrs.get("source_dataset", absolute_source(data)),
        {
            "input_store": absolute_source(data),
            "rollout": "direct" if direct else "autoregressive",
            "step_hours": config.step_hours,
        },
    )
    writer = ForecastStoreWriter(
        out,
        channels=config.channels,
        init_times=times[indices],
        lead_times=np.asarray(lead_hours, dtype="timedelta64[h]"),
        latitude=ds["latitude"].values,
        longitude=ds["longitude"].values,
        attrs=attrs,
        overwrite=overwrite,
    )
    with writer:
        for first in range(0, indices.size, batch_size):
            batch_idx = indices[first : first + batch_size]
            span = reader.read_times(int(batch_idx[0]) - back, int(batch_idx[-1]) + 1)  # (T, C, H, W)
            local = batch_idx - batch_idx[0] + back  # (B,)
            state_now = torch.from_numpy(span[local]).to(device)  # (B, C, H, W)
            previous = earlier_states(span, local, config.history, ips)  # (B, history - 1, C, H, W) or None
            previous = None if previous is None else previous.to(device)
            stat = None if static is None else static[None].expand(len(batch_idx), -1, -1, -1).to(device)
            forecasts = model.rollout(state_now, list(lead_hours), stat, direct=direct, previous=previous)
            for lead_index, current in enumerate(forecasts):
                fields = current.float().cpu().numpy()  # (B, C, H, W)
                for b in range(len(batch_idx)):
                    writer.write(first + b, lead_index, fields[b])
    return Path(out)
