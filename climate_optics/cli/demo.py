"""``climate-optics demo``: the end-to-end pipeline on the embedded synthetic reanalysis.

ingest -> train the tiny forecaster -> forecast the held-out period -> score against
persistence and climatology (scores.md and figures) [-> train the downscaler, downscale the
forecast and its bilinear baseline, score both on the fine grid]. By default the steps are
called directly (no orchestrator to start); ``--prefect`` runs the same steps as the Prefect
flow ``flows.pipeline.pipeline_flow`` (an ephemeral API starts first, 8-30 s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

DEFAULT_OUT = Path("climate-optics-demo")


def load_settings(path: Path | None) -> dict[str, Any]:
    """``PipelineConfig`` fields from a YAML file (``yaml.safe_load``); {} without one."""
    from climate_optics.errors import UsageInputError

    if path is None:
        return {}
    import yaml

    if not path.is_file():
        raise UsageInputError(f"--config: file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageInputError(f"--config {path}: not valid YAML ({exc})") from None
    if not isinstance(values, dict):
        raise UsageInputError(f"--config {path}: expected a mapping of pipeline settings")
    return values


def pipeline_config(settings: dict[str, Any]):
    """A validated PipelineConfig; unknown keys are a usage error naming the valid ones."""
    from dataclasses import fields

    from climate_optics.errors import UsageInputError
    from climate_optics.workflow import PipelineConfig

    known = [f.name for f in fields(PipelineConfig)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise UsageInputError(f"unknown pipeline setting(s) {', '.join(unknown)}; valid: {', '.join(known)}")
    return PipelineConfig(**settings)


def given(**values: Any) -> dict[str, Any]:
    """The options the user set (None means not given)."""
    return {k: v for k, v in values.items() if v is not None}


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(DEFAULT_OUT, "--out", help="Run directory for the stores, scores.md and figures."),
        mode: Optional[str] = typer.Option(None, "--mode", help="Training mode: backprop (default), dfa or optical."),
        steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Forecaster training steps (default 200)."),
        days: Optional[float] = typer.Option(None, "--days", min=1, help="Days of synthetic reanalysis (default 90)."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the data and of training (default 0)."),
        downscale: bool = typer.Option(False, "--downscale", help="Also train the diffusion downscaler on the fine grid, downscale the forecast and score it there."),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML file of pipeline settings (source, preset, lead_hours, ...)."),
        prefect: bool = typer.Option(False, "--prefect", help="Run as the Prefect flow (starts a temporary Prefect API)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace the outputs of a previous run in --out."),
    ) -> None:
        """Run the whole pipeline on the embedded synthetic reanalysis and print where everything is."""
        from climate_optics.workflow import DEMO_OPTIONS, DEMO_SOURCE

        settings = load_settings(config) | given(mode=mode, steps=steps, seed=seed)
        if downscale:
            settings["downscale"] = True
        if days is not None or seed is not None:
            if settings.get("source", DEMO_SOURCE) != DEMO_SOURCE:
                from climate_optics.errors import UsageInputError

                raise UsageInputError("--days and --seed set the synthetic reanalysis; the --config source is not synthetic")
            settings["options"] = dict(settings.get("options") or DEMO_OPTIONS) | given(days=days, seed=seed)
        cfg = pipeline_config(settings)  # bad settings fail here, before anything is written
        say = lambda message: typer.echo(f"[demo] {message}", err=True)  # noqa: E731
        if prefect:
            from flows.pipeline import pipeline_flow

            say("running as the Prefect flow 'climate-optics-pipeline'")
            paths = pipeline_flow(str(out), settings=cfg.to_dict(), overwrite=overwrite, mode=cfg.mode,
                                  steps=cfg.steps, source=cfg.source, options=cfg.options, downscale=cfg.downscale)
            typer.echo("\n".join(f"{name}: {path}" for name, path in paths.items()))
            return
        from climate_optics.workflow import run_pipeline

        result = run_pipeline(cfg, out, overwrite=overwrite, say=say, progress=True)
        typer.echo(result.summary())
        typer.echo(f"explore them: jupyter lab notebooks/  (CLIMATE_OPTICS_RUN={result.run_dir})")
