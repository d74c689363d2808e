"""The pipeline's forecast task: a trained checkpoint into a forecast store."""

from __future__ import annotations

from datetime import timedelta

from prefect import task

from climate_optics.workflow import forecast_held_out
from flows.caching import files_and_inputs, refresh_if_missing
from flows.retries import IO_RETRIES, retry_on_io_error


@task(
    name="forecast",
    **IO_RETRIES,
    retry_condition_fn=retry_on_io_error,
    cache_key_fn=files_and_inputs,
    cache_expiration=timedelta(days=7),
    persist_result=True,
    result_serializer="json",
)
def forecast_task(
    checkpoint: str, store: str, out: str, *, lead_hours: list[int], max_inits: int = 24, overwrite: bool = False
) -> str:
    """``climate_optics.workflow.forecast_held_out``: the run's held-out init times, cached by inputs."""
    return str(
        forecast_held_out(checkpoint, store, out, lead_hours=lead_hours, max_inits=max_inits, overwrite=overwrite)
    )


def forecast(checkpoint: str, store: str, out: str, **kwargs) -> str:
    """Run the forecast task, anew when ``out`` is missing."""
    return refresh_if_missing(forecast_task, out)(checkpoint, store, str(out), **kwargs)
