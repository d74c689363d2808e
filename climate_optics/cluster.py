"""A dask.distributed client for data work: ``--dask-workers N`` (a LocalCluster) or ``--dask-address``.

Inside ``dask_client(...)`` the client is dask's default scheduler: ingest reads its source blocks
on the cluster (``data_catalog.ingest``), and scoring (``climate_optics.evaluation.scoring``) sends one task per
batch of init and lead times to the workers, which read their part of the stores themselves (paths
must be reachable from the workers). Without either option nothing is started and nothing changes.
``distributed`` is imported only when a client is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from climate_optics.errors import UsageInputError

CONNECT_TIMEOUT_S = 10


@contextmanager
def dask_client(workers: int | None = None, address: str | None = None) -> Iterator[Any]:
    """Yield a ``distributed.Client`` (set as dask's default) for the block, or None when neither is given."""
    if workers is not None and address:
        raise UsageInputError("--dask-workers and --dask-address: give one of them (a local cluster, or a running one)")
    if workers is None and not address:
        yield None
        return
    from distributed import Client, LocalCluster

    if address:
        try:
            client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageInputError(f"--dask-address {address}: no dask scheduler answers ({type(exc).__name__}: {exc}); "
                                  "start one with `dask scheduler` and `dask worker ADDRESS`") from None
        with client:
            yield client
        return
    if workers < 1:
        raise UsageInputError(f"--dask-workers must be at least 1, got {workers}")
    with (LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                       silence_logs=logging.ERROR) as cluster,
          Client(cluster) as client):
        yield client


def current_client() -> Any:
    """The distributed client that is dask's default scheduler now, else None (distributed not imported)."""
    import dask

    if dask.config.get("scheduler", None) != "dask.distributed":
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None
