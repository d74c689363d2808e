"""Scores stores: the Zarr store, a Markdown table a person can read, skill-vs-lead PNGs.

Everything is written into one temporary directory and renamed into place
(``data_catalog.store.atomic_store``): the store holds ``scores.md`` and
``figures/skill_<variable>.png`` next to its Zarr metadata, so a failure leaves nothing
and ``--overwrite`` replaces the whole set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from climate_optics.plots import new_figure, recorded_units, skill_axes
from data_catalog.schema import LEVEL
from data_catalog.store import atomic_store, consolidate

if TYPE_CHECKING:
    import xarray as xr

MARKDOWN_NAME = "scores.md"
FIGURES_DIR = "figures"

# WeatherBench 2 headline variables: (variable, level or None)
HEADLINE: tuple[tuple[str, int | None], ...] = (
    ("geopotential", 500),
    ("temperature", 850),
    ("2m_temperature", None),
    ("mean_sea_level_pressure", None),
    ("10m_wind_vector", None),
    ("wind_vector", 850),
    ("specific_humidity", 700),
    ("total_precipitation_6hr", None),
)


def write_scores(
    scores: "xr.Dataset", out: str | os.PathLike, *, overwrite: bool = False, attrs: dict[str, Any] | None = None
) -> Path:
    """Write the scores store, its ``scores.md`` and its figures atomically; returns the store path."""
    ds = scores.copy()
    for dim in ("model", "metric", "region"):  # variable-length strings (Zarr v3 has no fixed-width spec)
        if dim in ds.coords:
            ds = ds.assign_coords({dim: (dim, ds[dim].values.astype(object), ds[dim].attrs)})
    ds.attrs.update(attrs or {})
    with atomic_store(out, overwrite=overwrite) as tmp:
        ds.to_zarr(tmp, mode="w", consolidated=False)
        consolidate(tmp)  # readers then skip listing the directory (scores.md, figures/)
        (tmp / MARKDOWN_NAME).write_text(scores_markdown(ds))
        plot_headline_skill(ds, tmp / FIGURES_DIR)
    return Path(out)


def _fmt(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.4g}"


def _lead_label(lead: Any) -> str:
    return f"{np.timedelta64(lead, 'ns') / np.timedelta64(1, 'h'):g} h"


def _panels(scores: "xr.Dataset") -> Iterator[tuple[str, str, "xr.DataArray"]]:
    """(variable, level label, DataArray (model, metric, region, lead_time)) for every variable and level."""
    for name in scores.data_vars:
        da = scores[name]
        if LEVEL in da.dims:
            for level in da[LEVEL].values:
                yield str(name), f"{level:g} hPa", da.sel({LEVEL: level})
        else:
            yield str(name), "", da


def scores_markdown(scores: "xr.Dataset") -> str:
    """One table per variable, level and region: rows model x metric, columns lead times."""
    leads = [_lead_label(v) for v in scores["lead_time"].values]
    lines = ["# Skill scores", ""]
    for key in (
        "time_mean",
        "n_init_times",
        "first_init_time",
        "last_init_time",
        "ensemble_size",
        "source_dataset",
        "truth",
    ):
        if key in scores.attrs:
            lines.append(f"- {key.replace('_', ' ')}: {scores.attrs[key]}")
    for name, level, da in _panels(scores):
        for region in da["region"].values:
            lines += ["", f"## {name}{' ' + level if level else ''}, {region}", ""]
            lines.append("| model | metric | " + " | ".join(leads) + " |")
            lines.append("| --- | --- | " + " | ".join("---:" for _ in leads) + " |")
            block = da.sel(region=region).transpose("model", "metric", "lead_time").values
            for i, model in enumerate(da["model"].values):
                for j, metric in enumerate(da["metric"].values):
                    row = block[i, j]
                    if np.all(np.isnan(row)):
                        continue
                    lines.append(f"| {model} | {metric} | " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def headline_panels(scores: "xr.Dataset") -> list[tuple[str, str, "xr.DataArray"]]:
    """The WeatherBench 2 headline variables present (at their headline level, else the first level);
    all variables when none is present."""
    chosen = []
    for name, level in HEADLINE:
        if name not in scores.data_vars:
            continue
        da = scores[name]
        if LEVEL in da.dims:
            levels = da[LEVEL].values
            level = level if level in levels else levels[0]
            chosen.append((name, f"{level:g} hPa", da.sel({LEVEL: level})))
        else:
            chosen.append((name, "", da))
    if chosen:
        return chosen
    return [(n, lv, da) for n, lv, da in _panels(scores) if lv in ("", _first_level(scores[n]))]


def _first_level(da: "xr.DataArray") -> str:
    return f"{da[LEVEL].values[0]:g} hPa" if LEVEL in da.dims else ""


def plot_headline_skill(scores: "xr.Dataset", directory: str | os.PathLike, region: str = "global") -> list[Path]:
    """One PNG per headline variable: a panel per metric, skill against lead time, a line per model."""

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    regions = list(scores["region"].values)
    region = region if region in regions else regions[0]
    paths = []
    for name, level, da in headline_panels(scores):
        da = da.sel(region=region)
        metrics = [m for m in da["metric"].values if not np.all(np.isnan(da.sel(metric=m).values))]
        if not metrics:
            continue
        fig = new_figure(4 * len(metrics), 3.4, layout=None)  # placed by hand below: layout engines draw twice
        axes = fig.subplots(1, len(metrics), squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            skill_axes(ax, da.sel(metric=metric), str(metric), recorded_units(scores[name].attrs, str(metric)))
            ax.set_title(str(metric), y=1.01)  # a fixed place: no tight-bbox search per draw
        axes[0][0].legend(fontsize="small")
        fig.suptitle(f"{name}{' ' + level if level else ''} ({region})")
        fig.subplots_adjust(
            left=0.08 / len(metrics) + 0.04, right=0.98, bottom=0.16, top=0.84, wspace=0.3
        )  # no tight_layout: it draws the figure once more
        path = directory / f"skill_{name}{'_' + level.split()[0] if level else ''}.png"
        fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 1})  # fast zlib: encoding was a tenth of the time
        paths.append(path)
    return paths
