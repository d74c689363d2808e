"""Score a forecast store against a truth, with persistence and climatology baselines.

``evaluate(forecast, truth, ...)`` returns the scores Dataset of docs/architecture.md: one
variable per forecast variable (plus ``wind_vector``/``10m_wind_vector`` when both wind
components are scored), dimensions ``(model, metric, region, lead_time[, level])``.

Forecast and truth are aligned by valid time = init + lead. The work (``climate_optics.evaluation.scoring``)
goes variable by variable in batches of init and lead times, each batch of every model read at
once and scored in numpy (every metric, region and lead in one kernel call); per-init statistics
are averaged over init times the WeatherBench 2 way (RMSE is the square root of the mean MSE).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from climate_optics.errors import UsageInputError
from climate_optics.evaluation import baselines as reference
from climate_optics.evaluation import scoring
from climate_optics.evaluation.metrics import METRICS, Metric, make_metric
from climate_optics.evaluation.regions import DEFAULT_REGIONS, resolve_regions
from climate_optics.evaluation.spatial import AreaMean
from data_catalog.cf import cf_attributes
from data_catalog.checks import check_not_all_nan
from data_catalog.errors import DataInputError
from data_catalog.schema import LATITUDE, LEVEL, LONGITUDE, PREDICTION_TIMEDELTA, REALIZATION, TIME
from data_catalog.units import normalise

MODEL, METRIC, REGION, LEAD_TIME = "model", "metric", "region", "lead_time"
DETERMINISTIC_DEFAULT = ("rmse", "bias", "mae", "acc")
ENSEMBLE_DEFAULT = ("crps", "ensemble_mean_rmse", "ensemble_spread", "spread_skill_ratio")
NOT_IN_SCORES = {"rank_histogram": "it has a 'bin' dimension; call climate_optics.metrics.rank_histogram"}
WIND_PAIRS = (
    ("u_component_of_wind", "v_component_of_wind", "wind_vector"),
    ("10m_u_component_of_wind", "10m_v_component_of_wind", "10m_wind_vector"),
)
WIND_METRICS = scoring.WIND_METRICS
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
    truth = scoring.truth_in_memory(truth, plan)
    if climatology is not None:
        climatology = scoring.climatology_in_memory(climatology, plan)
        plan.metrics = {
            k: dataclasses.replace(m, climatology=climatology) if m.needs_climatology else m
            for k, m in plan.metrics.items()
        }
    scores = xr.Dataset(scoring.score_leads(forecast, truth, climatology, plan)).rename(
        {PREDICTION_TIMEDELTA: LEAD_TIME}
    )
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

    scores = cf_attributes(scores, variables=False)
    for name, da in scores.data_vars.items():
        source = forecast[name] if name in forecast.data_vars else None
        units = source.attrs.get("units") if source is not None else _wind_units(forecast, str(name))
        da.attrs = {
            "long_name": f"skill scores of {name}",
            "metric_units": "; ".join(f"{m}: {metric_units(str(m), units)}" for m in scores[METRIC].values),
        }
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
        raise DataInputError(
            f"truth has {truth.sizes[REALIZATION]} ensemble members (realization); expected one"
            " analysis per time (select a member or the ensemble mean)"
        )
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
    area = AreaMean.build(
        forecast[LATITUDE], forecast[LONGITUDE], resolve_regions(regions or list(DEFAULT_REGIONS)), lsm
    )

    inits = forecast.indexes[TIME].values
    leads = forecast.indexes[PREDICTION_TIMEDELTA].values
    for lead in leads:  # fail before any computation (the times only: nothing is selected or read)
        reference.require_times(truth, reference.valid_times(inits, lead), what=f"valid time (lead {_hours(lead)})")
    if "persistence" in models:
        reference.require_times(truth, inits, what="initialisation time (persistence)")
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
            if var not in ref.data_vars or (
                len(levels) and np.setdiff1d(levels, ref[var][LEVEL].values if LEVEL in ref[var].dims else []).size
            ):
                raise DataInputError(
                    f"{what} lacks variable {var!r}{' at every forecast level' if len(levels) else ''}", variable=var
                )
        ref = ref[plan.variables].sel({TIME: plan.inits})
        chosen[name] = ref.sel({LEVEL: forecast[LEVEL].values}) if LEVEL in ref.dims and LEVEL in forecast.dims else ref
    plan.models[1:1] = list(chosen)
    return chosen


def _check_truth_has(forecast, truth, names: list[str]) -> None:
    for name in names:
        if name not in truth.data_vars:
            raise DataInputError(
                f"truth has no variable {name!r} (truth variables: {', '.join(map(str, truth.data_vars))})"
            )
        if LEVEL in forecast[name].dims:
            if LEVEL not in truth[name].dims:
                raise DataInputError("forecast has levels but truth has no level dimension", variable=name)
            missing = np.setdiff1d(forecast[LEVEL].values, truth[LEVEL].values)
            if missing.size:
                raise DataInputError(
                    f"truth has no level {missing[0]} (truth levels: {', '.join(map(str, truth[LEVEL].values))})",
                    variable=name,
                )


def _check_units(forecast, truth, names: list[str]) -> None:
    """Forecast and truth in the same units (where both say)."""

    for name in names:
        mine, theirs = forecast[name].attrs.get("units"), truth[name].attrs.get("units")
        if mine is not None and theirs is not None and normalise(str(mine)) != normalise(str(theirs)):
            raise DataInputError(
                f"forecast units {mine!r} differ from the truth's {theirs!r}; expected the same units"
                " (convert the forecast)",
                variable=name,
            )


def skipped_variables(forecast, truth, scored: list[str]) -> list[str]:
    """'name (why)' for every forecast or truth field not scored."""
    skipped = [
        f"{v} (forecast: not requested)"
        if PREDICTION_TIMEDELTA in forecast[v].dims
        else f"{v} (forecast: no prediction_timedelta)"
        for v in forecast.data_vars
        if v not in scored
    ]
    skipped += [
        f"{v} (truth: not in the forecast)"
        for v in truth.data_vars
        if v not in forecast.data_vars and TIME in truth[v].dims
    ]
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
    raise DataInputError(
        f"the climatology's period {period[0]}..{period[1]} overlaps the forecast's init times"
        f" {first}..{last}: an in-sample climatology flatters ACC and the climatology baseline;"
        " build one from other times (ingest --climatology-period START:END) or pass"
        " --allow-in-sample-climatology"
    )


def _check_grid(forecast, other, what: str) -> None:
    for dim in (LATITUDE, LONGITUDE):
        a, b = forecast[dim].values, other[dim].values
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
            raise DataInputError(
                f"grids differ: forecast {dim} has {a.size} points ({a.min():g}..{a.max():g}), "
                f"{what}{_opened_from(other)} has {b.size} ({b.min():g}..{b.max():g}); regrid one of them first",
                source=forecast.encoding.get("source"),
            )


def _opened_from(ds) -> str:
    """' (PATH)' for a dataset opened from a file or store, for messages naming both sides."""
    source = ds.encoding.get("source")
    return f" ({source})" if source else ""


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
            raise UsageInputError(
                f"metric {name!r} needs an ensemble forecast of several members (a realization"
                " dimension); this forecast has one member"
            )
        if name == "acc" and climatology is None:
            raise UsageInputError(
                "metric 'acc' needs a climatology (--climatology STORE, or a truth store with a climatology group)"
            )
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
