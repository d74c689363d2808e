"""Scores stores: the Zarr store, a Markdown table a person can read, skill-vs-lead PNGs.

For a store ``DIR/NAME.zarr`` the table is ``DIR/NAME.md`` and the figures are
``DIR/figures/NAME/skill_<variable>.png``: beside the store, not inside it (``companion_paths``;
a pipeline run directory holds ``scores.md`` and ``figures/scores/``). All three are written to
temporaries beside the target; under the store's lock the table and figures replace their
predecessors (kept aside), then the store is renamed into place (``data_catalog.store.atomic_store``).
A failure puts the previous table and figures back and leaves no temporary; after ``kill -9`` the
next writer removes the temporaries, and a table and figures left beside no store are replaced.
A table or figures directory that this tool did not write is refused before any work.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from climate_optics.plots import new_figure, recorded_units, skill_axes
from data_catalog import locks
from data_catalog.errors import DataInputError
from data_catalog.schema import LEVEL
from data_catalog.store import atomic_store, consolidate, describe_contents

if TYPE_CHECKING:
    import xarray as xr

FIGURES_DIR = "figures"
TABLE_SIGNATURE = "<!-- climate-optics scores table: replaced with its scores store -->"  # first line of ours

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


def companion_paths(store: str | os.PathLike) -> tuple[Path, Path]:
    """(table, figures directory) beside the scores store ``DIR/NAME.zarr``: ``DIR/NAME.md``, ``DIR/figures/NAME``."""
    store = Path(store)
    name = store.name.removesuffix(".zarr")
    return store.with_name(f"{name}.md"), store.parent / FIGURES_DIR / name


def _own_table(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(len(TABLE_SIGNATURE)) == TABLE_SIGNATURE
    except OSError:
        return False


def _own_figures(path: Path) -> bool:
    return path.is_dir() and all(
        p.name.startswith("skill_") and p.suffix == ".png" and p.is_file() and not p.is_symlink()
        for p in path.iterdir()
    )


def check_companions(store: str | os.PathLike) -> None:
    """Refuse (before any work) a table or figures directory beside ``store`` that this tool did not write.

    Ours are replaced with the store (they follow its ``--overwrite`` rule), or when no store is beside them."""
    store = Path(store)
    table, figures = companion_paths(store)
    if store.name == FIGURES_DIR:
        raise DataInputError(f"a scores store cannot be named {FIGURES_DIR!r}: its figures go there", source=store)
    if figures.parent.exists() and not figures.parent.is_dir():
        raise DataInputError("is not a directory; the scores store's figures go there", source=figures.parent)
    if (table.exists() or table.is_symlink()) and (table.is_symlink() or not _own_table(table)):
        raise DataInputError(
            "is not a scores table this tool wrote; the scores store's table would replace it", source=table
        )
    if (figures.exists() or figures.is_symlink()) and (figures.is_symlink() or not _own_figures(figures)):
        held = f" (it holds {describe_contents(figures)})" if figures.is_dir() and not figures.is_symlink() else ""
        raise DataInputError(
            f"is not a figures directory this tool wrote{held}; the scores store's figures would replace it",
            source=figures,
        )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _place(new: Path, target: Path, aside: Path) -> Path | None:
    """Rename ``new`` to ``target``; a previous ``target`` is renamed to ``aside`` first (returned)."""
    old = None
    if target.exists() or target.is_symlink():
        os.rename(target, aside)
        old = aside
    os.rename(new, target)
    return old


def write_scores(
    scores: "xr.Dataset", out: str | os.PathLike, *, overwrite: bool = False, attrs: dict[str, Any] | None = None
) -> Path:
    """Write the scores store, its table and its figures beside it, all or nothing; returns the store path."""
    out = Path(out)
    table, figures = companion_paths(out)
    figures_key = out.with_name(f"{figures.name}.figures")  # its temporaries sit beside the store: one directory
    table_tmp, figures_tmp = locks.temporary_path(table), locks.temporary_path(figures_key)
    ds = scores.copy()
    for dim in ("model", "metric", "region"):  # variable-length strings (Zarr v3 has no fixed-width spec)
        if dim in ds.coords:
            ds = ds.assign_coords({dim: (dim, ds[dim].values.astype(object), ds[dim].attrs)})
    ds.attrs.update(attrs or {})
    placed: list[tuple[Path, Path | None]] = []  # (companion in place, its predecessor set aside)
    made_figures_dir = False
    try:
        with atomic_store(out, overwrite=overwrite) as tmp:
            check_companions(out)  # under the store's lock
            ds.to_zarr(tmp, mode="w", consolidated=False)
            consolidate(tmp)  # readers open it in one read
            table_tmp.write_text(f"{TABLE_SIGNATURE}\n{scores_markdown(ds)}")
            plot_headline_skill(ds, figures_tmp)
            made_figures_dir = not figures.parent.exists()
            figures.parent.mkdir(exist_ok=True)
            for new, target, key in ((table_tmp, table, table), (figures_tmp, figures, figures_key)):
                placed.append((target, _place(new, target, locks.temporary_path(key, "old"))))
        # the store is in place: its table and figures are the ones just placed
    except BaseException:
        for target, old in reversed(placed):  # put the previous table and figures back
            _remove(target)
            if old is not None:
                os.rename(old, target)
        for path in (table_tmp, figures_tmp):
            _remove(path)
        if made_figures_dir:
            with contextlib.suppress(OSError):
                figures.parent.rmdir()  # only if still empty
        raise
    for _, old in placed:
        if old is not None:
            _remove(old)
    return out


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
