"""Atomic outputs: write into a temporary sibling, rename into place when complete, one writer at a time.

- ``check_target`` runs before any work: it takes the target's lock (``data_catalog.locks``;
  a second writer is refused naming the holder, or waits), removes temporaries of dead writers
  beside it, and refuses an existing target unless ``overwrite`` is given *and* the target is
  something this tool wrote: a Zarr store with our provenance attributes (or a directory holding
  ``MARKER``), an empty directory, or for ``kind="file"`` a plain file.
- ``atomic_store`` yields a temporary sibling to write into and, when the block completes,
  marks it if it carries no provenance and swaps it into place (one atomic exchange where the system offers it). A failure
  or a signal removes the temporary; the lock is dropped either way.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from data_catalog import locks
from data_catalog.errors import DataInputError
from data_catalog.faults import pause_point

MARKER = ".climate-optics-store"  # JSON file marking a directory we wrote that carries no provenance attributes
PROVENANCE_KEYS = ("climate_optics_version", "generator_version")  # root attributes of earlier stores
KINDS = ("store", "file")


def check_target(path: str | os.PathLike, *, overwrite: bool, kind: str = "store") -> Path:
    """Lock the output path and validate it before any work is done; returns it as a Path.

    The lock stays held until ``atomic_store`` for the same path finishes (or ``locks.release``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    target = Path(path)
    if not target.parent.is_dir():
        raise DataInputError("parent directory of the output does not exist", source=target)
    newly = locks.acquire(target)
    try:
        _check_replaceable(target, overwrite=overwrite, kind=kind)
    except BaseException:
        if newly:
            locks.release(target)
        raise
    return target


def is_tool_store(path: str | os.PathLike) -> bool:
    """True for a directory store this tool wrote: it holds MARKER, or our provenance attributes."""
    path = Path(path)
    if (path / MARKER).is_file():
        return True
    for metadata, key in (("zarr.json", "attributes"), (".zattrs", None)):
        try:
            document = json.loads((path / metadata).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        attrs = document.get(key, {}) if key and isinstance(document, dict) else document
        if isinstance(attrs, dict) and any(k in attrs for k in PROVENANCE_KEYS):
            return True
    return False


def check_own_directory(path: str | os.PathLike, *, signature: str, what: str = "run directory") -> None:
    """Before reusing a non-empty directory: refuse unless it holds ``signature``, a file this tool writes there."""
    path = Path(path)
    if path.is_dir() and any(path.iterdir()) and not (path / signature).is_file():
        raise DataInputError(
            f"is not a {what} this tool wrote (it holds {describe_contents(path)}, but no {signature}); "
            f"--overwrite replaces only climate-optics {what}s",
            source=path,
        )


def describe_contents(path: Path, limit: int = 3) -> str:
    """A few words on what a directory holds, for refusals: 'notes.txt, data/ and 4 more'."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_replaceable(target: Path, *, overwrite: bool, kind: str) -> None:
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        raise DataInputError("output already exists; pass --overwrite (overwrite=True) to replace it", source=target)
    if target.is_symlink():
        raise DataInputError(
            "is a symbolic link; --overwrite replaces only outputs this tool wrote, not links", source=target
        )
    if kind == "file":
        if not target.is_file():
            raise DataInputError(
                "is a directory, not a file this tool wrote; --overwrite will not replace it", source=target
            )
        return
    if target.is_dir():
        if not any(target.iterdir()) or is_tool_store(target):
            return
        raise DataInputError(
            f"is not a store this tool wrote (it holds {describe_contents(target)}); "
            "--overwrite replaces only climate-optics stores and empty directories",
            source=target,
        )
    raise DataInputError("is a file, not a store this tool wrote; --overwrite will not replace it", source=target)


def _write_marker(directory: Path) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version("climate-optics")
    except PackageNotFoundError:
        package_version = "unknown"
    record = {"writer": "climate-optics", "version": package_version}  # no time: same inputs, same bytes
    (directory / MARKER).write_text(json.dumps(record) + "\n", encoding="utf-8")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_store(path: str | os.PathLike, *, overwrite: bool = False, kind: str = "store") -> Iterator[Path]:
    """Yield a temporary sibling path to write into; on success it replaces ``path``.

    ``kind="file"`` for single files (checkpoints, JSON records): an existing file is replaced.

    >>> with atomic_store("out.zarr") as tmp:  # doctest: +SKIP
    ...     ds.to_zarr(tmp)
    """
    target = check_target(path, overwrite=overwrite, kind=kind)
    tmp = locks.temporary_path(target)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to {tmp}")
        if tmp.is_dir():
            if not is_tool_store(tmp):  # Zarr stores are recognised by their provenance attributes
                _write_marker(tmp)
        else:
            _fsync_file(tmp)
        pause_point("before-rename", target)
        _check_replaceable(target, overwrite=overwrite, kind=kind)  # still true under the lock
        if tmp.is_file():
            os.replace(tmp, target)  # a single file replaces its target in one atomic step
        elif not target.exists():
            tmp.rename(target)
        elif _exchange(tmp, target):
            pause_point("after-exchange", target)
            _remove(tmp)  # now holds the replaced store
        else:
            old = locks.temporary_path(target, "old")
            target.rename(old)
            pause_point("between-renames", target)
            tmp.rename(target)
            _remove(old)
    except BaseException:
        _remove(tmp)
        raise
    finally:
        locks.release(target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def consolidate(path: str | os.PathLike) -> None:
    """Consolidate a Zarr store's metadata so readers open it in one read, without fallback warnings."""
    import warnings

    import zarr

    with warnings.catch_warnings():  # zarr notes that consolidation is not yet in the v3 spec
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(path))
