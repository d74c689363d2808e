"""Score a forecast store against the truth with persistence and climatology baselines."""

from __future__ import annotations

from datetime import timedelta

from prefect import flow, task

from climate_optics.cluster import dask_client
from climate_optics.workflow import score_forecast
from flows.caching import files_and_inputs, refresh_if_missing
from flows.retries import IO_RETRIES, retry_on_io_error


@task(
    name="evaluate",
    **IO_RETRIES,
    retry_condition_fn=retry_on_io_error,
    cache_key_fn=files_and_inputs,
    cache_expiration=timedelta(days=7),
    persist_result=True,
    result_serializer="json",
)
def evaluate_task(
    forecast: str,
    truth: str,
    out: str,
    *,
    metrics: list[str] | None = None,
    regions: list[str] | None = None,
    references: list[str] | None = None,
    overwrite: bool = False,
    dask_workers: int | None = None,
    dask_address: str | None = None,
) -> str:
    """``climate_optics.workflow.score_forecast``: scores store, its table and figures beside it, cached by inputs;
    retried on a transient I/O error.
    ``references``: further forecast stores scored alongside (``NAME=PATH`` or paths).
    ``dask_workers``/``dask_address``: score on a dask cluster (``climate_optics.cluster``)."""

    with dask_client(dask_workers, dask_address):
        return str(
            score_forecast(
                forecast, truth, out, metrics=metrics, regions=regions, references=references, overwrite=overwrite
            )
        )


def evaluate(forecast: str, truth: str, out: str, **kwargs) -> str:
    """Run the evaluate task, anew when ``out`` is missing."""
    return refresh_if_missing(evaluate_task, out)(forecast, truth, str(out), **kwargs)


@flow(name="evaluate")
def evaluate_flow(
    forecast: str,
    truth: str,
    out: str,
    metrics: list[str] | None = None,
    regions: list[str] | None = None,
    references: list[str] | None = None,
    overwrite: bool = False,
    dask_workers: int | None = None,
    dask_address: str | None = None,
) -> str:
    """Score ``forecast`` (and any ``references``) against ``truth`` (a store or catalog entry) into the scores store ``out``."""
    return evaluate(
        forecast,
        truth,
        out,
        metrics=metrics,
        regions=regions,
        references=references,
        overwrite=overwrite,
        dask_workers=dask_workers,
        dask_address=dask_address,
    )
