"""``climate-optics serve``: serve the scheduled-retraining deployment (Prefect ``serve``).

Blocks until interrupted, running ``flows.retrain.retrain_flow`` on its cron schedule into a model
registry. A schedule needs a persistent Prefect server: ``PREFECT_API_URL`` (from the environment
or the active Prefect profile) must name one that answers, checked before Prefect is imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

SERVER_HINT = (
    "start one with `prefect server start --host 127.0.0.1` and set "
    "PREFECT_API_URL=http://127.0.0.1:4200/api (or `prefect config set PREFECT_API_URL=...`)"
)


def check_cron(cron: str, *, parse: bool = True) -> str:
    """The cron expression, validated before anything starts: five fields, then (``parse``) Prefect's parser."""
    from climate_optics.errors import UsageInputError

    message = f"--cron {cron!r}: not a five-field cron expression such as '0 3 * * 1' (Mondays 03:00)"
    if len(cron.split()) != 5:
        raise UsageInputError(message)
    if not parse:
        return cron
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError:
        raise UsageInputError(message) from None
    return cron


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment, else from the active profile of PREFECT_HOME/profiles.toml."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text())
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(url) if url else None


def check_server(timeout: float = 5.0) -> str:
    """The Prefect API URL, after checking that it is set and that the server answers its health check."""
    import urllib.error
    import urllib.request

    from climate_optics.errors import UsageInputError

    url = configured_api_url()
    if not url:
        raise UsageInputError(f"serve needs a persistent Prefect server and PREFECT_API_URL is not set: {SERVER_HINT}")
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as response:  # noqa: S310 - the user's server
            response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageInputError(f"PREFECT_API_URL={url}: no Prefect server answers ({reason}); {SERVER_HINT}") from None
    return url


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        registry: Path = typer.Option(
            Path("climate-optics-registry"),
            "--registry",
            help="The model registry each retraining writes to (created if missing).",
        ),
        data: str = typer.Option(
            "synthetic-reanalysis", "--data", help="Catalog entry or path of the data to retrain on."
        ),
        cron: str = typer.Option("0 3 * * 1", "--cron", help="Schedule, cron syntax in UTC (default: Mondays 03:00)."),
        window_days: Optional[float] = typer.Option(
            None, "--window-days", min=1, help="Train on the trailing days of the record only."
        ),
        mode: str = typer.Option("backprop", "--mode", help="Training mode: backprop, dfa or optical."),
        steps: int = typer.Option(200, "--steps", min=1, help="Training steps per retraining."),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML file of further pipeline settings."),
        gate_metric: str = typer.Option(
            "rmse", "--gate-metric", help="Score deciding promotion: rmse, mse, mae, bias or acc."
        ),
        gate_variable: str = typer.Option("geopotential", "--gate-variable", help="Variable of the deciding score."),
        gate_level: Optional[float] = typer.Option(
            500.0, "--gate-level", help="Pressure level (hPa) of the deciding score."
        ),
        gate_lead_hours: int = typer.Option(
            24, "--gate-lead-hours", min=1, help="Lead time (hours) of the deciding score."
        ),
        keep: int = typer.Option(
            5, "--keep", min=1, help="Registry versions kept (besides current and its predecessor)."
        ),
        name: str = typer.Option("scheduled-retraining", "--name", help="Deployment name."),
    ) -> None:
        """Serve the scheduled retraining deployment until interrupted (needs a Prefect server)."""
        from climate_optics.registry import ModelRegistry
        from climate_optics.retraining import PromotionGate
        from flows.cli.demo import load_settings, pipeline_config

        gate = PromotionGate(metric=gate_metric, variable=gate_variable, level=gate_level, lead_hours=gate_lead_hours)
        check_cron(cron, parse=False)
        url = check_server()  # before Prefect is imported: without a server, fail in seconds
        check_cron(cron)
        settings = load_settings(config)
        pipeline_config(settings | {"source": data, "mode": mode, "steps": steps})  # validate before serving
        ModelRegistry.open(registry, create=True)
        from flows.retrain import serve_retraining

        typer.echo(f"serving '{name}' ({cron}) on {url}; registry {registry}; Ctrl-C to stop", err=True)
        serve_retraining(
            str(registry.resolve()),
            cron=cron,
            name=name,
            source=data,
            window_days=window_days,
            mode=mode,
            steps=steps,
            settings=settings or None,
            gate=vars(gate).copy(),
            keep=keep,
        )
