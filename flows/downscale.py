"""Train the diffusion downscaler on a fine-grid store (regression mean, then EDM residual) and
downscale a forecast store with it (an ensemble, and the bilinear baseline on the same grid)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from climate_optics.inference.downscale_forecast import downscale_forecast, interpolate_forecast
from climate_optics.workflow import train_downscaler
from flows.caching import files_and_inputs, refresh_if_missing
from flows.retries import retry_on_io_error


@task(
    name="train-downscaler",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retry_on_io_error,
    cache_policy=NO_CACHE,
)
def train_downscaler_task(
    store: str,
    run_dir: str,
    *,
    mode: str = "backprop",
    projector: str = "structured",
    preset: str = "tiny",
    steps: int = 100,
    diffusion_steps: int | None = None,
    regression_mode: str = "auto",
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    error: str = "auto",
    feedback_norm: str = "auto",
    opu_config: dict[str, Any] | None = None,
) -> str:
    """``climate_optics.workflow.train_downscaler``; a retry resumes the stage that was interrupted."""
    return str(
        train_downscaler(
            store,
            run_dir,
            mode=mode,
            projector=projector,
            preset=preset,
            steps=steps,
            diffusion_steps=diffusion_steps,
            regression_mode=regression_mode,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            error=error,
            feedback_norm=feedback_norm,
            opu_config=opu_config,
        )
    )


@task(
    name="downscale-forecast",
    cache_key_fn=files_and_inputs,
    cache_expiration=timedelta(days=7),
    persist_result=True,
    result_serializer="json",
)
def downscale_forecast_task(
    checkpoint: str,
    forecast: str,
    out: str,
    *,
    members: int = 4,
    steps: int | None = None,
    seed: int = 0,
    start: str | None = None,
    end: str | None = None,
    overwrite: bool = False,
) -> str:
    """``climate_optics.inference.downscale_forecast.downscale_forecast`` (init times ``start``..``end``), cached by inputs."""
    return str(
        downscale_forecast(
            checkpoint,
            forecast,
            out=out,
            members=members,
            steps=steps,
            seed=seed,
            start=start,
            end=end,
            overwrite=overwrite,
        )
    )


@task(
    name="interpolate-forecast",
    cache_key_fn=files_and_inputs,
    cache_expiration=timedelta(days=7),
    persist_result=True,
    result_serializer="json",
)
def interpolate_forecast_task(
    checkpoint: str,
    forecast: str,
    out: str,
    *,
    start: str | None = None,
    end: str | None = None,
    overwrite: bool = False,
) -> str:
    """``climate_optics.inference.downscale_forecast.interpolate_forecast`` (bilinear baseline), cached by inputs."""
    return str(interpolate_forecast(checkpoint, forecast, out=out, start=start, end=end, overwrite=overwrite))


def downscale_with_baseline(checkpoint: str, forecast: str, out: str, bilinear_out: str, **kwargs) -> tuple[str, str]:
    """The downscaled ensemble and the bilinear baseline of ``forecast``, each anew when its output is missing."""
    same = {k: kwargs[k] for k in ("start", "end", "overwrite") if k in kwargs}  # init times kept, overwrite
    ensemble = refresh_if_missing(downscale_forecast_task, out)(checkpoint, forecast, str(out), **kwargs)
    baseline = refresh_if_missing(interpolate_forecast_task, bilinear_out)(
        checkpoint, forecast, str(bilinear_out), **same
    )
    return ensemble, baseline
