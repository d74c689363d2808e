"""Store to store: open a forecast store and a truth, score them, write the scores store.

Used by ``climate-optics evaluate`` and the evaluate flow. Inputs open lazily; the output
path, and the table and figures beside it (``scores_store.companion_paths``), are checked before
any work; the store, its table and its figures appear together or not at all.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from climate_optics.errors import UsageInputError
from climate_optics.evaluation.evaluate_datasets import evaluate, forecast_name
from climate_optics.evaluation.scores_store import check_companions, write_scores
from climate_optics.provenance import provenance_attrs
from data_catalog import open_dataset
from data_catalog.cf import absolute_source
from data_catalog.damage import reporting_damage
from data_catalog.errors import DataInputError
from data_catalog.store import check_target, is_tool_store


def _open_zarr(path: str | os.PathLike, **kwargs: Any) -> "xr.Dataset":
    """``xr.open_zarr``, quiet about stores written without consolidated metadata."""

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Failed to open Zarr store with consolidated metadata", category=RuntimeWarning
        )
        return xr.open_zarr(path, **kwargs)


def open_forecast(path: str | os.PathLike) -> "xr.Dataset":
    """A forecast store (ours or WeatherBench 2 layout), lazily.

    Without dask (``chunks=None``): scoring reads one batch of init times at a time, and one zarr
    read of a selection fetches its chunks concurrently, where dask would pay a task per chunk
    (10x slower on the (1, 1, ...) chunks of a forecast store)."""
    if not Path(path).exists():
        raise DataInputError("forecast store does not exist", source=path)
    try:
        return _open_zarr(path, chunks=None)
    except Exception as exc:  # noqa: BLE001 - any failure to open is bad input here
        raise DataInputError(
            f"cannot open as a Zarr forecast store ({type(exc).__name__}: {exc})", source=path
        ) from None


def open_truth(source: str | os.PathLike) -> "xr.Dataset":
    """A catalog entry name or a path, in the canonical schema (``data_catalog.open_dataset``).
    A store this tool wrote (ingest) is canonical already: opened directly, without dask, as the forecast is."""

    if Path(source).is_dir() and is_tool_store(source):
        try:
            return _open_zarr(source, chunks=None)
        except Exception:  # noqa: BLE001 - let the catalog reader name what is wrong
            pass
    return open_dataset(source)


def open_climatology(source: str | os.PathLike) -> "xr.Dataset":
    """A WeatherBench 2 climatology: the ``climatology`` group of an ingested store, or a store
    whose root holds the (hour, dayofyear, ...) layout."""

    if not Path(source).exists():
        raise DataInputError("climatology store does not exist", source=source)
    try:
        return _open_zarr(source, group="climatology")
    except Exception:  # noqa: BLE001 - fall back to the root group
        pass
    try:
        ds = _open_zarr(source)
    except Exception as exc:  # noqa: BLE001
        raise DataInputError(f"cannot open as a climatology store ({type(exc).__name__})", source=source) from None
    if "dayofyear" not in ds.dims:
        raise DataInputError("not a climatology: no 'climatology' group and no 'dayofyear' dimension", source=source)
    return ds


def default_climatology(truth_source: str | os.PathLike) -> "xr.Dataset | None":
    """The climatology group of a truth store written by ingest, if there is one."""

    path = Path(truth_source)
    if not (path.is_dir() and (path / "climatology").is_dir()):
        return None
    try:
        return _open_zarr(path, group="climatology", chunks=None)
    except Exception:  # noqa: BLE001 - no usable group: no default
        return None


def evaluate_stores(
    forecast: str | os.PathLike,
    truth: str | os.PathLike,
    out: str | os.PathLike,
    *,
    metrics: Sequence[str] | str | None = None,
    regions: Any = None,
    climatology: str | os.PathLike | None = None,
    baselines: Sequence[str] | str | None = None,
    model_name: str | None = None,
    variables: Sequence[str] | None = None,
    references: Sequence[str | os.PathLike] | None = None,
    overwrite: bool = False,
    allow_in_sample_climatology: bool = False,
) -> Path:
    """Score the forecast store against ``truth`` and write the scores store ``out``; returns its path.

    ``references``: further forecast stores scored as models of their own, each ``NAME=PATH``
    or a path (named by its attributes, as the forecast is), e.g. an interpolated forecast.
    A climatology whose recorded period overlaps the forecast's init times is refused unless
    ``allow_in_sample_climatology``; the period is recorded in the scores store.
    """

    check_target(out, overwrite=overwrite)
    check_companions(out)
    forecast_ds = open_forecast(forecast)
    truth_ds = open_truth(truth)
    clim = open_climatology(climatology) if climatology is not None else default_climatology(truth)
    refs = open_references(references or [])
    inputs = [
        forecast,
        truth,
        *([climatology] if climatology is not None else []),
        *(path for path, _ in refs.values()),
    ]
    with reporting_damage(*inputs):  # a chunk that cannot be decoded is named as bad input
        scores = evaluate(
            forecast_ds,
            truth_ds,
            metrics=metrics,
            regions=regions,
            climatology=clim,
            baselines=baselines,
            model_name=model_name,
            variables=variables,
            references={name: ds for name, (_, ds) in refs.items()},
            allow_in_sample_climatology=allow_in_sample_climatology,
        )
    fa = forecast_ds.attrs
    attrs = provenance_attrs(
        source_dataset=absolute_source(forecast),
        model_config=_json(fa.get("model_config")),
        training_backend=fa.get("training_backend"),
        opu_config=_json(fa.get("opu_config")),
        extra={
            "checkpoint_sha256": fa.get("checkpoint_sha256", ""),
            "forecast_source_dataset": fa.get("source_dataset", ""),
            "truth": absolute_source(truth),
            "climatology": absolute_source(climatology)
            if climatology is not None
            else ("truth store group" if clim is not None else ""),
            "metrics": [str(m) for m in scores["metric"].values],
            "regions": [str(r) for r in scores["region"].values],
            **({"references": {name: absolute_source(path) for name, (path, _) in refs.items()}} if refs else {}),
        },
    )
    return write_scores(scores, out, overwrite=overwrite, attrs=attrs)


def read_attrs(store: str | os.PathLike) -> dict[str, Any]:
    """The root attributes of a store written here."""
    return dict(_open_zarr(store).attrs)


def open_references(specs: Sequence[str | os.PathLike]) -> dict[str, tuple[str, "xr.Dataset"]]:
    """``NAME=PATH`` or ``PATH`` items -> {name: (path, lazy forecast Dataset)}; names must differ."""

    out: dict[str, tuple[str, xr.Dataset]] = {}
    for spec in specs:
        text = str(spec)
        name, sep, path = text.partition("=")
        if not sep or not name or Path(text).exists():
            name, path = "", text
        ds = open_forecast(path)
        name = name or forecast_name(ds, default=Path(path).stem)
        if name in out:
            raise UsageInputError(f"--reference: two references named {name!r}; name them NAME=PATH")
        out[name] = (path, ds)
    return out


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {"raw": str(value)}
    return parsed if isinstance(parsed, dict) else {"raw": parsed}
