"""Figures for exploring the pipeline's outputs (the notebooks call these).

- maps (forecast, truth, error; downscaled ensembles) are in ``climate_optics.maps``.
- ``skill_curves``: skill against lead time from a scores store, one line per model
  (``skill_axes`` draws one panel; the scores store's figures use it too).
- ``training_curves``, ``alignment_curves``, ``optical_energy``: optical-training
  diagnostics from run directories (``metrics.jsonl`` and ``checkpoint.pt``).

Every function returns a ``matplotlib.figure.Figure`` built without pyplot (the Agg canvas,
no global backend state, safe in worker threads); nothing is imported at module import.
Inputs may be paths or opened objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from climate_optics.errors import UsageInputError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
    from matplotlib.figure import Figure

METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
ENERGY_KEYS = ("projector_energy_j", "optical_energy_j")  # cumulative simulated optical energy (J)
BASELINE_STYLE = {"persistence": ":", "climatology": "--"}


def new_figure(width: float, height: float, layout: str | None = "constrained") -> "Figure":
    """A Figure on the Agg canvas, independent of pyplot's backend and global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save(fig: "Figure", path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` as an image (format from the suffix); returns the path."""
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


def _open(obj: Any) -> "xr.Dataset":
    import xarray as xr

    if isinstance(obj, xr.Dataset):
        return obj
    path = Path(obj)
    if not path.exists():
        raise UsageInputError(f"store not found: {path}")
    return xr.open_zarr(path, chunks=None)


def _pick(da: "xr.DataArray", dim: str, value: Any, what: str) -> "xr.DataArray":
    """Select ``value`` along ``dim`` (an index when int and the coordinate is not integer)."""
    if dim not in da.dims:
        return da
    if value is None:
        if da.sizes[dim] != 1:
            options = ", ".join(str(v) for v in da[dim].values)
            raise UsageInputError(f"{what}: choose a {dim} (one of {options})")
        return da.isel({dim: 0})
    if isinstance(value, int) and da[dim].dtype.kind not in "iuf":
        return da.isel({dim: value})
    try:
        return da.sel({dim: value})
    except KeyError:
        options = ", ".join(str(v) for v in da[dim].values)
        raise UsageInputError(f"{what}: {dim} {value!r} not found (available: {options})") from None


def _lead(value: Any) -> np.timedelta64:
    import pandas as pd

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.timedelta64(int(value), "h")
    return np.timedelta64(pd.Timedelta(value).value, "ns")


# ----------------------------------------------------------------------------- skill


def skill_curves(
    scores: Any,
    variables: str | Sequence[str],
    *,
    metric: str = "rmse",
    region: str = "global",
    level: float | None = None,
    models: Sequence[str] | None = None,
) -> "Figure":
    """``metric`` against lead time (hours) for each model in a scores store; one panel per variable.

    Baselines (``persistence``, ``climatology``) are drawn dashed/dotted.
    """
    ds = _open(scores)
    names = [variables] if isinstance(variables, str) else list(variables)
    fig = new_figure(4.2 * len(names), 3.2)
    for i, name in enumerate(names):
        if name not in ds.data_vars:
            raise UsageInputError(f"scores have no variable {name!r} (has: {', '.join(map(str, ds.data_vars))})")
        da = _pick(_pick(ds[name], "metric", metric, name), "region", region, name)
        da = _pick(da, "level", level, name)
        ax = fig.add_subplot(1, len(names), i + 1)
        skill_axes(
            ax, da if models is None else da.sel(model=list(models)), metric, recorded_units(ds[name].attrs, metric)
        )
        title = name if level is None else f"{name} {level:g} hPa"
        ax.set_title(f"{title} ({region})", fontsize=10)
        ax.legend(fontsize=8)
    return fig


def recorded_units(attrs: dict, metric: str) -> str:
    """The units a scores store records for ``metric`` of a variable (its ``metric_units`` attribute,
    e.g. ``"rmse: K; mse: (K)2; acc: 1"``); "" for dimensionless, unknown or unrecorded ones."""
    for part in str(attrs.get("metric_units", "")).split(";"):
        name, _, units = part.partition(":")
        if name.strip() == metric:
            return "" if units.strip() in ("1", "unknown") else units.strip()
    return ""


def skill_axes(ax: Any, da: "xr.DataArray", metric: str, units: str = "") -> None:
    """Draw one metric against lead time on ``ax``: ``da`` (model, lead_time), a line per model.

    The one skill-versus-lead drawing (``skill_curves`` and the scores store's figures use it);
    baselines dashed/dotted, models with no value left out, few ticks (ticks dominate drawing time).
    """
    from matplotlib.ticker import MaxNLocator

    hours = da["lead_time"].values / np.timedelta64(1, "h")
    for model in da["model"].values:
        values = da.sel(model=model).values
        if not np.all(np.isnan(values)):
            ax.plot(hours, values, BASELINE_STYLE.get(str(model), "-"), marker="o", ms=3, label=str(model))
    ax.set_xlabel("lead time (h)")
    ax.set_ylabel(f"{metric} [{units}]" if units else metric)  # units as the scores store records them
    ax.set_xticks(hours if hours.size <= 8 else hours[:: int(np.ceil(hours.size / 8))])
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.grid(alpha=0.3)


# ----------------------------------------------------------------------------- training runs


def read_metrics_log(run_dir: str | os.PathLike) -> "pd.DataFrame":
    """A run's ``metrics.jsonl`` as a table (one row per line; ``kind`` = train, val, alignment, ...)."""
    import pandas as pd

    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise UsageInputError(f"no {METRICS_FILE} in {run_dir} (is it a training run directory?)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise UsageInputError(f"{path} is empty")
    return pd.DataFrame(rows)


def run_label(run_dir: str | os.PathLike) -> str:
    """``vit-<mode>`` from the run's checkpoint, else the directory name."""
    info = run_summary(run_dir)
    mode = info.get("train_config", {}).get("mode")
    return f"vit-{mode}" if mode else Path(run_dir).name


def run_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Training config and engine counters (simulated optical time/energy) from a run's checkpoint."""
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return {}
    from climate_optics.io.checkpoints import load_checkpoint

    state = load_checkpoint(path)
    return {
        "train_config": state.get("train_config", {}),
        "engine_stats": state.get("engine_stats", {}),
        "step": state.get("step"),
    }


def _runs(run_dirs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    return [Path(run_dirs)] if isinstance(run_dirs, (str, os.PathLike)) else [Path(r) for r in run_dirs]


def training_curves(run_dirs: Any) -> "Figure":
    """Training and validation loss against step, one line pair per run (e.g. one per training mode)."""
    fig = new_figure(5.5, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    for run in _runs(run_dirs):
        log, label = read_metrics_log(run), run_label(run)
        for kind, style in (("train", "-"), ("val", "o--")):
            rows = log[log["kind"] == kind] if "kind" in log else log.iloc[:0]
            if "loss" in rows and rows["loss"].notna().any():
                ax.plot(rows["step"], rows["loss"], style, ms=3, label=f"{label} {kind}")
    ax.set_xlabel("step")
    ax.set_ylabel("latitude-weighted MSE (normalised)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def alignment_table(run_dir: str | os.PathLike) -> "pd.DataFrame":
    """Cosines between DFA and back-propagation gradients per feedback point, against step.

    Read from ``kind == "alignment"`` lines of the metrics log (columns: step, then one per
    feedback point); empty when the run logged none (back-propagation runs).
    """
    log = read_metrics_log(run_dir)
    if "kind" not in log or not (log["kind"] == "alignment").any():
        import pandas as pd

        return pd.DataFrame(columns=["step"])
    rows = log[log["kind"] == "alignment"].dropna(axis=1, how="all")
    points = [c for c in rows.columns if c not in ("step", "kind")]
    return rows[["step", *points]].reset_index(drop=True)


def alignment_curves(run_dirs: Any) -> "Figure":
    """Gradient alignment (cosine of DFA vs back-propagation updates) per feedback point and run."""
    fig = new_figure(5.5, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    for run in _runs(run_dirs):
        table, label = alignment_table(run), run_label(run)
        for point in [c for c in table.columns if c != "step"]:
            ax.plot(table["step"], table[point], marker=".", label=f"{label} {point}")
            drawn += 1
    if not drawn:
        ax.text(
            0.5,
            0.5,
            "no alignment logged (back-propagation runs log none)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("step")
    ax.set_ylabel("cosine(DFA, backprop)")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7, ncol=2)
    return fig


def energy_table(run_dirs: Any) -> "pd.DataFrame":
    """Per run: mode, steps, simulated optical device time (s) and energy (J), measured wall times (s)."""
    import pandas as pd

    rows = []
    for run in _runs(run_dirs):
        info = run_summary(run)
        stats = info.get("engine_stats", {})
        rows.append(
            {
                "run": run_label(run),
                "mode": info.get("train_config", {}).get("mode", ""),
                "steps": info.get("step"),
                "optical_time_s": float(stats.get("projector_device_time_s", 0.0)),
                "optical_energy_j": float(stats.get("projector_energy_j", 0.0)),
                "forward_wall_s": float(stats.get("forward_wall_s", np.nan)),
                "backward_wall_s": float(stats.get("backward_wall_s", np.nan)),
            }
        )
    return pd.DataFrame(rows)


def optical_energy(run_dirs: Any) -> "Figure":
    """Simulated optical energy: cumulative against step where logged, else each run's total."""
    fig = new_figure(5.5, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    curves = 0
    for run in _runs(run_dirs):
        log = read_metrics_log(run)
        key = next((k for k in ENERGY_KEYS if k in log and log[k].notna().any()), None)
        if key is not None:
            rows = log[log[key].notna()]
            ax.plot(rows["step"], rows[key], label=run_label(run))
            curves += 1
    if curves:
        ax.set_xlabel("step")
        ax.set_ylabel("simulated optical energy (J)")
        ax.legend(fontsize=8)
    else:
        table = energy_table(run_dirs)
        ax.bar(table["run"], table["optical_energy_j"])
        ax.set_ylabel("simulated optical energy, whole run (J)")
    ax.grid(alpha=0.3)
    return fig
