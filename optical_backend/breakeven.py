"""Where the simulated OPU beats a digital projection: measured digital time vs simulated device time.

The OPU's time per call does not depend on the projection size while it fits in one pass (every
frame projects the whole DMD onto the whole camera): at most ``batch * frames_per_vector /
frame_rate + latency`` (a blank pattern is not shown). A digital projection grows with size
(``n^2`` dense, ``n log n`` structured), so there is a size beyond which the optical device is
faster — up to the largest single pass (``OPUConfig.data_mirrors`` inputs beside the anchor);
beyond it the device time doubles with every further tile (``OPUConfig.tiles``).

Where no device is at hand the comparison is *modelled*: the OPU's device time from its frame
rate (``opu_call_seconds``), a GPU's time from its datasheet figures in a roofline model of the
aten ops the projector actually runs (``modelled_gpu_seconds``, ops counted on the CPU).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

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


# -- modelled devices (stated figures, not measurements) ------------------------------------------
@dataclass(frozen=True)
class GPUFigures:
    """Datasheet figures of a GPU for the roofline model of ``modelled_gpu_seconds``."""

    name: str
    memory_bytes_per_s: float
    fp32_flops: float  # dense FP32 without tensor cores (the projections run in float32)
    memory_bytes: float
    launch_s: float = 5e-6  # per kernel launch [ASSUMED: typical CUDA launch and scheduling overhead]


H100_SXM = GPUFigures("NVIDIA H100 SXM5 (datasheet: 3.35 TB/s HBM3, 67 TFLOPS FP32, 80 GB)", 3.35e12, 67e12, 80e9)
LIGHTON_SIMULATED = dict(frame_rate_hz=2000.0, camera_shape=(2040, 1088))
"""LightOn's own simulated OPU (lightonml documentation, [LO] in ``optical_backend.opu``): frame
time 500 us, output region 2040 x 1088; the other fields stay at ``OPUConfig``'s defaults."""


@dataclass
class OpTraffic:
    """Bytes read and written, floating-point operations and kernels of one call, per aten op."""

    ops: list[tuple[str, float, float]] = field(default_factory=list)  # (name, bytes, flops)

    def seconds(self, gpu: GPUFigures) -> float:
        """Roofline time: every op takes max(bytes / bandwidth, flops / peak) plus one launch."""
        return sum(max(b / gpu.memory_bytes_per_s, f / gpu.fp32_flops) + gpu.launch_s for _, b, f in self.ops)


class _TrafficCounter(TorchDispatchMode):
    """Counts every non-view aten op's tensor bytes (inputs + outputs) and matmul flops."""

    def __init__(self) -> None:
        super().__init__()
        self.traffic = OpTraffic()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if getattr(func, "is_view", False) or "view" in func.__name__ or "alias" in func.__name__:
            return out  # aliases move no data
        tensors = [t for t in tree_flatten((args, kwargs or {}, out))[0] if isinstance(t, torch.Tensor)]
        moved = float(sum(t.numel() * t.element_size() for t in tensors))
        flops = 0.0
        if func.__name__.split(".")[0] in ("mm", "bmm", "matmul", "addmm", "baddbmm"):
            a, b = args[-2], args[-1]  # (..., m, k) @ (..., k, n)
            flops = 2.0 * a.numel() * b.shape[-1]
        self.traffic.ops.append((func.__name__, moved, flops))
        return out


def op_traffic(kind: str, n_in: int, n_out: int, batch: int, **config: Any) -> OpTraffic:
    """The aten ops one call of a projector runs (counted on the CPU; a GPU runs the same ops)."""
    proj = make_projector(kind, n_in, n_out, seed=0, **config)
    x = torch.zeros(batch, n_in)
    with _TrafficCounter() as counter:
        proj(x)
    return counter.traffic


def modelled_gpu_seconds(kind: str, n: int, batch: int, gpu: GPUFigures = H100_SXM) -> float | None:
    """Roofline time of one ``(batch, n) -> (batch, n)`` call of ``kind`` on ``gpu``; None when a
    dense matrix does not fit in its memory. The structured projector's ops are counted at batch
    1 and 2 (their traffic is linear in the batch: data plus the per-call parameters), the dense
    one is a matrix read plus ``2 batch n^2`` flops."""
    if kind == "dense":
        if 4.0 * n * n > gpu.memory_bytes:
            return None
        return (
            max(4.0 * (n * n + 2 * batch * n) / gpu.memory_bytes_per_s, 2.0 * batch * n * n / gpu.fp32_flops)
            + gpu.launch_s
        )
    one, two = (op_traffic(kind, n, n, b) for b in (1, 2))
    per_op = [
        (name, b1 + (b2 - b1) * (batch - 1), f1 + (f2 - f1) * (batch - 1))
        for (name, b1, f1), (_, b2, f2) in zip(one.ops, two.ops)
    ]
    return OpTraffic(per_op).seconds(gpu)


def opu_call_seconds(n: int, batch: int, config: OPUConfig) -> float:
    """Modelled device time of one ``(batch, n) -> (batch, n)`` call, every pattern shown, tiles included."""
    tiles = config.tiles(n, n)
    return config.device_time_s(batch, calls=1, passes=tiles[0] * tiles[1])


def crossing(sizes: list[int], slower_until: dict[int, float], faster_after: dict[int, float]) -> float | None:
    """The first size, interpolated on a log-log scale, from which ``faster_after`` takes less
    time than ``slower_until`` (both map sizes to seconds; None where a time is unknown).
    Returns the smallest size if it is faster there already, None if it never is."""
    gaps = [
        (n, math.log(faster_after[n]) - math.log(slower_until[n]))
        for n in sizes
        if faster_after.get(n) is not None and slower_until.get(n) is not None
    ]
    if not gaps:
        return None
    if gaps[0][1] < 0:
        return float(gaps[0][0])
    for (small, g0), (large, g1) in zip(gaps, gaps[1:]):
        if g0 >= 0 > g1:
            frac = g0 / (g0 - g1)
            return math.exp(math.log(small) + frac * (math.log(large) - math.log(small)))
    return None
