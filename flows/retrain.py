"""Scheduled retraining: ingest the latest data, warm-start from the previous model, score, promote.

``retrain_deployment(cron=...)`` is the deployment (``flow.to_deployment``); ``serve_retraining``
runs it on its schedule (``prefect.serve``; ``climate-optics serve`` on the command line). Each
retraining writes ``RUNS_DIR/<UTC time>/`` (data, train, forecast, scores) and then points
``RUNS_DIR/LATEST.json`` at it; the next one starts from that checkpoint's weights. A retry of a
failed training task resumes from the run's own last checkpoint.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow

from climate_optics.workflow import DEMO_SOURCE, PipelineConfig, RunLayout, latest_run, record_latest, window_start
from flows.evaluate import evaluate
from flows.forecast import forecast
from flows.ingest import ingest
from flows.train import train_forecaster_task

DEPLOYMENT_NAME = "scheduled-retraining"
DEFAULT_CRON = "0 3 * * 1"  # Mondays 03:00 UTC


@flow(name="retrain-forecaster", log_prints=True)
def retrain_flow(runs_dir: str, source: str = DEMO_SOURCE, options: dict[str, Any] | None = None,
                 window_days: float | None = None, mode: str = "backprop", steps: int = 200,
                 settings: dict[str, Any] | None = None) -> dict[str, str]:
    """One retraining into a new time-stamped run under ``runs_dir``; returns the paths it wrote.

    ``window_days``: train on the trailing days of the record only. ``settings``: further
    ``PipelineConfig`` fields (preset, lead_hours, batch_size, ...).
    """
    config = PipelineConfig(**{"source": source, "options": options, "mode": mode, "steps": steps, **(settings or {})})
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    previous = latest_run(runs_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    layout = RunLayout(Path(runs_dir) / stamp)
    layout.root.mkdir()

    data = ingest(config.source, layout.data, options=config.options, variables=config.variables,
                  levels=config.levels, start=window_start(config.source, window_days, config.options))
    checkpoint = train_forecaster_task(data, str(layout.train), mode=config.mode, projector=config.projector,
                                       preset=config.preset, model=config.model, steps=config.steps,
                                       batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                                       warm_start=previous["checkpoint"] if previous else None)
    forecast_store = forecast(checkpoint, data, layout.forecast, lead_hours=list(config.lead_hours),
                              max_inits=config.max_inits)
    scores = evaluate(forecast_store, data, layout.scores, metrics=config.metrics, regions=config.regions)
    record = {"run_dir": str(layout.root), "data": data, "checkpoint": checkpoint, "forecast": forecast_store,
              "scores": scores, "warm_start": previous["checkpoint"] if previous else "", "finished": stamp}
    record_latest(runs_dir, record)
    print(f"retrained {'from ' + previous['checkpoint'] if previous else 'from scratch'}: {checkpoint}")
    return record


def retrain_deployment(runs_dir: str, *, cron: str = DEFAULT_CRON, name: str = DEPLOYMENT_NAME, **parameters: Any):
    """The scheduled-retraining deployment (a ``RunnerDeployment``) with its cron schedule."""
    return retrain_flow.to_deployment(name=name, cron=cron, parameters={"runs_dir": str(runs_dir), **parameters},
                                      description="Retrain the forecaster on the latest data, warm-started from the last run.")


def serve_retraining(runs_dir: str, *, cron: str = DEFAULT_CRON, name: str = DEPLOYMENT_NAME, **parameters: Any) -> None:
    """Serve the deployment: runs retraining on its schedule until interrupted (needs a Prefect API)."""
    from prefect import serve

    serve(retrain_deployment(runs_dir, cron=cron, name=name, **parameters))
