"""Ingest a source (catalog entry, NetCDF/GRIB files, Zarr store) into a canonical store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import flow, task

from flows.caching import files_and_inputs, refresh_if_missing
from flows.retries import IO_RETRIES, retry_on_io_error


@task(
    name="ingest",
    **IO_RETRIES,
    retry_condition_fn=retry_on_io_error,
    cache_key_fn=files_and_inputs,
    cache_expiration=timedelta(days=7),
    persist_result=True,
    result_serializer="json",
)
def ingest_store(
    source: str,
    out: str,
    *,
    options: dict[str, Any] | None = None,
    variables: list[str] | None = None,
    levels: list[float] | None = None,
    start: str | None = None,
    end: str | None = None,
    climatology_period: Any = None,
    overwrite: bool = False,
    dask_workers: int | None = None,
    dask_address: str | None = None,
) -> str:
    """``data_catalog.ingest.ingest``; retried on a transient I/O error (atomic: nothing half-written), cached by inputs.
    ``dask_workers``/``dask_address``: read the source on a dask cluster (``climate_optics.cluster``)."""
    from climate_optics.cluster import dask_client
    from data_catalog.ingest import ingest

    with dask_client(dask_workers, dask_address):
        return str(
            ingest(
                source,
                out,
                options=options,
                variables=variables,
                levels=levels,
                start=start,
                end=end,
                climatology_period=climatology_period,
                overwrite=overwrite,
            )
        )


def ingest(source: str, out: str, **kwargs: Any) -> str:
    """Run the ingest task, anew when ``out`` is missing (a cached path must exist)."""
    return refresh_if_missing(ingest_store, out)(source, str(out), **kwargs)


@flow(name="ingest")
def ingest_flow(
    source: str,
    out: str,
    options: dict[str, Any] | None = None,
    variables: list[str] | None = None,
    levels: list[float] | None = None,
    start: str | None = None,
    end: str | None = None,
    overwrite: bool = False,
    dask_workers: int | None = None,
    dask_address: str | None = None,
) -> str:
    """Ingest ``source`` into the canonical Zarr store ``out`` (statistics and climatology included)."""
    return ingest(
        source,
        out,
        options=options,
        variables=variables,
        levels=levels,
        start=start,
        end=end,
        overwrite=overwrite,
        dask_workers=dask_workers,
        dask_address=dask_address,
    )
