"""Named pause points, so that tests can kill a writer at a known moment (an environment hook).

``CLIMATE_OPTICS_PAUSE_AT="before-rename"`` (a comma-separated list; ``POINT:NAME`` limits a point
to targets called ``NAME``; ``...@N`` pauses the N-th time it is reached) makes a process that
reaches that point print ``paused at POINT: TARGET`` on stderr and sleep until it is killed.
Unset, a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import time

PAUSE_ENV = "CLIMATE_OPTICS_PAUSE_AT"
_reached: dict[str, int] = {}  # times each requested point was reached in this process


def pause_point(point: str, target: object = "") -> None:
    """Sleep forever here when the environment asks for ``point`` (for ``target``)."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted:
        return
    name = os.path.basename(str(target).rstrip("/"))
    for item in wanted.split(","):
        item, _, nth = item.strip().partition("@")
        want_point, _, want_name = item.partition(":")
        if want_point != point or (want_name and want_name != name):
            continue
        _reached[item] = _reached.get(item, 0) + 1
        if _reached[item] == int(nth or 1):
            print(f"paused at {point}: {target}", file=sys.stderr, flush=True)
            while True:
                time.sleep(60)
