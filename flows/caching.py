"""Cache keys for tasks that pass paths: a cached result is reused only while its inputs are unchanged.

A key hashes the task's source code, its parameters and the size and modification time of
every parameter (or list item) that names an existing input file or store, so replacing a source file or
re-ingesting a store invalidates the cache. ``refresh_if_missing`` forces a task to run anew
(and refresh its cache entry) when an output it would return no longer exists on disk.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

OUTPUT_PARAMETERS = ("out", "run_dir")  # parameters naming what a task writes, not what it reads
PLACEMENT_PARAMETERS = ("dask_workers", "dask_address")  # where a task runs, not what it computes (same results)


def fingerprint(path: Path) -> list[Any]:
    """(size, mtime) of a file, or of a store's top-level entries (Zarr metadata, checkpoint)."""
    if path.is_file():
        stat = path.stat()
        return [stat.st_size, stat.st_mtime_ns]
    entries = sorted(p for p in path.iterdir() if p.is_file())
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in entries] or [path.stat().st_mtime_ns]


def files_and_inputs(context: Any, parameters: dict[str, Any]) -> str | None:
    """Prefect ``cache_key_fn``: hash of task source, parameters and input-path fingerprints."""
    from prefect.utilities.hashing import hash_objects

    files = {}
    for name, value in parameters.items():
        if name in OUTPUT_PARAMETERS:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        paths = [Path(v) for v in values if isinstance(v, (str, os.PathLike)) and len(str(v)) < 4096]
        found = [fingerprint(p) for p in paths if p.exists()]
        if found:
            files[name] = found if isinstance(value, (list, tuple)) else found[0]
    source = inspect.getsource(context.task.fn)
    inputs = {
        k: v for k, v in parameters.items() if k not in PLACEMENT_PARAMETERS
    }  # a new cluster's address keeps the cache
    return hash_objects(context.task.name, source, inputs, files)


def refresh_if_missing(task_obj: Any, *outputs: str | os.PathLike) -> Any:
    """``task_obj``, forced to run and refresh its cache when one of ``outputs`` is missing."""
    if all(Path(p).exists() for p in outputs):
        return task_obj
    return task_obj.with_options(refresh_cache=True)
