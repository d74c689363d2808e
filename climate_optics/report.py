"""The report of a pipeline run: ``report.html`` (self-contained, offline) and ``report.md``.

Both sit in the run directory beside the stores, with their figures in ``figures/``:
skill against lead time per training mode with persistence and climatology; maps of forecast,
truth and error per mode at the lead nearest 24 h; the downscaled ensemble against the fine
truth; training and validation loss and DFA alignment per mode; simulated optical device time
and energy against an estimate of back-propagation on a GPU (the assumptions are
``optical_backend.dfa_accounting.GPUAssumptions``, written into the report); the wall time of
each stage. ``report.html`` embeds its images as data URIs and links only to files of the run.
Torch, xarray and the drawing modules (matplotlib and cartopy through ``plots`` and ``maps``) are
imported inside the functions that need them: the headline lines printed at the end of every
``climate-optics demo`` stay light.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from climate_optics.plots import recorded_units

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
FIGURES_DIR = "figures"
HEADLINE = (("geopotential", 500), ("temperature", 850), ("2m_temperature", None))  # shown when present
MAP_LEAD_HOURS = 24
BASELINES = ("persistence", "climatology")


# ----------------------------------------------------------------------------- reading a run


def run_modes(run_dir: str | os.PathLike) -> list[str]:
    """The training modes of a run: from ``pipeline.json``, else its ``train-<mode>`` directories."""
    run = Path(run_dir)
    config = run / "pipeline.json"
    if config.is_file():
        modes = json.loads(config.read_text()).get("modes")
        if modes:
            return [m for m in modes if (run / f"train-{m}").is_dir()]
    return sorted(p.name.removeprefix("train-") for p in run.glob("train-*") if p.is_dir())


def _open(path: str | os.PathLike) -> Any:
    import xarray as xr

    return xr.open_zarr(path, chunks=None)


def headline_variables(scores: Any) -> list[tuple[str, float | None]]:
    """(variable, level) of the headline variables the scores hold (all variables when none is)."""
    found = []
    for name, level in HEADLINE:
        if name in scores.data_vars:
            has_level = "level" in scores[name].dims
            if has_level and level in scores["level"].values:
                found.append((name, level))
            elif not has_level and level is None:
                found.append((name, None))
    if found:
        return found
    return [(str(v), float(scores["level"].values[0]) if "level" in scores[v].dims else None) for v in scores.data_vars]


def _label(name: str, level: float | None) -> str:
    return name if level is None else f"{name} {level:g} hPa"


def nearest_lead(leads: Any, hours: float = MAP_LEAD_HOURS) -> np.timedelta64:
    """The lead time in ``leads`` nearest to ``hours``."""
    leads = np.asarray(leads)
    return leads[np.argmin(np.abs(leads / np.timedelta64(1, "h") - hours))]


def _scores_table(scores: Any, metric: str, region: str) -> dict[tuple[str, float | None], Any]:
    out = {}
    for name, level in headline_variables(scores):
        da = scores[name].sel(metric=metric, region=region)
        out[(name, level)] = da.sel(level=level) if level is not None else da  # (model, lead_time)
    return out


def skill_rows(scores_path: str | os.PathLike, metric: str = "rmse", region: str = "global") -> list[dict[str, Any]]:
    """One row per headline variable and lead time: ``metric`` of every model (forecasts and baselines)."""
    scores = _open(scores_path)
    if metric not in scores["metric"].values or region not in scores["region"].values:
        return []
    rows = []
    for (name, level), da in _scores_table(scores, metric, region).items():
        units = recorded_units(scores[name].attrs, metric)  # as the scores store records them
        label = f"{_label(name, level)} [{units}]" if units else _label(name, level)
        for lead in da["lead_time"].values:
            row: dict[str, Any] = {"variable": label, "lead (h)": float(lead / np.timedelta64(1, "h"))}
            row |= {str(m): float(da.sel(model=m, lead_time=lead)) for m in da["model"].values}
            rows.append(row)
    return rows


def headline_lines(scores_path: str | os.PathLike, downscaled_scores: str | os.PathLike | None = None) -> list[str]:
    """Per trained model at the lead nearest 24 h: RMSE of each headline variable and its ratio to persistence."""
    scores = _open(scores_path)
    table = _scores_table(scores, "rmse", "global")
    lead = nearest_lead(scores["lead_time"].values)
    models = [str(m) for m in scores["model"].values if str(m) not in BASELINES]
    lines = [f"global RMSE at {lead / np.timedelta64(1, 'h'):g} h (ratio to persistence; < 1 beats it):"]
    for model in models:
        parts = []
        for (name, level), da in table.items():
            value = float(da.sel(model=model, lead_time=lead))
            persistence = float(da.sel(model="persistence", lead_time=lead)) if "persistence" in da["model"] else np.nan
            units = recorded_units(scores[name].attrs, "rmse")
            parts.append(f"{_label(name, level)} {value:.4g}{' ' + units if units else ''} ({value / persistence:.2f})")
        lines.append(f"  {model:16s} " + ", ".join(parts))
    if downscaled_scores is not None and Path(downscaled_scores).exists():
        fine = _open(downscaled_scores)
        for (name, level), da in _scores_table(fine, "rmse", "global").items():
            fine_lead = nearest_lead(da["lead_time"].values)
            values = ", ".join(
                f"{m} {float(da.sel(model=m, lead_time=fine_lead)):.4g}"
                for m in da["model"].values
                if str(m) not in BASELINES
            )
            lines.append(
                f"  fine grid, {_label(name, level)} RMSE at {fine_lead / np.timedelta64(1, 'h'):g} h: {values}"
            )
    return lines


# ----------------------------------------------------------------------------- costs


def gpu_estimate(train_run: str | os.PathLike) -> dict[str, float]:
    """Back-propagation of the run's steps on a GPU: FLOPs counted on one batch, time and energy estimated."""
    import torch

    from climate_optics.io.models import load_forecaster
    from optical_backend.dfa_accounting import BACKPROP_FLOPS_PER_FORWARD, GPUAssumptions, count_forward_flops

    model, state = load_forecaster(Path(train_run) / "checkpoint.pt")
    model.requires_grad_(False)  # FLOPs of the forward pass only (the counter hooks tensors that need gradients)
    cfg = model.config
    batch = int(state.get("train_config", {}).get("batch_size", 8))
    x = torch.zeros(batch, len(cfg.channels) * cfg.history, *cfg.grid)  # (B, C * history, H, W)
    static = torch.zeros(batch, len(cfg.static_channels), *cfg.grid)  # (B, S, H, W)
    flops = count_forward_flops(model, x, torch.full((batch,), 6.0), static)
    gpu = GPUAssumptions()
    total = BACKPROP_FLOPS_PER_FORWARD * flops * int(state.get("step", 0))
    return {
        "forward_flops_per_batch": flops,
        "gpu_s": total / gpu.flops_per_s,
        "gpu_j": total / gpu.flops_per_s * gpu.power_w,
    }


def cost_rows(run_dir: str | os.PathLike, modes: list[str]) -> list[dict[str, Any]]:
    """Per mode: steps, measured wall time here, simulated optical time/energy, GPU back-propagation estimate."""
    from climate_optics.plots import energy_table

    runs = [Path(run_dir) / f"train-{m}" for m in modes]
    rows = []
    for run, (_, row) in zip(runs, energy_table(runs).iterrows()):
        gpu = gpu_estimate(run)
        rows.append(
            {
                "model": row["run"],
                "steps": int(row["steps"] or 0),
                "wall here (s)": row["forward_wall_s"] + row["backward_wall_s"],
                "optical device (s)": row["optical_time_s"],
                "optical energy (J)": row["optical_energy_j"],
                "GPU backprop est. (s)": gpu["gpu_s"],
                "GPU backprop est. (J)": gpu["gpu_j"],
            }
        )
    return rows


def gpu_assumptions() -> str:
    from dataclasses import asdict

    from optical_backend.dfa_accounting import BACKPROP_FLOPS_PER_FORWARD, GPUAssumptions

    figures = ", ".join(f"{k} {v}" for k, v in asdict(GPUAssumptions()).items())
    return (
        f"GPU estimate: back-propagation = {BACKPROP_FLOPS_PER_FORWARD:g} x forward FLOPs (counted on one training "
        f"batch) x steps, at peak x utilisation, energy at board power ({figures}). The optical figures are the "
        "simulated OPU's device time and energy for the feedback projections only; 'wall here' is the measured "
        "forward and backward time on this machine's CPU."
    )


# ----------------------------------------------------------------------------- figures


def forecast_map_figure(run: str | os.PathLike, mode: str, init: Any = 0) -> tuple[Any, str]:
    """(figure, caption): forecast, truth and error of the first headline variable at the lead nearest 24 h."""
    from climate_optics import maps

    run = Path(run)
    name, level = headline_variables(_open(run / "scores.zarr"))[0]
    forecast = run / f"forecast-{mode}.zarr"
    lead = nearest_lead(_open(forecast)["prediction_timedelta"].values)
    fig = maps.forecast_maps(forecast, name, truth=run / "data.zarr", lead=lead, init=init, level=level)
    return fig, f"vit-{mode}: {_label(name, level)}"


def downscaled_modes(run: str | os.PathLike) -> list[str]:
    """Modes whose forecast the run downscaled (``downscaled-<mode>.zarr``)."""
    return [
        p.name.removeprefix("downscaled-").removesuffix(".zarr") for p in sorted(Path(run).glob("downscaled-*.zarr"))
    ]


def downscaling_figure(run: str | os.PathLike, mode: str, init: Any = 0) -> tuple[Any, str]:
    """(figure, caption): coarse forecast, members, mean, spread and fine truth (2 m temperature when downscaled)."""
    from climate_optics import maps

    run = Path(run)
    downscaled = run / f"downscaled-{mode}.zarr"
    ds = _open(downscaled)
    var = "2m_temperature" if "2m_temperature" in ds.data_vars else str(next(iter(ds.data_vars)))
    level = float(ds["level"].values[0]) if "level" in ds[var].dims else None
    fig = maps.downscaling_maps(
        run / f"forecast-{mode}.zarr",
        downscaled,
        run / "hires.zarr",
        var,
        init=init,
        lead=nearest_lead(ds["prediction_timedelta"].values),
        level=level,
    )
    return fig, f"vit-{mode} downscaled: {_label(var, level)}"


def _figures(run: Path, modes: list[str], out: Path) -> dict[str, list[tuple[Path, str]]]:
    """Section -> [(png, caption)], drawn from whatever the run holds."""
    from climate_optics import plots

    out.mkdir(exist_ok=True)
    figs: dict[str, list[tuple[Path, str]]] = {"skill": [], "maps": [], "downscaling": [], "training": []}

    def save(fig: Any, name: str) -> Path:
        return plots.save(fig, out / name, dpi=90)

    scores = _open(run / "scores.zarr")
    variables = headline_variables(scores)
    for name, level in variables:
        fig = plots.skill_curves(scores, name, metric="rmse", level=level)
        figs["skill"].append(
            (save(fig, f"skill-{name}{'' if level is None else f'-{level:g}'}.png"), f"RMSE of {_label(name, level)}")
        )
    for mode in modes:
        fig, caption = forecast_map_figure(run, mode)
        figs["maps"].append((save(fig, f"map-{mode}.png"), caption))
    for mode in downscaled_modes(run):
        fig, caption = downscaling_figure(run, mode)
        figs["downscaling"].append((save(fig, f"downscaling-{mode}.png"), caption))
    runs = [run / f"train-{m}" for m in modes]
    figs["training"].append((save(plots.training_curves(runs), "loss.png"), "training and validation loss"))
    figs["training"].append((save(plots.alignment_curves(runs), "alignment.png"), "DFA gradient alignment"))
    return figs


# ----------------------------------------------------------------------------- rendering


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if not np.isfinite(value) else f"{value:.4g}"
    return str(value)


def _md_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    keys = list(rows[0])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k, '')))}</td>" for k in keys) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _blocks(run: Path) -> list[tuple[str, Any]]:
    """The report as blocks: ("h1"|"h2"|"p", text), ("table", rows), ("img", (png, caption)), ("links", [(name, rel)])."""
    modes = run_modes(run)
    figs = _figures(run, modes, run / FIGURES_DIR)
    config = json.loads((run / "pipeline.json").read_text()) if (run / "pipeline.json").is_file() else {}
    timings = json.loads((run / "timings.json").read_text()) if (run / "timings.json").is_file() else {}
    map_lead = nearest_lead(_open(run / "scores.zarr")["lead_time"].values)  # as forecast_map_figure picks it
    blocks: list[tuple[str, Any]] = [
        ("h1", f"climate-optics run: {run.name}"),
        (
            "p",
            f"Source {config.get('source', '?')}, modes {', '.join(modes)}, {config.get('steps', '?')} training steps "
            f"per mode, lead times {config.get('lead_hours', '?')} h.",
        ),
        ("h2", "Headline"),
        ("pre", "\n".join(headline_lines(run / "scores.zarr", run / "downscaled_scores.zarr"))),
        ("h2", "Skill against lead time"),
        ("p", "Global latitude-weighted RMSE of every trained model and the persistence and climatology baselines."),
        ("table", skill_rows(run / "scores.zarr")),
        *[("img", f) for f in figs["skill"]],
        ("h2", f"Maps at {map_lead / np.timedelta64(1, 'h'):g} h"),
        *[("img", f) for f in figs["maps"]],
    ]
    if figs["downscaling"]:
        blocks += [
            ("h2", "Downscaling"),
            (
                "p",
                "Coarse forecast, downscaled members, ensemble mean and spread against the fine truth; "
                "scores on the fine grid against the bilinear interpolation of the same forecast.",
            ),
            *[("img", f) for f in figs["downscaling"]],
            ("table", skill_rows(run / "downscaled_scores.zarr")),
        ]
    blocks += [
        ("h2", "Training"),
        *[("img", f) for f in figs["training"]],
        ("h2", "Optical device time and energy"),
        ("table", cost_rows(run, modes)),
        ("p", gpu_assumptions()),
    ]
    if timings:
        blocks += [
            ("h2", "Wall time per stage"),
            ("table", [{"stage": k, "seconds": float(v)} for k, v in timings.items()]),
        ]
    outputs = [
        (p.name, p.name)
        for p in sorted(run.iterdir())
        if p.suffix == ".zarr" or p.name.startswith(("train-", "downscale-"))
    ]
    blocks += [("h2", "Outputs"), ("links", outputs)]
    return blocks


def _markdown(blocks: list[tuple[str, Any]], run: Path) -> str:
    out = []
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            out.append(("# " if kind == "h1" else "## ") + value)
        elif kind == "p":
            out.append(value)
        elif kind == "pre":
            out.append("```\n" + value + "\n```")
        elif kind == "table":
            out.append(_md_table(value))
        elif kind == "img":
            png, caption = value
            out.append(f"![{caption}]({png.relative_to(run).as_posix()})")
        elif kind == "links":
            out.append("\n".join(f"- [{name}]({rel})" for name, rel in value))
    return "\n\n".join(out) + "\n"


STYLE = (
    "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    "img{max-width:100%;display:block;margin:0.5em 0}figcaption{color:#555;font-size:0.9em}pre{background:#f5f5f5;padding:0.5em}"
)


def _html(blocks: list[tuple[str, Any]]) -> str:
    out = []
    for kind, value in blocks:
        if kind in ("h1", "h2", "p", "pre"):
            out.append(f"<{kind}>{html.escape(value)}</{kind}>")
        elif kind == "table":
            out.append(_html_table(value))
        elif kind == "img":
            png, caption = value
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            out.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        elif kind == "links":
            out.append(
                "<ul>"
                + "".join(f'<li><a href="{html.escape(rel)}">{html.escape(name)}</a></li>' for name, rel in value)
                + "</ul>"
            )
    title = html.escape(blocks[0][1])
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n"
    )


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write ``report.md``, ``report.html`` and ``figures/`` into the run directory; returns report.html."""
    from climate_optics.errors import UsageInputError

    run = Path(run_dir)
    if not (run / "scores.zarr").exists():
        raise UsageInputError(f"{run}: no scores.zarr (not a pipeline run directory?)")
    blocks = _blocks(run)
    for name, text in ((REPORT_MD, _markdown(blocks, run)), (REPORT_HTML, _html(blocks))):
        tmp = run / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(run / name)
    return run / REPORT_HTML
