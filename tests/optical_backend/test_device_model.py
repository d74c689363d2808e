"""The modelled device comparison: OPU device time from frames, GPU roofline from counted aten ops."""

from __future__ import annotations

import math

import pytest

from optical_backend.breakeven import H100_SXM, crossing, modelled_gpu_seconds, op_traffic, opu_call_seconds
from optical_backend.opu import OPUConfig


def test_structured_traffic_covers_every_hadamard_round():
    """Each of the three HD rounds reads and writes the whole (batch, d) block at least once."""
    n, batch = 2**12, 4
    traffic = op_traffic("structured", n, n, batch)
    moved = sum(b for _, b, _ in traffic.ops)
    assert moved >= 3 * 2 * 4 * batch * n
    flops = sum(f for _, _, f in traffic.ops)
    assert flops > 0  # the Kronecker factors are matrix products


def test_roofline_grows_with_size_and_dense_stops_where_the_matrix_outgrows_the_gpu():
    small, large = (modelled_gpu_seconds("structured", n, 32) for n in (2**12, 2**16))
    assert 0 < small < large
    assert modelled_gpu_seconds("dense", 2**17, 32) is not None  # 64 GB float32
    assert modelled_gpu_seconds("dense", 2**18, 32) is None  # 256 GB: over the 80 GB card
    # a dense call at 2^16 is bound by its 2 n^2 B flops or its matrix read, whichever is slower
    expected = max(4 * (2**32 + 64 * 2**16) / H100_SXM.memory_bytes_per_s, 2 * 32 * 2**32 / H100_SXM.fp32_flops)
    assert modelled_gpu_seconds("dense", 2**16, 32) == pytest.approx(expected + H100_SXM.launch_s)


def test_opu_call_time_counts_frames_of_every_tile():
    cfg = OPUConfig()
    assert cfg.tiles(2**20, 2**20) == (2, 1)
    frames = 2 * 32 * cfg.frames_per_vector  # two passes of 32 vectors
    assert opu_call_seconds(2**20, 32, cfg) == pytest.approx(frames / cfg.frame_rate_hz + cfg.latency_s)
    assert opu_call_seconds(2**16, 32, cfg) == pytest.approx(
        32 * cfg.frames_per_vector / cfg.frame_rate_hz + cfg.latency_s
    )


def test_crossing_interpolates_power_laws_exactly_and_reports_never():
    sizes = [2**k for k in range(6, 16)]
    digital = {n: n * 1e-6 for n in sizes}  # linear in n
    opu = {n: 1e-3 for n in sizes}  # constant
    assert crossing(sizes, digital, opu) == pytest.approx(1000.0, rel=1e-9)
    assert crossing(sizes, {n: 1.0 for n in sizes}, opu) == sizes[0]  # faster everywhere
    assert crossing(sizes, {n: 1e-6 for n in sizes}, opu) is None
    assert crossing(sizes, {n: None for n in sizes}, opu) is None
    assert math.isfinite(crossing(sizes, digital | {2**6: None}, opu))  # unknown sizes are skipped
