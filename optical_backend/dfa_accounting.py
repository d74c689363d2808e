"""Time and energy of a DFA training run: measured here, simulated on the OPU, estimated on a GPU.

``training_costs(dfa, forward_flops=...)`` reports, for the steps ``dfa`` has run:

- measured digital time on this machine (training forward passes and ``dfa.backward``,
  the projection's share separately);
- simulated optical time and energy, read from the projector's counters (non-zero only for
  the ``optical`` backend);
- an estimate of what the same steps would cost on a GPU: back-propagation takes about three
  forward passes of FLOPs (forward, then gradients for activations and for weights: Kaplan et
  al. 2020, arXiv 2001.08361); DFA's digital part takes the same (forward plus the local
  backward of each block), and a dense digital projection adds 2 n_in n_out FLOPs per
  projected vector, which the OPU takes over;
- ``projection_gpu_s_per_vector`` vs ``optical_s_per_vector``: optical DFA pays off where
  the OPU's time per vector is below what a GPU needs for the same dense projection, i.e.
  beyond ``breakeven_n_out`` outputs for the run's error size.

GPU figures are assumptions, stated in :class:`GPUAssumptions`; change them to your device.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

BACKPROP_FLOPS_PER_FORWARD = 3.0  # forward + activation gradients + weight gradients


@dataclass(frozen=True)
class GPUAssumptions:
    """Figures of the GPU used for the estimate (defaults: NVIDIA H100 SXM datasheet)."""

    name: str = "NVIDIA H100 SXM, BF16 dense tensor cores"
    peak_tflops: float = 989.0  # datasheet peak, BF16 dense (no sparsity)
    utilization: float = 0.4  # model FLOP utilisation typical of large training runs
    power_w: float = 700.0  # board power (TDP)

    @property
    def flops_per_s(self) -> float:
        return self.peak_tflops * 1e12 * self.utilization


def count_forward_flops(model: nn.Module, *args: Any, **kwargs: Any) -> float:
    """FLOPs of one forward pass of ``model(*args, **kwargs)`` (matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*args, **kwargs)
    return float(counter.get_total_flops())


def training_costs(
    dfa: Any, *, forward_flops_per_step: float, gpu: GPUAssumptions = GPUAssumptions()
) -> dict[str, Any]:
    """Measured, simulated and estimated costs of the steps run so far by ``dfa``.

    ``forward_flops_per_step``: FLOPs of one training forward pass (one micro-batch), e.g. from
    :func:`count_forward_flops`. Returns a JSON-able dict; see the module docstring.
    """
    stats = dfa.stats
    proj = stats.projector
    steps = stats.backward_calls
    gpu_rate = gpu.flops_per_s
    backprop_flops = BACKPROP_FLOPS_PER_FORWARD * forward_flops_per_step * steps
    projector = dfa.projector
    n_in = projector.n_in if projector is not None else 0
    n_out = projector.n_out if projector is not None else 0
    projection_flops = 2.0 * n_in * n_out * proj.vectors  # a dense projection on the GPU
    optical_per_vector = proj.device_time_s / proj.vectors if proj.vectors else None
    gpu_per_vector = 2.0 * n_in * n_out / gpu_rate if n_in else None
    breakeven = None
    if optical_per_vector and n_in:
        breakeven = optical_per_vector * gpu_rate / (2.0 * n_in)  # n_out where the GPU projection takes as long
    return {
        "mode": dfa.mode,
        "steps": steps,
        "vectors_projected": proj.vectors,
        "projection_size": [n_in, n_out],
        "measured_forward_s": stats.forward_wall_s,
        "measured_backward_s": stats.backward_wall_s,
        "measured_projection_s": proj.wall_time_s,
        "measured_digital_s": stats.forward_wall_s + stats.backward_wall_s - proj.wall_time_s,
        "simulated_optical_s": proj.device_time_s,
        "simulated_optical_j": proj.energy_j,
        "optical_frames": proj.frames,
        "gpu": asdict(gpu),
        "forward_flops_per_step": forward_flops_per_step,
        "backprop_flops": backprop_flops,
        "backprop_gpu_s": backprop_flops / gpu_rate,
        "backprop_gpu_j": backprop_flops / gpu_rate * gpu.power_w,
        "dfa_digital_gpu_s": backprop_flops / gpu_rate,
        "dense_projection_flops": projection_flops,
        "dense_projection_gpu_s": projection_flops / gpu_rate,
        "dense_projection_gpu_j": projection_flops / gpu_rate * gpu.power_w,
        "optical_s_per_vector": optical_per_vector,
        "projection_gpu_s_per_vector": gpu_per_vector,
        "breakeven_n_out": breakeven,
        "optical_pays_off": None if breakeven is None else bool(n_out > breakeven),
    }
