"""Which task failures the flows retry: transient storage and network errors, never bad input.

A Prefect task retries what ``retry_on_io_error`` accepts: an ``OSError`` (EIO, a stale NFS handle,
a timeout, a dropped connection, ...) anywhere in the exception's cause chain. It does not retry bad
input (``climate_optics.errors.BAD_INPUT_ERRORS``, a busy target included), a missing or misplaced
path or a refused permission, which no retry fixes, nor any other error (a bug fails at once).
Writes are atomic, so a failed attempt leaves nothing behind for the next one.
"""

from __future__ import annotations

from typing import Any

PERMANENT_OS_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)
IO_RETRIES = {"retries": 2, "retry_delay_seconds": 10}  # the ingest and evaluate tasks' schedule


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during (cycles cut)."""
    chain: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in chain):
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def is_transient(exc: BaseException) -> bool:
    """True for an I/O failure a retry may get past; False for bad input and everything else."""
    from climate_optics.errors import BAD_INPUT_ERRORS

    chain = causes(exc)
    if any(isinstance(e, BAD_INPUT_ERRORS + PERMANENT_OS_ERRORS) for e in chain):
        return False
    return any(isinstance(e, OSError) for e in chain)


def retry_on_io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run only for a transient I/O error."""
    try:
        exc = state.result(raise_on_failure=False)
    except BaseException as raised:  # noqa: BLE001 - some states raise their exception here
        exc = raised
    return isinstance(exc, BaseException) and is_transient(exc)
