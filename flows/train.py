"""The pipeline's training task: the ViT forecaster on an ingested store (backprop, DFA or optical DFA)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from climate_optics.io.checkpoints import LATEST
from climate_optics.training.rollout_defaults import ROLLOUT_DEPTH, ROLLOUT_TAIL
from climate_optics.workflow import train_forecaster
from flows.retries import retry_on_io_error


@task(
    name="train-forecaster",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retry_on_io_error,
    cache_policy=NO_CACHE,
)
def train_forecaster_task(
    store: str,
    run_dir: str,
    *,
    mode: str = "backprop",
    projector: str = "structured",
    preset: str = "tiny",
    architecture: str | None = None,
    model: dict[str, Any] | None = None,
    steps: int = 300,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    error: str = "auto",
    feedback_norm: str = "auto",
    opu_config: dict[str, Any] | None = None,
    warm_start: str | None = None,
    rollout: int = ROLLOUT_DEPTH,
    rollout_tail: float = ROLLOUT_TAIL,
) -> str:
    """``climate_optics.workflow.train_forecaster``; a retry resumes from the run's last checkpoint."""

    resume = (Path(run_dir) / LATEST).exists()
    return str(
        train_forecaster(
            store,
            run_dir,
            mode=mode,
            projector=projector,
            preset=preset,
            architecture=architecture,
            model=model,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            error=error,
            feedback_norm=feedback_norm,
            opu_config=opu_config,
            warm_start=warm_start,
            resume=resume,
            rollout=rollout,
            rollout_tail=rollout_tail,
        )
    )
