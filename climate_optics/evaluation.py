"""Score a forecast store against a truth, with persistence and climatology baselines.

``evaluate(forecast, truth, ...)`` returns the scores Dataset of ARCHITECTURE.md: one
variable per forecast variable (plus ``wind_vector``/``10m_wind_vector`` when both wind
components are scored), dimensions ``(model, metric, region, lead_time[, level])``.

Forecast and truth are aligned by valid time = init + lead. Work goes lead time by lead
time, variable by variable, in batches of init times: each batch of every model and of the
truth is read at once (dask, in parallel) and scored in numpy, every metric and region in one
kernel call; the per-init statistics are averaged over init times the WeatherBench 2 way (RMSE
is the square root of the mean MSE). Memory holds one batch of one variable per model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from climate_optics import baselines as reference
from climate_optics.errors import UsageInputError
from climate_optics.metrics import METRICS, Metric, WindVectorMSE, WindVectorRMSE, joint_statistics, make_metric
from climate_optics.regions import DEFAULT_REGIONS, resolve_regions
from climate_optics.spatial import AreaMean
from data_catalog.checks import check_not_all_nan
from data_catalog.errors import DataInputError
from data_catalog.schema import LATITUDE, LEVEL, LONGITUDE, PREDICTION_TIMEDELTA, REALIZATION, TIME

if TYPE_CHECKING:
    import xarray as xr

MODEL, METRIC, REGION, LEAD_TIME = "model", "metric", "region", "lead_time"
DETERMINISTIC_DEFAULT = ("rmse", "bias", "mae", "acc")
ENSEMBLE_DEFAULT = ("crps", "ensemble_mean_rmse", "ensemble_spread", "spread_skill_ratio")
NOT_IN_SCORES = {"rank_histogram": "it has a 'bin' dimension; call climate_optics.metrics.rank_histogram"}
WIND_PAIRS = (
    ("u_component_of_wind", "v_component_of_wind", "wind_vector"),
    ("10m_u_component_of_wind", "10m_v_component_of_wind", "10m_wind_vector"),
)
WIND_METRICS = {"mse": WindVectorMSE, "rmse": WindVectorRMSE}
BASELINES = ("persistence", "climatology")
NEEDS_MEMBERS = ("ensemble_spread", "spread_skill_ratio")  # undefined for a single member
DIMENSIONLESS = ("acc", "spread_skill_ratio")  # the others carry the variable's units (mse: squared)


def forecast_name(forecast: "xr.Dataset", default: str = "forecast") -> str:
    """The model label: attr ``model_name``, else ``vit-<training_backend>``, else ``default``."""
    attrs = forecast.attrs
    if attrs.get("model_name"):
        return str(attrs["model_name"])
    backend = str(attrs.get("training_backend") or "")
    if backend:
        return backend if backend.startswith("vit-") else f"vit-{backend}"
    return default


@dataclass
class _Plan:
    """What to score, decided and validated before any data is read."""

    variables: list[str]
    metrics: dict[str, Metric]
    area: AreaMean
    models: list[str]
    leads: np.ndarray
    inits: np.ndarray
    wind: list[tuple[str, str, str]] = field(default_factory=list)
    references: dict[str, "xr.Dataset"] = field(default_factory=dict)


def evaluate(
    forecast: "xr.Dataset",
    truth: "xr.Dataset",
    *,
    metrics: Sequence[str] | str | None = None,
    regions: Any = None,
    climatology: "xr.Dataset | None" = None,
    baselines: Sequence[str] | str | None = None,
    model_name: str | None = None,
    variables: Sequence[str] | None = None,
    land_sea_mask: Any = None,
    references: "dict[str, xr.Dataset] | None" = None,
    allow_in_sample_climatology: bool = False,
) -> "xr.Dataset":
    """Score ``forecast`` (forecast store layout) against ``truth`` (canonical, valid times).

    ``metrics``: names from ``climate_optics.metrics.METRICS`` (default: rmse, bias, mae, acc
    [acc only with a climatology], plus crps, ensemble_mean_rmse, ensemble_spread and
    spread_skill_ratio for ensembles). ``regions``: names or boxes (default:
    ``regions.DEFAULT_REGIONS``). ``climatology``: WeatherBench 2 layout, for ACC and the
    climatology baseline. ``baselines``: subset of (persistence, climatology); default both
    (climatology only when given). ``land_sea_mask``: for land/sea regions (default: the
    truth's static field). ``references``: further forecasts scored as models of their own
    (name -> forecast store Dataset on the same grid, holding the forecast's init times, lead
    times and variables), e.g. an interpolated forecast next to a downscaled one.
    A climatology whose recorded period (``climatology_period_start``/``_end``, written by
    ingest) overlaps the forecast's init times is refused unless ``allow_in_sample_climatology``.
    Forecast variables left out are named in the attribute ``skipped_variables``.
    """
    import xarray as xr

    forecast, truth = _standardise(forecast, "forecast"), _standardise(truth, "truth")
    if climatology is not None:
        climatology = _standardise(climatology, "climatology")
    references = {name: _standardise(ds, f"reference {name!r}") for name, ds in (references or {}).items()}
    plan = _plan(forecast, truth, metrics, regions, climatology, baselines, model_name, variables, land_sea_mask)
    plan.references = _check_references(forecast, references, plan)
    skipped = skipped_variables(forecast, truth, plan.variables)
    period = climatology_period(climatology)
    if climatology is not None:
        _check_out_of_sample(period, plan.inits, allow_in_sample_climatology)
    truth = truth[plan.variables]
    if LEVEL in forecast.dims and LEVEL in truth.dims:
        truth = truth.sel({LEVEL: forecast[LEVEL].values})
    truth = _truth_in_memory(truth, plan)
    climatology = _climatology_in_memory(climatology, plan)
    per_lead = [_score_lead(forecast, truth, climatology, plan, lead) for lead in plan.leads]
    scores = xr.concat(per_lead, dim=LEAD_TIME, data_vars="all", coords="minimal", join="outer")
    scores = scores.assign_coords({LEAD_TIME: plan.leads.astype("timedelta64[ns]")})
    order = [MODEL, METRIC, REGION, LEAD_TIME]
    scores = scores.transpose(*order, ...)
    scores.attrs.update(
        {
            "time_mean": "WeatherBench 2: statistics averaged over init times, then finalised (RMSE = sqrt of mean MSE)",
            "n_init_times": int(plan.inits.size),
            "first_init_time": str(plan.inits[0]),
            "last_init_time": str(plan.inits[-1]),
            "ensemble_size": int(forecast.sizes.get(REALIZATION, 1)),
            "area_weights": "cell area from latitude bounds, normalised to mean 1",
            "climatology_period": "none" if climatology is None else "/".join(period) if period else "not recorded",
            "skipped_variables": "; ".join(skipped),
        }
    )
    if climatology is not None and period:
        scores.attrs["climatology_in_sample"] = int(_overlaps(period, plan.inits))
    return describe(scores, forecast)


def metric_units(metric: str, units: str | None) -> str:
    """Units of a metric of a variable in ``units``: "1" for dimensionless metrics, "unknown" when not given."""
    if metric in DIMENSIONLESS:
        return "1"
    if not units:
        return "unknown"
    return f"({units})2" if metric == "mse" else units


def describe(scores: "xr.Dataset", forecast: "xr.Dataset") -> "xr.Dataset":
    """CF attributes: coordinates described; each variable's metric units listed (no single ``units``:
    its metrics differ, and the dimensionless ones have none)."""
    from data_catalog.cf import cf_attributes

    scores = cf_attributes(scores, variables=False)
    for name, da in scores.data_vars.items():
        source = forecast[name] if name in forecast.data_vars else None
        units = source.attrs.get("units") if source is not None else _wind_units(forecast, str(name))
        da.attrs = {"long_name": f"skill scores of {name}",
                    "metric_units": "; ".join(f"{m}: {metric_units(str(m), units)}" for m in scores[METRIC].values)}
        if source is not None and source.attrs.get("standard_name"):
            da.attrs["forecast_standard_name"] = source.attrs["standard_name"]
    return scores


def _wind_units(forecast: "xr.Dataset", vector: str) -> str | None:
    """Units of the wind components of a wind-vector score."""
    for u, _, name in WIND_PAIRS:
        if name == vector and u in forecast.data_vars:
            return forecast[u].attrs.get("units")
    return None


# ----------------------------------------------------------------------------- validation


def _standardise(ds: "xr.Dataset", what: str) -> "xr.Dataset":
    """WeatherBench 2 spellings -> ours; latitude ascending (a lazy reversal if needed)."""
    ds = ds.rename({k: v for k, v in {"init_time": TIME, "lead_time": PREDICTION_TIMEDELTA}.items() if k in ds.dims})
    for dim in (LATITUDE, LONGITUDE):
        if dim not in ds.dims:
            raise DataInputError(f"{what} has no {dim!r} dimension (dims: {', '.join(map(str, ds.dims))})")
    lat = ds[LATITUDE].values
    if lat.size > 1 and lat[0] > lat[-1]:
        ds = ds.isel({LATITUDE: slice(None, None, -1)})
    return ds


def _plan(forecast, truth, metrics, regions, climatology, baselines, model_name, variables, land_sea_mask) -> _Plan:
    if PREDICTION_TIMEDELTA not in forecast.dims or TIME not in forecast.dims:
        raise DataInputError(
            f"forecast needs dims time (init) and prediction_timedelta (lead); has {', '.join(map(str, forecast.dims))}"
        )
    if TIME not in truth.dims:
        raise DataInputError(f"truth has no 'time' dimension (dims: {', '.join(map(str, truth.dims))})")
    if REALIZATION in truth.dims:
        raise DataInputError(f"truth has {truth.sizes[REALIZATION]} ensemble members (realization); expected one"
                             " analysis per time (select a member or the ensemble mean)")
    scored = [v for v in forecast.data_vars if PREDICTION_TIMEDELTA in forecast[v].dims]
    if variables is not None:
        absent = [v for v in variables if v not in scored]
        if absent:
            raise DataInputError(f"forecast has no variable {absent[0]!r} (forecast variables: {', '.join(scored)})")
        scored = list(variables)
    if not scored:
        raise DataInputError("forecast has no variable with a prediction_timedelta dimension")
    _check_truth_has(forecast, truth, scored)
    _check_units(forecast, truth, scored)
    _check_grid(forecast, truth, "truth")
    check_not_all_nan(forecast[scored], "forecast")
    if climatology is not None:
        _check_grid(forecast, climatology, "climatology")

    ensemble = REALIZATION in forecast.dims
    metric_objs = _metrics(metrics, climatology, ensemble and forecast.sizes[REALIZATION] > 1)
    models = [model_name or forecast_name(forecast)] + _baselines(baselines, climatology)
    if len(set(models)) != len(models):
        raise UsageInputError(f"model name {models[0]!r} clashes with a baseline name")

    lsm = land_sea_mask
    if lsm is None and "land_sea_mask" in truth.data_vars:
        lsm = truth["land_sea_mask"]
        lsm = lsm.isel({d: 0 for d in lsm.dims if d not in (LATITUDE, LONGITUDE)})
    area = AreaMean.build(forecast[LATITUDE], forecast[LONGITUDE], resolve_regions(regions or list(DEFAULT_REGIONS)), lsm)

    inits = forecast.indexes[TIME].values
    leads = forecast.indexes[PREDICTION_TIMEDELTA].values
    for lead in leads:  # fail before any computation
        reference.truth_at(truth, reference.valid_times(inits, lead), what=f"valid time (lead {_hours(lead)})")
    if "persistence" in models:
        reference.truth_at(truth, reference.valid_times(inits, leads[:1])[TIME], what="initialisation time (persistence)")
    if climatology is not None:  # variables, levels, days and hours present
        reference.climatology_at(climatology, reference.valid_times(inits, leads), like=forecast[scored])
    wind = [p for p in WIND_PAIRS if p[0] in scored and p[1] in scored] if set(WIND_METRICS) & set(metric_objs) else []
    return _Plan(scored, metric_objs, area, models, leads, inits, wind)


def _check_references(forecast, references: dict[str, "xr.Dataset"], plan: _Plan) -> dict[str, "xr.Dataset"]:
    """References on the forecast's grid, with its variables, levels, init and lead times (selected, lazily);
    their names join the scored models after the forecast."""
    chosen = {}
    for name, ref in references.items():
        if name in plan.models:
            raise UsageInputError(f"reference name {name!r} clashes with the name of another scored model")
        what = f"reference {name!r}"
        _check_grid(forecast, ref, what)
        for dim, values in ((TIME, plan.inits), (PREDICTION_TIMEDELTA, plan.leads)):
            have = ref.indexes[dim].values if dim in ref.dims else np.array([], dtype=values.dtype)
            missing = np.setdiff1d(values, have)
            if missing.size:
                raise DataInputError(f"{what} lacks {dim} {missing[0]} of the forecast")
        for var in plan.variables:
            levels = forecast[LEVEL].values if LEVEL in forecast[var].dims else []
            if var not in ref.data_vars or (len(levels) and np.setdiff1d(levels, ref[var][LEVEL].values if LEVEL in ref[var].dims else []).size):
                raise DataInputError(f"{what} lacks variable {var!r}{' at every forecast level' if len(levels) else ''}", variable=var)
        ref = ref[plan.variables].sel({TIME: plan.inits})
        chosen[name] = ref.sel({LEVEL: forecast[LEVEL].values}) if LEVEL in ref.dims and LEVEL in forecast.dims else ref
    plan.models[1:1] = list(chosen)
    return chosen


def _check_truth_has(forecast, truth, names: list[str]) -> None:
    for name in names:
        if name not in truth.data_vars:
            raise DataInputError(f"truth has no variable {name!r} (truth variables: {', '.join(map(str, truth.data_vars))})")
        if LEVEL in forecast[name].dims:
            if LEVEL not in truth[name].dims:
                raise DataInputError(f"forecast has levels but truth has no level dimension", variable=name)
            missing = np.setdiff1d(forecast[LEVEL].values, truth[LEVEL].values)
            if missing.size:
                raise DataInputError(
                    f"truth has no level {missing[0]} (truth levels: {', '.join(map(str, truth[LEVEL].values))})", variable=name
                )


def _check_units(forecast, truth, names: list[str]) -> None:
    """Forecast and truth in the same units (where both say)."""
    from data_catalog.units import normalise

    for name in names:
        mine, theirs = forecast[name].attrs.get("units"), truth[name].attrs.get("units")
        if mine is not None and theirs is not None and normalise(str(mine)) != normalise(str(theirs)):
            raise DataInputError(f"forecast units {mine!r} differ from the truth's {theirs!r}; expected the same units"
                                 " (convert the forecast)", variable=name)


def skipped_variables(forecast, truth, scored: list[str]) -> list[str]:
    """'name (why)' for every forecast or truth field not scored."""
    skipped = [f"{v} (forecast: not requested)" if PREDICTION_TIMEDELTA in forecast[v].dims
               else f"{v} (forecast: no prediction_timedelta)" for v in forecast.data_vars if v not in scored]
    skipped += [f"{v} (truth: not in the forecast)" for v in truth.data_vars
                if v not in forecast.data_vars and TIME in truth[v].dims]
    return skipped


def climatology_period(climatology) -> tuple[str, str] | None:
    """(start, end) recorded by ingest in the climatology's attributes, or None."""
    if climatology is None:
        return None
    start, end = climatology.attrs.get("climatology_period_start"), climatology.attrs.get("climatology_period_end")
    return (str(start), str(end)) if start and end else None


def _overlaps(period: tuple[str, str], inits: np.ndarray) -> bool:
    start, end = (np.datetime64(t, "ns") for t in period)
    return bool(start <= inits.max() and end >= inits.min())


def _check_out_of_sample(period: tuple[str, str] | None, inits: np.ndarray, allow: bool) -> None:
    if period is None or allow or not _overlaps(period, inits):
        return
    first, last = (np.datetime_as_string(t, unit="m") for t in (inits.min(), inits.max()))
    raise DataInputError(f"the climatology's period {period[0]}..{period[1]} overlaps the forecast's init times"
                         f" {first}..{last}: an in-sample climatology flatters ACC and the climatology baseline;"
                         " build one from other times (ingest --climatology-period START:END) or pass"
                         " --allow-in-sample-climatology")


def _check_grid(forecast, other, what: str) -> None:
    for dim in (LATITUDE, LONGITUDE):
        a, b = forecast[dim].values, other[dim].values
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
            raise DataInputError(
                f"grids differ: forecast {dim} has {a.size} points ({a.min():g}..{a.max():g}), "
                f"{what} has {b.size} ({b.min():g}..{b.max():g}); regrid one of them first"
            )


def _metrics(names, climatology, ensemble: bool) -> dict[str, Metric]:
    if names is None:
        names = [n for n in DETERMINISTIC_DEFAULT if n != "acc" or climatology is not None]
        names += list(ENSEMBLE_DEFAULT) if ensemble else []
    elif isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out: dict[str, Metric] = {}
    for name in names:
        if name in NOT_IN_SCORES:
            raise UsageInputError(f"metric {name!r} cannot go into a scores store: {NOT_IN_SCORES[name]}")
        if name in NEEDS_MEMBERS and not ensemble:
            raise UsageInputError(f"metric {name!r} needs an ensemble forecast of several members (a realization"
                                  " dimension); this forecast has one member")
        if name == "acc" and climatology is None:
            raise UsageInputError("metric 'acc' needs a climatology (--climatology STORE, or a truth store with a climatology group)")
        out[name] = make_metric(name, climatology=climatology) if name == "acc" else make_metric(name)
    if not out:
        raise UsageInputError(f"no metrics given; available: {', '.join(m for m in METRICS if m not in NOT_IN_SCORES)}")
    return out


def _baselines(names, climatology) -> list[str]:
    if names is None:
        return ["persistence"] + (["climatology"] if climatology is not None else [])
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip() and n.strip() != "none"]
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise UsageInputError(f"unknown baseline {unknown[0]!r}; available: {', '.join(BASELINES)}")
    if "climatology" in names and climatology is None:
        raise UsageInputError("the climatology baseline needs a climatology (--climatology STORE)")
    return list(dict.fromkeys(names))


def _hours(lead: np.timedelta64) -> str:
    return f"{lead / np.timedelta64(1, 'h'):g} h"


# ----------------------------------------------------------------------------- scoring


BATCH_BYTES = 64 * 2**20  # init times scored together: about this many bytes of one model's variable


def _score_lead(forecast, truth, climatology, plan: _Plan, lead) -> "xr.Dataset":
    """Scores for one lead time: dims (model, metric, region[, level]).

    Variable by variable and batch of init times by batch (``BATCH_BYTES``), every model's fields
    and the verifying truth are read together (one dask compute, parallel reads) and scored in
    numpy, all metrics and regions in one kernel call per model; the per-init statistics are then
    averaged over init times and finalised. Memory holds one batch of one variable per model.
    """
    import xarray as xr

    inits = forecast[TIME]
    valid = {"valid_time": (TIME, (inits + lead).values)}  # for ACC's climatology
    verifying = _bare(reference.verifying_truth(truth, inits, lead)).assign_coords(valid)
    inputs = {model: _bare(_model_input(model, forecast, truth, climatology, plan, lead)).assign_coords(valid)
              for model in plan.models}
    per_init: dict[tuple[str, str, str], list[dict]] = {}  # (model, variable, metric) -> statistics of each batch
    finalizers: dict[tuple[str, str, str], Metric] = {}
    for var in plan.variables:
        for batch in _init_batches(forecast[var]):
            *fields, truth_batch = _load([inputs[m][var].isel({TIME: batch}) for m in plan.models]
                                         + [verifying[var].isel({TIME: batch})])
            known = fields[plan.models.index("climatology")] if "climatology" in plan.models else None
            metrics = _aligned_climatology(plan.metrics, fields[0], known)
            for model, fc in zip(plan.models, fields):
                for (name, metric), stats in zip(metrics.items(), joint_statistics(list(metrics.values()), fc, truth_batch, plan.area)):
                    per_init.setdefault((model, var, name), []).append(stats)
                    finalizers[(model, var, name)] = metric
    for u, v, vector in plan.wind:
        winds = {name: WIND_METRICS[name](u_name=u, v_name=v) for name in WIND_METRICS if name in plan.metrics}
        for batch in _init_batches(forecast[u], parts=2):
            *fields, truth_batch = _load([inputs[m][[u, v]].isel({TIME: batch}) for m in plan.models]
                                         + [verifying[[u, v]].isel({TIME: batch})])
            for model, fc in zip(plan.models, fields):
                for name, metric in winds.items():
                    per_init.setdefault((model, vector, name), []).append(metric.statistics(fc, truth_batch, plan.area))
                    finalizers[(model, vector, name)] = metric
    computed = {key: finalizers[key].finalize({k: _joined(b[k] for b in batches).mean(TIME, skipna=False) for k in batches[0]})
                for key, batches in per_init.items()}
    return xr.Dataset({var: _stacked(computed, var, plan) for var in [*plan.variables, *(p[2] for p in plan.wind)]})


def _joined(parts: Iterator["xr.DataArray"]) -> "xr.DataArray":
    """Per-init statistics of the batches along init time (one batch: as it is)."""
    import xarray as xr

    parts = list(parts)
    return parts[0] if len(parts) == 1 else xr.concat(parts, TIME)


def _stacked(computed: dict[tuple[str, str, str], "xr.DataArray"], var: str, plan: _Plan) -> "xr.DataArray":
    """One variable's scores as (model, metric, ...): NaN where a metric does not apply to a model."""
    import xarray as xr

    found = {(model, name): da for (model, v, name), da in computed.items() if v == var}
    first = next(iter(found.values()))
    dtype = np.result_type(*(da.dtype for da in found.values()), np.float32)
    data = np.full((len(plan.models), len(plan.metrics), *first.shape), np.nan, dtype=dtype)
    for i, model in enumerate(plan.models):
        for j, name in enumerate(plan.metrics):
            if (model, name) in found:
                data[i, j] = found[(model, name)].transpose(*first.dims).values
    coords = {MODEL: plan.models, METRIC: list(plan.metrics), **{d: first[d].values for d in first.dims if d in first.coords}}
    return xr.DataArray(data, dims=(MODEL, METRIC, *first.dims), coords=coords)


TRUTH_IN_MEMORY_BYTES = 256 * 2**20  # truth at the times scored is read once when no larger than this


def _truth_in_memory(truth: "xr.Dataset", plan: _Plan) -> "xr.Dataset":
    """The truth at the times the scores need (init times and valid times), read once when small:
    each lead then selects from memory instead of reading the same truth chunks again."""
    needed = np.union1d(plan.inits, reference.valid_times(plan.inits, plan.leads).values.ravel())
    subset = truth.sel({TIME: needed})
    if subset.nbytes > TRUTH_IN_MEMORY_BYTES:
        return truth
    return xr_load(subset)


def _climatology_in_memory(climatology: "xr.Dataset | None", plan: _Plan) -> "xr.Dataset | None":
    """The climatology at the days of year and hours of the scored valid times, read once when small
    (its WeatherBench 2 layout kept, so that selection by valid time works as before)."""
    if climatology is None or "dayofyear" not in climatology.dims:
        return climatology
    import pandas as pd

    valid = pd.DatetimeIndex(reference.valid_times(plan.inits, plan.leads).values.ravel())
    wanted = {"dayofyear": np.unique(valid.day_of_year)}
    if "hour" in climatology.dims:
        wanted["hour"] = np.unique(valid.hour)
    if any(np.setdiff1d(v, climatology.indexes[d].values).size for d, v in wanted.items()):
        return climatology  # scoring names what is missing
    subset = climatology.sel(wanted)
    return climatology if subset.nbytes > TRUTH_IN_MEMORY_BYTES else xr_load(subset)


def xr_load(ds: "xr.Dataset") -> "xr.Dataset":
    """``ds`` in memory: dask-backed variables in one compute, the others one read each."""
    import dask

    return dask.compute(ds)[0] if any(v.chunks for v in ds.data_vars.values()) else ds.load()


def _model_input(model: str, forecast, truth, climatology, plan: _Plan, lead) -> "xr.Dataset":
    """The lazy fields of one scored model at one lead time."""
    if model == "persistence":
        return reference.persistence(truth, forecast[TIME], lead)
    if model == "climatology":
        return reference.climatology_forecast(climatology, forecast[TIME], lead, like=forecast[plan.variables])
    if model in plan.references:
        return plan.references[model].sel({PREDICTION_TIMEDELTA: lead}, drop=True)
    return forecast[plan.variables].sel({PREDICTION_TIMEDELTA: lead}, drop=True)


def _init_batches(da: "xr.DataArray", parts: int = 1) -> list[slice]:
    """Slices of init times holding about ``BATCH_BYTES`` of ``da`` at one lead (``parts`` variables at once)."""
    per_init = da.dtype.itemsize * int(np.prod([n for d, n in da.sizes.items() if d not in (TIME, PREDICTION_TIMEDELTA)]))
    size = max(1, BATCH_BYTES // max(1, per_init * parts))
    n = da.sizes[TIME]
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _load(items: list[Any]) -> list[Any]:
    """Read lazy arrays: dask-backed ones together (one compute), the others (stores opened without
    dask) one zarr read each."""
    import dask

    lazy = [i for i, item in enumerate(items) if item.chunks]
    out = [item if item.chunks else item.load() for item in items]
    for i, value in zip(lazy, dask.compute(*(items[i] for i in lazy))):
        out[i] = value
    return out


def _aligned_climatology(metrics: dict[str, Metric], like: "xr.DataArray", known: "xr.DataArray | None") -> dict[str, Metric]:
    """The metrics, those needing a climatology given it at ``like``'s valid times, read once per batch
    (``known``: the climatology baseline's fields of this batch, the same values, when it is scored)."""
    import dataclasses

    from climate_optics.baselines import climatology_like

    out = dict(metrics)
    for name, metric in metrics.items():
        if metric.needs_climatology and "dayofyear" in getattr(metric.climatology, "dims", {}):
            if known is None:
                (known,) = _load([climatology_like(metric.climatology, like)])
            out[name] = dataclasses.replace(metric, climatology=known.rename(like.name))
    return out


def _bare(ds: "xr.Dataset") -> "xr.Dataset":
    return ds.drop_vars([c for c in ds.coords if c not in ds.dims])

