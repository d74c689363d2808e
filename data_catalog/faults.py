"""Named pause points, so that tests can kill a writer at a known moment (an environment hook).

``CLIMATE_OPTICS_PAUSE_AT="before-rename"`` (a comma-separated list; ``POINT:NAME`` limits a point
to targets called ``NAME``) makes a process that reaches that point print
``paused at POINT: TARGET`` on stderr and sleep until it is killed. Unset, a point costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import time

PAUSE_ENV = "CLIMATE_OPTICS_PAUSE_AT"


def pause_point(point: str, target: object = "") -> None:
    """Sleep forever here when the environment asks for ``point`` (for ``target``)."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted:
        return
    name = os.path.basename(str(target).rstrip("/"))
    for item in wanted.split(","):
        want_point, _, want_name = item.strip().partition(":")
        if want_point == point and (not want_name or want_name == name):
            print(f"paused at {point}: {target}", file=sys.stderr, flush=True)
            while True:
                time.sleep(60)
