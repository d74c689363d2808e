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
    n_in, n_out = layer.out_features, layer.in_features
    device = layer.weight.device
    projector = dfa._get_projector(n_in, n_out, device)
    feedback_map = effective_map(projector).to(device=device, dtype=torch.float32)  # (F, D)
    scale = std / feedback_map.std().clamp_min(1e-30)
    layer.weight.copy_((feedback_map * scale).to(layer.weight.dtype))
    if layer.bias is not None:
        layer.bias.zero_()
    error = torch.randn(1, n_in, generator=torch.Generator().manual_seed(0)).to(device)  # (1, F)
    signal, gradient = error @ feedback_map, error @ layer.weight.float()  # (1, D) each
    return float(torch.nn.functional.cosine_similarity(signal, gradient).item())


def effective_map(projector) -> torch.Tensor:
    """(n_in, n_out): the linear map a projector computes (noiseless, uncounted for the optical device)."""
    if hasattr(projector, "effective_map"):
        return projector.effective_map()
    return projector._project(torch.eye(projector.n_in, device=projector.device))  # (n_in, n_out)
