"""Atomic Zarr stores (and files): write into a temporary sibling, rename into place when complete.

An existing store is never replaced without ``overwrite=True``; a failure leaves nothing
behind (the temporary sibling is removed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from data_catalog.errors import DataInputError


def check_target(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Validate an output path before any work is done; returns it as a Path."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise DataInputError("output store already exists; pass --overwrite (overwrite=True) to replace it", source=target)
    if not target.parent.exists():
        raise DataInputError("parent directory of the output store does not exist", source=target)
    return target


@contextlib.contextmanager
def atomic_store(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path to write into; on success it replaces ``path``.

    >>> with atomic_store("out.zarr") as tmp:  # doctest: +SKIP
    ...     ds.to_zarr(tmp)
    """
    target = check_target(path, overwrite=overwrite)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to {tmp}")
        if tmp.is_file() and not target.is_dir():
            os.replace(tmp, target)  # a single file replaces its target in one atomic step
        elif target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            target.rename(old)
            tmp.rename(target)
            _remove(old)
        else:
            tmp.rename(target)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def consolidate(path: str | os.PathLike) -> None:
    """Consolidate a Zarr store's metadata so readers open it in one read, without fallback warnings."""
    import warnings

    import zarr

    with warnings.catch_warnings():  # zarr notes that consolidation is not yet in the v3 spec
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(path))
