"""Named fault points, so that tests can kill a writer, or make its I/O fail, at a known moment.

Two environment hooks, each a comma-separated list of ``POINT`` items (``POINT:NAME`` limits a point
to targets called ``NAME``):

- ``CLIMATE_OPTICS_PAUSE_AT="before-rename"`` makes a process that reaches that point print
  ``paused at POINT: TARGET`` on stderr and sleep until it is killed (``...@N``: the N-th time).
- ``CLIMATE_OPTICS_FAIL_AT="before-rename:data.zarr*2"`` makes that point raise an I/O error
  (``OSError`` EIO naming the target), the first N times it is reached (``*N``) or every time
  (no count): a transient or a permanent storage failure, for the flows' retries.

Unset, a point costs two dictionary lookups.
"""

from __future__ import annotations

import errno
import os
import sys
import time

PAUSE_ENV = "CLIMATE_OPTICS_PAUSE_AT"
FAIL_ENV = "CLIMATE_OPTICS_FAIL_AT"
_reached: dict[str, int] = {}  # times each requested pause point was reached in this process
_failed: dict[str, int] = {}  # times each requested failure was raised in this process


def _matches(wanted: str, point: str, target: object, separator: str) -> list[tuple[str, str]]:
    """The (item, count) pairs of ``wanted`` that name ``point`` (and ``target``'s name, if given)."""
    name = os.path.basename(str(target).rstrip("/"))
    found = []
    for item in wanted.split(","):
        item, _, count = item.strip().partition(separator)
        want_point, _, want_name = item.partition(":")
        if want_point == point and (not want_name or want_name == name):
            found.append((item, count))
    return found


def pause_point(point: str, target: object = "") -> None:
    """Sleep forever here, or raise an injected I/O error, when the environment asks for ``point``."""
    if wanted := os.environ.get(FAIL_ENV):
        for item, count in _matches(wanted, point, target, "*"):
            if count and _failed.get(item, 0) >= int(count):
                continue  # a transient fault: it has failed as often as asked
            _failed[item] = _failed.get(item, 0) + 1
            raise OSError(errno.EIO, f"Input/output error (injected at {point})", str(target))
    if wanted := os.environ.get(PAUSE_ENV):
        for item, nth in _matches(wanted, point, target, "@"):
            _reached[item] = _reached.get(item, 0) + 1
            if _reached[item] == int(nth or 1):
                print(f"paused at {point}: {target}", file=sys.stderr, flush=True)
                while True:
                    time.sleep(60)
