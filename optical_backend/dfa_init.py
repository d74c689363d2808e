"""Feedback-aligned initialisation of the output layer: DFA's signal starts as the true gradient.

DFA sends each token's error ``e`` (F,) to the feedback points as ``s = e @ M`` (D,), with ``M``
(F, D) the projection's linear map (the noiseless optical device's effective map in optical
mode). A per-token output layer ``y = h @ W.T + b`` with ``W`` (F, D) back-propagates
``dL/dh = e @ W``. Initialising ``W = c * M`` makes the two equal up to the factor ``c``: at
the start of training the points just below the output layer (the end of a residual stream)
receive the gradient back-propagation would give them along the residual path, and the
blocks below follow the same signal. DFA's "alignment" phase, in which the output layer must
learn to agree with a fixed random feedback (Lillicrap et al. 2016; Nøkland 2016), is skipped.

The layer is then trained by its true gradient as usual and drifts from ``c * M``; the
feedback matrix stays fixed (a physical medium cannot follow it).
"""

from __future__ import annotations

import torch
from torch import nn

from optical_backend.errors import OpticalConfigError


def last_linear(module: nn.Module) -> nn.Linear | None:
    """The last ``nn.Linear`` registered in ``module`` (itself if it is one), or None."""
    layers = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return layers[-1] if layers else None


@torch.no_grad()
def align_output_layer(dfa, layer: nn.Linear, *, std: float = 0.02) -> float:
    """Set ``layer.weight`` (F, D) to ``c * M`` with ``M`` the DFA's feedback map (F, D) and ``c``
    chosen so the weights have standard deviation ``std``; zero the bias. Returns the cosine
    between the DFA signal and ``dL/d(input)`` for a random error (1 up to float error).

    Needs a per-token (or per-sample) error read at the layer's output, and the shared layout
    whose signal is as wide as the layer's input (the width of the residual stream)."""
    if dfa.error not in ("token", "sample") or dfa.feedback != "shared":
        raise OpticalConfigError(
            f"feedback-aligned init needs error 'token' or 'sample' and the shared layout, "
            f"got error={dfa.error!r}, feedback={dfa.feedback!r}"
        )
    feedback_map = _feedback_map(dfa, layer.out_features, layer.in_features, layer.in_features, layer.weight.device)
    layer.weight.copy_((feedback_map * (std / feedback_map.std().clamp_min(1e-30))).to(layer.weight.dtype))
    return _zero_bias_and_check(layer, feedback_map, layer.weight)


def _feedback_map(dfa, n_in: int, n_out: int, width: int, device: torch.device) -> torch.Tensor:
    """(n_in, width): the first ``width`` columns of the DFA's (n_in, n_out) feedback map."""
    return dfa.feedback_map(n_in, n_out, device)[:, :width]


def _zero_bias_and_check(layer: nn.Module, feedback_map: torch.Tensor, weight: torch.Tensor) -> float:
    """Zero the layer's bias; the cosine between the DFA signal and the gradient ``weight`` passes back."""
    if layer.bias is not None:
        layer.bias.zero_()
    error = torch.randn(1, feedback_map.shape[0], generator=torch.Generator().manual_seed(0))  # (1, F)
    error = error.to(feedback_map.device)
    signal, gradient = error @ feedback_map, error @ weight.float()  # (1, D) each
    return float(torch.nn.functional.cosine_similarity(signal, gradient).item())


@torch.no_grad()
def align_output_conv(dfa, conv: nn.Conv2d, n_out: int, *, std: float = 0.02) -> float:
    """The per-pixel analogue of ``align_output_layer`` for a field model's output convolution
    ``conv`` (C_in -> C_out, odd kernel, size-preserving): its centre tap (C_out, C_in) becomes
    ``c * M[:, :C_in]``, the other taps and the bias zero, with ``M`` (C_out, n_out) the map of the
    per-pixel error to the widest feedback point (``n_out`` channels; a point of C_in channels
    receives the first C_in). Returns the cosine between the DFA signal and ``dL/d(input)`` at one
    pixel for a random error (1 up to float error; the norm and activation before ``conv`` scale it
    per channel).

    Needs ``error="pixel"`` and the shared layout."""
    if dfa.error != "pixel" or dfa.feedback != "shared":
        raise OpticalConfigError(
            f"feedback-aligned init of a convolution needs error 'pixel' and the shared layout, "
            f"got error={dfa.error!r}, feedback={dfa.feedback!r}"
        )
    kh, kw = conv.kernel_size
    if kh % 2 == 0 or kw % 2 == 0 or conv.stride != (1, 1) or conv.groups != 1 or conv.in_channels > n_out:
        raise OpticalConfigError(
            f"feedback-aligned init needs a stride-1, ungrouped convolution of odd kernel and at most "
            f"{n_out} input channels, got kernel {conv.kernel_size}, stride {conv.stride}, {conv.in_channels} inputs"
        )
    feedback_map = _feedback_map(dfa, conv.out_channels, n_out, conv.in_channels, conv.weight.device)  # (C_out, C_in)
    conv.weight.zero_()
    centre = conv.weight[:, :, kh // 2, kw // 2]  # (C_out, C_in), a view
    centre.copy_((feedback_map * (std / feedback_map.std().clamp_min(1e-30))).to(conv.weight.dtype))
    return _zero_bias_and_check(conv, feedback_map, centre)


def last_conv(module: nn.Module) -> nn.Conv2d | None:
    """The last ``nn.Conv2d`` registered in ``module`` (itself if it is one), or None."""
    layers = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return layers[-1] if layers else None


def effective_map(projector) -> torch.Tensor:
    """(n_in, n_out): the linear map a projector computes (noiseless, uncounted for the optical device)."""
    if hasattr(projector, "effective_map"):
        return projector.effective_map()
    return projector._project(torch.eye(projector.n_in, device=projector.device))  # (n_in, n_out)
