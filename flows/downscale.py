"""Train the diffusion downscaler on a fine-grid store (regression mean, then EDM residual)."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from climate_optics.workflow import train_downscaler


@task(name="train-downscaler", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def train_downscaler_task(store: str, run_dir: str, *, mode: str = "backprop", projector: str = "structured",
                          preset: str = "tiny", steps: int = 100, batch_size: int = 8, lr: float = 1e-3,
                          seed: int = 0) -> str:
    """``climate_optics.workflow.train_downscaler``; a retry resumes the stage that was interrupted."""
    return str(train_downscaler(store, run_dir, mode=mode, projector=projector, preset=preset, steps=steps,
                                batch_size=batch_size, lr=lr, seed=seed))


@flow(name="train-downscaler")
def downscale_flow(store: str, run_dir: str, mode: str = "backprop", projector: str = "structured",
                   preset: str = "tiny", steps: int = 100, batch_size: int = 8, lr: float = 1e-3, seed: int = 0) -> str:
    """Train both downscaler stages into ``run_dir`` (``regression/``, ``diffusion/``)."""
    return train_downscaler_task(store, run_dir, mode=mode, projector=projector, preset=preset, steps=steps,
                                 batch_size=batch_size, lr=lr, seed=seed)
