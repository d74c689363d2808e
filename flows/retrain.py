"""Scheduled retraining with a promotion gate, into a model registry (``climate_optics.registry``).

Each run: ingest the newest data into ``REGISTRY/runs/<UTC time>/`` -> train warm-started from the
registry's ``current`` model -> forecast the candidate run's held-out period with the candidate and
with ``current`` and score both (``climate_optics.retraining``) -> register the candidate as a new
version -> promote it only if it is at least as good on the gate's score (default Z500 RMSE at 24 h).
A Markdown artifact (key ``retrain-gate``) states the decision with both scores. A run that fails
at any step leaves ``current`` where it was. ``retrain_deployment`` is the deployment (cron
schedule, concurrency limit 1); ``climate-optics serve`` serves it.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from climate_optics.io.checkpoints import load_checkpoint
from climate_optics.io.windows import open_store
from climate_optics.registry import DEFAULT_KEEP, ModelRegistry
from climate_optics.retraining import PromotionGate, compare_models, window_start
from climate_optics.run_layout import DEMO_SOURCE, PipelineConfig, RunLayout
from flows.ingest import ingest
from flows.train import train_forecaster_task

DEPLOYMENT_NAME = "scheduled-retraining"
DEFAULT_CRON = "0 3 * * 1"  # Mondays 03:00 UTC
ARTIFACT_KEY = "retrain-gate"  # Prefect artifact keys: lowercase letters, digits and dashes


@task(name="compare-with-current", cache_policy=NO_CACHE)
def compare_task(
    candidate: str,
    current: str | None,
    store: str,
    work_dir: str,
    gate: dict[str, Any],
    lead_hours: list[int],
    max_inits: int,
) -> dict[str, Any]:
    """``climate_optics.retraining.compare_models``: both models scored on the candidate's held-out period."""
    return compare_models(
        candidate, current, store, work_dir, PromotionGate(**gate), lead_hours=lead_hours, max_inits=max_inits
    ).to_dict()


@task(name="register-candidate", cache_policy=NO_CACHE)
def register_task(
    registry: str,
    checkpoint: str,
    store: str,
    comparison: dict[str, Any],
    gate: dict[str, Any],
    provenance: dict[str, Any],
) -> str:
    """Copy the candidate into the registry as a new version with its skill and data period."""
    validation = {
        "gate": gate,
        "score": comparison["candidate"],
        "current_score": comparison["current"],
        "held_out": list(comparison["held_out"]),
        "scores": comparison["scores"],
    }
    return ModelRegistry.open(registry).register(
        checkpoint, validation=validation, data_period=data_period(store, checkpoint), provenance=provenance
    )


def data_period(store: str, checkpoint: str) -> dict[str, str]:
    """First and last time of the data, and where the held-out (validation) part starts."""

    times = open_store(store)["time"].values
    validation_start = load_checkpoint(checkpoint)["task"].get("data", {}).get("val_start_time", "")
    return {"start": str(times[0]), "end": str(times[-1]), "validation_start": str(validation_start)}


def publish_decision(
    version: str, promoted: bool, reason: str, comparison: dict[str, Any], gate: PromotionGate
) -> None:
    from prefect.artifacts import create_markdown_artifact

    current = comparison["current"]
    markdown = (
        f"# Retraining: {version} {'promoted' if promoted else 'not promoted'}\n\n{reason}.\n\n"
        f"| model | {gate.describe()} |\n|---|---|\n| candidate ({version}) | {comparison['candidate']:.6g} |\n"
        f"| current | {'none' if current is None else f'{current:.6g}'} |\n\n"
        f"Held-out init times {comparison['held_out'][0]} to {comparison['held_out'][1]}; "
        f"scores in `{comparison['scores']}`.\n"
    )
    create_markdown_artifact(markdown, key=ARTIFACT_KEY, description="Promotion decision of the retrained forecaster")


@flow(name="retrain-forecaster", log_prints=True)
def retrain_flow(
    registry: str,
    source: str = DEMO_SOURCE,
    options: dict[str, Any] | None = None,
    window_days: float | None = None,
    mode: str = "backprop",
    steps: int = 200,
    settings: dict[str, Any] | None = None,
    gate: dict[str, Any] | None = None,
    keep: int = DEFAULT_KEEP,
    warm_start: bool = True,
) -> dict[str, Any]:
    """One retraining into ``registry``; returns what it decided (version, promoted, reason, scores).

    ``window_days``: train on the trailing days of the record only. ``settings``: further
    ``PipelineConfig`` fields (preset, lead_hours, batch_size, lr, ...). ``gate``: ``PromotionGate``
    fields. ``keep``: versions kept after the run. ``warm_start``: start from ``current``'s weights.
    """
    config = PipelineConfig(**{"source": source, "options": options, "mode": mode, "steps": steps, **(settings or {})})
    promotion = PromotionGate.from_dict(gate)
    models = ModelRegistry.open(registry, create=True)
    current = models.current()
    current_checkpoint = str(models.checkpoint(current)) if current else None
    layout = RunLayout(models.new_run_dir())

    data = ingest(
        config.source,
        layout.data,
        options=config.options,
        variables=config.variables,
        levels=config.levels,
        start=window_start(config.source, window_days, config.options),
    )
    start_from = current_checkpoint if warm_start else None
    checkpoint = train_forecaster_task(
        data, str(layout.train), warm_start=start_from, **config.train_options(config.mode)
    )
    comparison = compare_task(
        checkpoint,
        current_checkpoint,
        data,
        str(layout.root),
        {**vars(promotion)},
        list(config.lead_hours),
        config.max_inits,
    )
    version = register_task(
        registry,
        checkpoint,
        data,
        comparison,
        {**vars(promotion)},
        {"run_dir": str(layout.root), "warm_start": current or "", "source": config.source, "mode": config.mode},
    )
    promoted, reason = promotion.decide(comparison["candidate"], comparison["current"])
    if promoted and not models.promote(version, reason=reason, expected_current=current):
        promoted, reason = False, f"current changed from {current} during this retraining; {version} left for review"
    publish_decision(version, promoted, reason, comparison, promotion)
    removed = models.prune(keep)
    print(f"{version}: {'promoted' if promoted else 'not promoted'}: {reason}")
    return {
        "version": version,
        "promoted": promoted,
        "reason": reason,
        "current": models.current(),
        "previous": current,
        "comparison": comparison,
        "pruned": removed,
        "run_dir": str(layout.root),
    }


def retrain_deployment(registry: str, *, cron: str = DEFAULT_CRON, name: str = DEPLOYMENT_NAME, **parameters: Any):
    """The scheduled-retraining deployment (a ``RunnerDeployment``): cron schedule, one run at a time."""
    return retrain_flow.to_deployment(
        name=name,
        cron=cron,
        parameters={"registry": str(registry), **parameters},
        concurrency_limit=1,
        description="Retrain the forecaster on the newest data; promote it only if it "
        "scores at least as well as the registry's current model.",
    )


def serve_retraining(
    registry: str, *, cron: str = DEFAULT_CRON, name: str = DEPLOYMENT_NAME, **parameters: Any
) -> None:
    """Serve the deployment: runs retraining on its schedule until interrupted (needs a Prefect server)."""
    from prefect import serve

    serve(retrain_deployment(registry, cron=cron, name=name, **parameters))
