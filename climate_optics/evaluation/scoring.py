"""The scoring engine behind ``climate_optics.evaluation.evaluate_datasets.evaluate``: batches read once, scored in numpy.

Variable by variable, in batches of (init times x lead times) of about ``BATCH_BYTES`` per model,
every model's fields and the verifying truth are read together and scored in one kernel call per
model (every metric, region and lead at once, ``metrics.joint_statistics``). Per-init statistics
are averaged over init times the WeatherBench 2 way and finalised. Memory holds one batch of one
variable per model, plus the truth and climatology at the scored times when they are small
(``IN_MEMORY_BYTES``), read once instead of once per lead.

Stores opened without dask (``chunks=None``) are read with one zarr call per selection, which
fetches its chunks concurrently; dask-backed inputs are computed together, one compute per batch.
On a dask.distributed client (``climate_optics.cluster``) each batch is one task on a worker, which
reads its own part of the stores; the results are the same numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from climate_optics.cluster import current_client
from climate_optics.evaluation import baselines as reference
from climate_optics.evaluation.baselines import climatology_like
from climate_optics.evaluation.metrics import Metric, WindVectorMSE, WindVectorRMSE, joint_statistics
from data_catalog.schema import PREDICTION_TIMEDELTA, TIME

BATCH_BYTES = (
    16 * 2**20
)  # fields of one variable and one model read and scored together (the kernel holds several copies)
IN_MEMORY_BYTES = 256 * 2**20  # truth (and climatology) at the scored times are read once when no larger
WIND_METRICS = {"mse": WindVectorMSE, "rmse": WindVectorRMSE}
LEAD = PREDICTION_TIMEDELTA
CLIMATOLOGY_MARK = "_climatology_baseline"  # attribute of the climatology baseline's fields


def score_leads(forecast, truth, climatology, plan) -> dict[str, "xr.DataArray"]:
    """{variable: scores (model, metric, prediction_timedelta, [level,] region)} for every lead of ``plan``."""

    leads = xr.DataArray(plan.leads, dims=LEAD, coords={LEAD: plan.leads})
    valid = reference.valid_times(forecast[TIME], leads)  # (time, lead): for ACC's climatology
    valid = {"valid_time": valid.drop_vars(list(valid.coords))}
    verifying = _bare(reference.verifying_truth(truth, forecast[TIME], leads)).assign_coords(valid)
    inputs = {
        m: _bare(_model_input(m, forecast, truth, climatology, plan, leads)).assign_coords(valid) for m in plan.models
    }
    keys, units = [], []  # (variable, first lead of the batch); (function, arguments) of each batch
    for var in plan.variables:
        for inits, lead_batch in batches(forecast[var]):
            where = {TIME: inits, LEAD: lead_batch}
            keys.append((var, lead_batch.start))
            units.append(
                (
                    variable_batch,
                    (
                        [_isel(inputs[m][var], where) for m in plan.models],
                        verifying[var].isel(where),
                        plan.metrics,
                        plan.area,
                    ),
                )
            )
    finalizers = {(var, name): metric for var in plan.variables for name, metric in plan.metrics.items()}
    for u, v, vector in plan.wind:
        winds = {name: WIND_METRICS[name](u_name=u, v_name=v) for name in WIND_METRICS if name in plan.metrics}
        finalizers.update({(vector, name): metric for name, metric in winds.items()})
        for inits, lead_batch in batches(forecast[u], parts=2):
            where = {TIME: inits, LEAD: lead_batch}
            keys.append((vector, lead_batch.start))
            units.append(
                (
                    wind_batch,
                    (
                        [_isel(inputs[m][[u, v]], where) for m in plan.models],
                        verifying[[u, v]].isel(where),
                        winds,
                        plan.area,
                    ),
                )
            )
    per_init: dict[tuple, list] = {}  # (model, variable, metric, lead batch) -> statistics of each init batch
    for (var, lead_start), result in zip(keys, run(units)):
        per_model = len(result) // len(plan.models)
        for model, (name, stats) in zip([m for m in plan.models for _ in range(per_model)], result):
            per_init.setdefault((model, var, name, lead_start), []).append(stats)
    computed: dict[tuple, list] = {}
    for (model, var, name, _), parts in sorted(per_init.items(), key=lambda item: item[0][3]):  # lead batches in order
        mean = {k: _joined([p[k] for p in parts], TIME).mean(TIME, skipna=False) for k in parts[0]}
        computed.setdefault((model, var, name), []).append(finalizers[(var, name)].finalize(mean))
    computed = {key: _joined(parts, LEAD) for key, parts in computed.items()}
    return {var: _stacked(computed, var, plan) for var in [*plan.variables, *(p[2] for p in plan.wind)]}


def variable_batch(fields: list, truth: "xr.DataArray", metrics: dict[str, Metric], area) -> list[tuple[str, dict]]:
    """One batch of one variable: [(metric name, per-init statistics)] for each model in turn."""
    *fields, truth = load([*fields, truth])
    known = next((f for f in fields if f.attrs.get(CLIMATOLOGY_MARK)), None)
    metrics = _aligned_climatology(metrics, fields[0], known)
    return [
        (name, stats)
        for fc in fields
        for name, stats in zip(metrics, joint_statistics(list(metrics.values()), fc, truth, area))
    ]


def wind_batch(fields: list, truth: "xr.Dataset", winds: dict[str, Metric], area) -> list[tuple[str, dict]]:
    """One batch of a wind pair: [(metric name, per-init statistics)] for each model in turn."""
    *fields, truth = load([*fields, truth])
    return [(name, metric.statistics(fc, truth, area)) for fc in fields for name, metric in winds.items()]


def run(units: list[tuple[Any, tuple]]) -> list[Any]:
    """Every unit's result, in order: here, or one task per unit on the current distributed client."""

    client = current_client()
    if client is None:
        return [fn(*args) for fn, args in units]
    return client.gather([client.submit(_on_worker, fn, *args, pure=False) for fn, args in units])


def _on_worker(fn, *args):
    """A unit on a worker: dask inputs computed there, with the synchronous scheduler."""

    with dask.config.set(scheduler="synchronous"):
        return fn(*args)


def batches(da: "xr.DataArray", parts: int = 1) -> list[tuple[slice, slice]]:
    """(init slice, lead slice) pairs holding about ``BATCH_BYTES`` of ``da`` (``parts`` variables at once):
    all leads of several inits while they fit, else several leads of one init."""
    field = parts * da.dtype.itemsize * int(np.prod([n for d, n in da.sizes.items() if d not in (TIME, LEAD)]))
    n_init, n_lead = da.sizes[TIME], da.sizes[LEAD]
    leads_per = min(n_lead, max(1, BATCH_BYTES // max(1, field)))
    inits_per = max(1, BATCH_BYTES // max(1, field * n_lead)) if leads_per == n_lead else 1
    return [
        (slice(i, min(i + inits_per, n_init)), slice(j, min(j + leads_per, n_lead)))
        for j in range(0, n_lead, leads_per)
        for i in range(0, n_init, inits_per)
    ]


def load(items: list[Any]) -> list[Any]:
    """Read lazy arrays: dask-backed ones together (one compute), the others one zarr read each."""

    lazy = [i for i, item in enumerate(items) if item.chunks]
    out = [item if item.chunks else item.load() for item in items]
    for i, value in zip(lazy, dask.compute(*(items[i] for i in lazy))):
        out[i] = value
    return out


def load_dataset(ds: "xr.Dataset") -> "xr.Dataset":
    """``ds`` in memory: dask-backed variables in one compute, the others one read each."""

    return dask.compute(ds)[0] if any(v.chunks for v in ds.data_vars.values()) else ds.load()


def truth_in_memory(truth: "xr.Dataset", plan) -> "xr.Dataset":
    """The truth at the times the scores need (init and valid times), read once when small (not on a cluster)."""

    if current_client() is not None:
        return truth  # the workers read their own parts
    needed = np.union1d(plan.inits, reference.valid_times(plan.inits, plan.leads).values.ravel())
    subset = truth.sel({TIME: needed})
    return truth if subset.nbytes > IN_MEMORY_BYTES else load_dataset(subset)


def climatology_in_memory(climatology: "xr.Dataset | None", plan) -> "xr.Dataset | None":
    """The climatology at the days of year and hours of the scored valid times, read once when small
    (its WeatherBench 2 layout kept, so that selection by valid time works as before)."""

    if climatology is None or "dayofyear" not in climatology.dims or current_client() is not None:
        return climatology

    valid = pd.DatetimeIndex(reference.valid_times(plan.inits, plan.leads).values.ravel())
    wanted = {"dayofyear": np.unique(valid.day_of_year)}
    if "hour" in climatology.dims:
        wanted["hour"] = np.unique(valid.hour)
    if any(np.setdiff1d(v, climatology.indexes[d].values).size for d, v in wanted.items()):
        return climatology  # scoring names what is missing
    subset = climatology.sel(wanted)
    return climatology if subset.nbytes > IN_MEMORY_BYTES else load_dataset(subset)


def _model_input(model: str, forecast, truth, climatology, plan, leads) -> "xr.Dataset":
    """The lazy fields of one scored model at every lead: dims (time, [prediction_timedelta,] ...)."""
    if model == "persistence":  # the truth at init: one field for every lead (broadcast by the kernel, not copied)
        return reference.persistence(truth, forecast[TIME], np.timedelta64(0, "ns"))
    if model == "climatology":  # marked: its fields are ACC's climatology too (read once per batch)
        clim = reference.climatology_forecast(climatology, forecast[TIME], leads, like=forecast[plan.variables]).copy()
        for da in clim.data_vars.values():
            da.attrs[CLIMATOLOGY_MARK] = 1
        return clim
    if model in plan.references:
        return plan.references[model].sel({LEAD: plan.leads})
    return forecast[plan.variables]  # plan.leads are its leads: no selection (which would copy fields held in memory)


def _aligned_climatology(
    metrics: dict[str, Metric], like: "xr.DataArray", known: "xr.DataArray | None"
) -> dict[str, Metric]:
    """The metrics, those needing a climatology given it at ``like``'s valid times, read once per batch
    (``known``: the climatology baseline's fields of this batch, the same values, when it is scored)."""

    out = dict(metrics)
    for name, metric in metrics.items():
        if metric.needs_climatology and "dayofyear" in getattr(metric.climatology, "dims", {}):
            if known is None:
                (known,) = load([climatology_like(metric.climatology, like)])
            out[name] = dataclasses.replace(metric, climatology=known.rename(like.name))
    return out


def _isel(obj, where: dict[str, slice]):
    """``obj.isel`` over the dimensions it has (persistence has no lead dimension)."""
    return obj.isel({d: s for d, s in where.items() if d in obj.dims})


def _joined(parts: list["xr.DataArray"], dim: str) -> "xr.DataArray":

    return parts[0] if len(parts) == 1 else xr.concat(parts, dim)


def _stacked(computed: dict[tuple[str, str, str], "xr.DataArray"], var: str, plan) -> "xr.DataArray":
    """One variable's scores as (model, metric, ...): NaN where a metric does not apply to a model."""

    found = {(model, name): da for (model, v, name), da in computed.items() if v == var}
    first = next(iter(found.values()))
    dtype = np.result_type(*(da.dtype for da in found.values()), np.float32)
    data = np.full((len(plan.models), len(plan.metrics), *first.shape), np.nan, dtype=dtype)
    for i, model in enumerate(plan.models):
        for j, name in enumerate(plan.metrics):
            if (model, name) in found:
                data[i, j] = found[(model, name)].transpose(*first.dims).values
    coords = {
        "model": plan.models,
        "metric": list(plan.metrics),
        **{d: first[d].values for d in first.dims if d in first.coords},
    }
    return xr.DataArray(data, dims=("model", "metric", *first.dims), coords=coords)


def _bare(ds: "xr.Dataset") -> "xr.Dataset":
    return ds.drop_vars([c for c in ds.coords if c not in ds.dims])
