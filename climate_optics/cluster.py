"""A dask.distributed client for data work: ``--dask-workers N`` (a LocalCluster) or ``--dask-address``.

Inside ``dask_client(...)`` the client is dask's default scheduler: ingest reads its source blocks
on the cluster (``data_catalog.ingest``), and scoring (``climate_optics.evaluation.scoring``) sends one task per
batch of init and lead times to the workers, which read their part of the stores themselves (paths
must be reachable from the workers). Without either option nothing is started and nothing changes.
The pipeline starts one cluster (``dask_cluster``) and connects to it for its data steps only
(ingest, scoring): training and inference keep dask's local scheduler.
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
def dask_cluster(workers: int | None = None, address: str | None = None) -> Iterator[str | None]:
    """Yield a scheduler address for the block: a LocalCluster of ``workers`` processes started for it, or
    ``address`` itself; None when neither is given. Steps connect with ``dask_client(address=...)``, so a
    pipeline starts one cluster for all its data steps and its other steps keep dask's local scheduler."""
    check_dask_options(workers, address)
    if address or workers is None:
        yield address or None
        return
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        yield cluster.scheduler_address


@contextmanager
def dask_client(workers: int | None = None, address: str | None = None) -> Iterator[Any]:
    """Yield a ``distributed.Client`` (set as dask's default) for the block, or None when neither is given."""
    if address and workers is None:
        with connect(address) as client:
            yield client
        return
    with dask_cluster(workers, address) as where:
        if where is None:
            yield None
            return
        with connect(where) as client:
            yield client


def check_dask_options(workers: int | None, address: str | None) -> None:
    """A usage error for both options, fewer than one worker, or an address where no scheduler answers."""
    if workers is not None and address:
        raise UsageInputError("--dask-workers and --dask-address: give one of them (a local cluster, or a running one)")
    if workers is not None and workers < 1:
        raise UsageInputError(f"--dask-workers must be at least 1, got {workers}")
    if address:
        connect(address).close()


def connect(address: str) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address``; a usage error naming it when none answers."""
    from distributed import Client

    try:
        return Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageInputError(
            f"--dask-address {address}: no dask scheduler answers ({type(exc).__name__}: {exc}); "
            "start one with `dask scheduler` and `dask worker ADDRESS`"
        ) from None


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
