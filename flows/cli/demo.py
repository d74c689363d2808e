"""``climate-optics demo``: the end-to-end pipeline on the embedded synthetic reanalysis.

ingest -> train the tiny forecaster by back-propagation and on the simulated optical backend,
side by side -> forecast the held-out period -> score every mode against persistence and
climatology -> train a downscaler on the optical backend, downscale the optical forecast and
its bilinear baseline, score both on the fine grid -> ``report.html`` and ``report.md``.
By default this runs as the Prefect flow ``flows.pipeline.pipeline_flow``: on the server in
``PREFECT_API_URL`` if set, else on a temporary local API (its first start on a fresh machine
migrates a database: up to ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``, 180 s here),
with Prefect's analytics and telemetry off. ``--no-prefect`` calls the same steps directly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer

DEFAULT_OUT = Path("climate-optics-demo")
DEMO_DIR_NAME = DEFAULT_OUT.name
# Prefect settings for the demo (a user's own environment wins): a first start of the temporary API
# migrates its database (well over Prefect's 20 s default on 2 cores); no analytics or telemetry;
# the temporary server's own log kept off the console (errors reach the flow as failed API calls).
PREFECT_DEMO_ENV = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "DO_NOT_TRACK": "1",
}


@contextmanager
def prefect_environment() -> Iterator[None]:
    """``PREFECT_DEMO_ENV`` for the variables the user has not set, restored afterwards."""
    added = {k: v for k, v in PREFECT_DEMO_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


class MessageOnly(logging.Formatter):
    """Formats a record with ``base`` but without its traceback (which still reaches the Prefect API's log)."""

    def __init__(self, base: logging.Formatter | None) -> None:
        super().__init__()
        self.base = base or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.base.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


@contextmanager
def console_without_tracebacks() -> Iterator[None]:
    """Prefect's console handlers print one line per record (a failed step's error, not its traceback)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [
        logging.getLogger(),
        *(logging.getLogger(n) for n in list(logging.Logger.manager.loggerDict) if n.startswith("prefect")),
    ]
    handlers = {h for lg in loggers for h in getattr(lg, "handlers", []) if isinstance(h, PrefectConsoleHandler)}
    saved = {h: h.formatter for h in handlers}
    for handler in handlers:
        handler.setFormatter(MessageOnly(handler.formatter))
    try:
        yield
    finally:
        for handler, formatter in saved.items():
            handler.setFormatter(formatter)


def parse_modes(text: str | None) -> list[str] | None:
    """``--mode backprop,optical`` -> ["backprop", "optical"]."""
    if text is None:
        return None
    return [m.strip() for m in text.split(",") if m.strip()]


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
    from climate_optics.run_layout import PipelineConfig

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
        out: Path = typer.Option(DEFAULT_OUT, "--out", help="Run directory for the stores, the report and figures."),
        mode: Optional[str] = typer.Option(
            None, "--mode", help="Training mode(s), comma-separated: backprop, dfa, optical (default backprop,optical)."
        ),
        steps: Optional[int] = typer.Option(
            None, "--steps", min=1, help="Forecaster training steps per mode (default 200)."
        ),
        days: Optional[float] = typer.Option(None, "--days", min=1, help="Days of synthetic reanalysis (default 90)."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the data and of training (default 0)."),
        downscale: Optional[bool] = typer.Option(
            None,
            "--downscale/--no-downscale",
            help="Train the diffusion downscaler and downscale the forecast (default: with the synthetic source).",
        ),
        config: Optional[Path] = typer.Option(
            None, "--config", help="YAML file of pipeline settings (source, modes, preset, lead_hours, ...)."
        ),
        prefect: bool = typer.Option(
            True, "--prefect/--no-prefect", help="Run as the Prefect flow (default), or call the steps directly."
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace the outputs of a previous run in --out."),
        dask_workers: Optional[int] = typer.Option(
            None, "--dask-workers", help="Ingest and score on a local dask cluster of N worker processes."
        ),
        dask_address: Optional[str] = typer.Option(
            None, "--dask-address", help="Ingest and score on a running dask scheduler (tcp://HOST:PORT)."
        ),
    ) -> None:
        """Run the whole pipeline on the embedded synthetic reanalysis and print the headline skill and where everything is."""
        from climate_optics.run_layout import DEMO_OPTIONS, DEMO_SOURCE

        settings = load_settings(config) | given(modes=parse_modes(mode), steps=steps, seed=seed, downscale=downscale)
        if "modes" in settings:
            settings.pop("mode", None)
        if days is not None or seed is not None:
            if settings.get("source", DEMO_SOURCE) != DEMO_SOURCE:
                from climate_optics.errors import UsageInputError

                raise UsageInputError(
                    "--days and --seed set the synthetic reanalysis; the --config source is not synthetic"
                )
            settings["options"] = dict(settings.get("options") or DEMO_OPTIONS) | given(days=days, seed=seed)
        cfg = pipeline_config(settings)  # bad settings fail here, before anything is written
        from climate_optics.pipeline import check_run_dir
        from climate_optics.workflow import climatology_period
        from data_catalog import locks

        with locks.holding(
            out
        ):  # one writer per run directory: a second demo is refused (or waits) before Prefect starts
            check_run_dir(out, overwrite=overwrite)  # a used directory too
            if dask_workers is not None or dask_address:
                from climate_optics.cluster import check_dask_options

                check_dask_options(dask_workers, dask_address)  # before Prefect starts
            if (
                cfg.source != DEMO_SOURCE
            ):  # opens a file or catalog entry lazily: a bad one fails here, before Prefect starts
                cfg.climatology_period = climatology_period(cfg)
            say = lambda message: typer.echo(f"[demo] {message}", err=True)  # noqa: E731
            cluster = given(dask_workers=dask_workers, dask_address=dask_address)
            if prefect:
                paths = run_flow(cfg, out, overwrite=overwrite, say=say, **cluster)
            else:
                from climate_optics.pipeline import run_pipeline

                paths = run_pipeline(cfg, out, overwrite=overwrite, say=say, progress=True, **cluster).paths()
        import json

        from climate_optics.pipeline import summary_text

        timings = Path(paths["run_dir"]) / "timings.json"
        typer.echo(summary_text(paths, json.loads(timings.read_text()) if timings.is_file() else {}))
        found = Path(paths["run_dir"]).name == DEMO_DIR_NAME  # what the notebooks look for beside notebooks/
        typer.echo(
            "explore it: jupyter lab notebooks/" + ("" if found else f"  (with CLIMATE_OPTICS_RUN={paths['run_dir']})")
        )


def run_flow(cfg: Any, out: Path, *, overwrite: bool, say: Any, **cluster: Any) -> dict[str, str]:
    """``pipeline_flow`` on the configured or a temporary local Prefect API; returns its paths.
    ``cluster``: ``dask_workers`` or ``dask_address`` for the data steps."""
    with prefect_environment():
        from prefect.settings import PREFECT_API_URL

        from flows.pipeline import pipeline_flow

        where = PREFECT_API_URL.value() or "a temporary local Prefect API (its first start takes up to a few minutes)"
        say(f"running as the Prefect flow 'climate-optics-pipeline' on {where}")
        with console_without_tracebacks():
            return pipeline_flow(str(out), settings=cfg.to_dict(), overwrite=overwrite, **cluster)
