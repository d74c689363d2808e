"""Damaged input data: a chunk that cannot be decoded is bad input, named by store, variable and chunk.

A truncated or overwritten Zarr chunk surfaces deep in a dask computation as the codec's own error
(``RuntimeError: error during blosc decompression: -1``, a zstd or CRC error, ...), which names
neither the store nor the variable. ``reporting_damage(source)`` turns such an error, raised while
its block reads ``source``, into a ``DataInputError``: for a Zarr store it finds the first chunk
that fails to decode (reading one chunk at a time, only after a failure) and names it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import traceback
from collections.abc import Iterator
from pathlib import Path

from data_catalog.errors import DataInputError

CODEC_MODULES = ("numcodecs", os.path.join("zarr", "codecs"), os.path.join("zarr", "core", "codec_pipeline"))


def is_decode_error(exc: BaseException) -> bool:
    """True when ``exc`` was raised while a codec decoded stored bytes (not bad input already named)."""
    if isinstance(exc, DataInputError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return any(module in frame.filename for frame in frames for module in CODEC_MODULES) or "decompress" in str(exc)


def find_damaged_chunk(store: Path) -> tuple[str, tuple[int, ...], str] | None:
    """(array path, chunk index, reason) of the first chunk of ``store`` that fails to decode, or None."""
    import zarr

    try:
        group = zarr.open_group(str(store), mode="r")
    except Exception:  # noqa: BLE001 - not a readable group: nothing to locate
        return None
    for path, array in sorted(group.arrays(), key=lambda item: item[0]) + _nested(group):
        grid = getattr(array, "cdata_shape", ())
        for index in itertools.product(*(range(n) for n in grid)):
            try:
                array.get_block_selection(index)
            except Exception as exc:  # noqa: BLE001 - any failure to decode is what is looked for
                return path, index, f"{type(exc).__name__}: {exc}"
    return None


def _nested(group) -> list:
    """Arrays of sub-groups (a store's climatology group), as (group/array, array) pairs."""
    found = []
    for name, sub in sorted(group.groups(), key=lambda item: item[0]):
        found += [(f"{name}/{path}", array) for path, array in sorted(sub.arrays(), key=lambda item: item[0])]
        found += [(f"{name}/{path}", array) for path, array in _nested(sub)]
    return found


@contextlib.contextmanager
def reporting_damage(*sources: str | os.PathLike) -> Iterator[None]:
    """Within the block, a decode error becomes a DataInputError naming the damaged store and chunk."""
    try:
        yield
    except Exception as exc:
        if not is_decode_error(exc):
            raise
        reason = f"{type(exc).__name__}: {exc}"
        for source in sources:
            path = Path(source)
            found = find_damaged_chunk(path) if path.is_dir() else None
            if found is not None:
                name, index, why = found
                raise DataInputError(
                    f"chunk {'.'.join(map(str, index))} cannot be decoded ({why}); the store is "
                    "damaged or truncated: copy or write it again",
                    source=path,
                    variable=name,
                ) from None
        raise DataInputError(
            f"holds data that cannot be decoded ({reason}); damaged or truncated input",
            source=", ".join(map(str, sources)),
        ) from None
