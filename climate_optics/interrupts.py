"""SIGINT and SIGTERM as an exception, so that every writer's clean-up runs before the process ends.

``with signals_as_exceptions():`` makes the first SIGINT or SIGTERM raise ``Interrupted`` in the
main thread; it unwinds through ``data_catalog.store.atomic_store``, which removes its temporary.
Further signals are ignored while the clean-up runs (``kill -9`` still ends the process; the next
writer then removes what was left). ``Interrupted`` is not a ``KeyboardInterrupt``, so that
command-line frameworks do not swallow it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from data_catalog import locks

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """Raised in the main thread by SIGINT or SIGTERM; ``status`` is 128 + the signal number."""

    def __init__(self, signum: int, targets: list[Path], runs: list[Path] | None = None):
        self.signum = signum
        self.targets = targets  # outputs that were being written when the signal came
        self.runs = runs or []  # run directories being written: they keep the steps already finished
        self.status = 128 + signum
        super().__init__(signal.Signals(signum).name)

    def message(self) -> str:
        parts = []
        if self.targets:
            parts.append("nothing written to " + ", ".join(str(t) for t in self.targets))
        if self.runs:
            parts.append(", ".join(str(r) for r in self.runs) + " keeps what was finished before the signal")
        return "interrupted: " + "; ".join(parts) if parts else f"interrupted ({signal.Signals(self.signum).name})"


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Within the block, the first SIGINT/SIGTERM raises Interrupted; later ones are ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if fired:
            return  # already stopping: let the clean-up finish
        fired = True
        raise Interrupted(signum, locks.held_targets(), locks.held_targets(runs=True))

    previous = {sig: signal.signal(sig, handler) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
