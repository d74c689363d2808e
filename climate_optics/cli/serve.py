"""``climate-optics serve``: serve the scheduled-retraining deployment (Prefect ``serve``).

Blocks until interrupted, running ``flows.retrain.retrain_flow`` on its cron schedule. The
deployment needs a Prefect API: set ``PREFECT_API_URL`` (e.g. after ``prefect server start``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def check_cron(cron: str) -> str:
    """The cron expression, validated (five fields, Prefect's parser) before anything starts."""
    from prefect.client.schemas.schedules import CronSchedule

    from climate_optics.errors import UsageInputError

    message = f"--cron {cron!r}: not a five-field cron expression such as '0 3 * * 1' (Mondays 03:00)"
    if len(cron.split()) != 5:
        raise UsageInputError(message)
    try:
        CronSchedule(cron=cron)
    except ValueError:
        raise UsageInputError(message) from None
    return cron


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        runs_dir: Path = typer.Option(Path("climate-optics-runs"), "--runs-dir", help="Where each retraining writes its run (and LATEST.json)."),
        data: str = typer.Option("synthetic-reanalysis", "--data", help="Catalog entry or path of the data to retrain on."),
        cron: str = typer.Option("0 3 * * 1", "--cron", help="Schedule, cron syntax in UTC (default: Mondays 03:00)."),
        window_days: Optional[float] = typer.Option(None, "--window-days", min=1, help="Train on the trailing days of the record only."),
        mode: str = typer.Option("backprop", "--mode", help="Training mode: backprop, dfa or optical."),
        steps: int = typer.Option(200, "--steps", min=1, help="Training steps per retraining."),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML file of further pipeline settings."),
        name: str = typer.Option("scheduled-retraining", "--name", help="Deployment name."),
    ) -> None:
        """Serve the scheduled retraining deployment until interrupted."""
        from climate_optics.cli.demo import load_settings, pipeline_config

        check_cron(cron)
        settings = load_settings(config)
        pipeline_config(settings | {"source": data, "mode": mode, "steps": steps})  # validate before serving
        from flows.retrain import serve_retraining

        typer.echo(f"serving '{name}' ({cron}); runs in {runs_dir}; Ctrl-C to stop", err=True)
        serve_retraining(str(runs_dir), cron=cron, name=name, source=data, window_days=window_days, mode=mode,
                         steps=steps, settings=settings or None)
