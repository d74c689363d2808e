"""Where the simulated OPU beats a digital projection: measured digital time vs simulated device time.

The OPU's time per call does not depend on the projection size while it fits in one pass (every
frame projects the whole DMD onto the whole camera): at most ``batch * frames_per_vector /
frame_rate + latency`` (a blank pattern is not shown). A digital projection grows with size
(``n^2`` dense, ``n log n`` structured), so there is a size beyond which the optical device is
faster — up to the largest single pass (``OPUConfig.data_mirrors`` inputs beside the anchor);
beyond it the device time doubles with every further tile (``OPUConfig.tiles``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from optical_backend.opu import OPUConfig
from optical_backend.projector import make_projector


def measure_projection_seconds(
    kind: str, n: int, *, batch: int = 32, repeats: int = 3, device: str | None = None, **config: Any
) -> float:
    """Best wall time of one ``(batch, n) -> (batch, n)`` projection on this machine (after a warm-up)."""
    proj = make_projector(kind, n, n, seed=0, device=device, **config)
    x = torch.randn(batch, n, device=proj.device)
    proj(x)
    best = math.inf
    for _ in range(repeats):
        if proj.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        proj(x)
        if proj.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def optical_breakeven(
    digital_seconds: dict[int, float], *, config: OPUConfig | None = None, batch: int = 32
) -> dict[str, Any]:
    """The size at which the simulated OPU becomes faster than the measured digital projection.

    ``digital_seconds`` maps a size ``n`` (``n_in = n_out = n``) to the measured seconds of one
    call on ``batch`` vectors. The crossing is interpolated on a log-log scale between the two
    measured sizes that bracket it. Returns ``{"optical_seconds", "breakeven_n", "status"}`` with
    status ``"crossing"`` (interpolated), ``"below_range"`` (the OPU already wins at the smallest
    measured size: breakeven_n is that size, an upper bound), or ``"never"`` (the digital
    projection stays faster over the measured sizes that fit on the device; breakeven_n is None).
    """
    config = config or OPUConfig()
    optical = config.device_time_s(batch, calls=1)
    sizes = sorted(n for n in digital_seconds if n <= min(config.data_mirrors, config.max_outputs))
    result: dict[str, Any] = {"optical_seconds": optical, "breakeven_n": None, "status": "never"}
    if not sizes:
        return result
    if digital_seconds[sizes[0]] > optical:
        result.update(breakeven_n=float(sizes[0]), status="below_range")
        return result
    for small, large in zip(sizes, sizes[1:]):
        t_small, t_large = digital_seconds[small], digital_seconds[large]
        if t_small <= optical < t_large:
            frac = (math.log(optical) - math.log(t_small)) / (math.log(t_large) - math.log(t_small))
            n = math.exp(math.log(small) + frac * (math.log(large) - math.log(small)))
            result.update(breakeven_n=n, status="crossing")
            return result
    return result
