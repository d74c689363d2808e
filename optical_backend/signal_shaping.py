"""Digital shaping of the projected DFA signals at the feedback points, before they are injected.

``scaled_to_outputs``: each point's signal rescaled to its output's rms on the batch (``DFA(scale_to="output")``).

``through_norm``: each point's signal passed back through the network's final normalisation
(``DFA(norm=...)``), evaluated at the point's own output. A pre-norm Transformer ends in a
LayerNorm before its head; the gradient at the residual stream is the head's gradient times that
norm's Jacobian, which removes each token's mean and its component along the token itself and
divides by the token's standard deviation. A DFA signal that imitates the head's gradient (the
feedback-aligned head, ``optical_backend.dfa_init``) therefore reaches the last block as the true
gradient only after the same Jacobian; the blocks below share the residual stream, and get it at
their own outputs. It costs one LayerNorm backward per point (O(D) per token), all digital. A UNet's
GroupNorm before its output convolution is used the same way at the points of its width.
"""

from __future__ import annotations

import torch
from torch import nn


def shaped_signals(dfa, signals: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The projected signals as a DFA engine injects them: rescaled (``scale_to``), then through its norm."""
    if dfa.scale_to == "output":
        signals = scaled_to_outputs(signals, outputs)
    if dfa._norm is not None:
        signals = through_norm(dfa._norm, signals, outputs, getattr(dfa, "norm_variant", "vjp"))
    return signals


def _rms(t: torch.Tensor) -> torch.Tensor:
    return t.float().pow(2).mean().sqrt()


def scaled_to_outputs(signals: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """(B, ...) signal times rms(output) / rms(signal), per point (points without an output kept)."""
    return {
        n: s * (_rms(outputs[n].detach()) / _rms(s).clamp_min(1e-12)).to(s.dtype) if n in outputs else s
        for n, s in signals.items()
    }


NORM_VARIANTS = ("vjp", "direction", "last")


def through_norm(
    norm: nn.Module, signals: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor], variant: str = "vjp"
) -> dict[str, torch.Tensor]:
    """Each signal as the vector-Jacobian product of ``norm`` at the point's output: tokens (B, T, D)
    through a LayerNorm over D, fields (B, C, H, W) through a GroupNorm of C channels. A point of
    another width keeps its signal. ``variant``: ``vjp`` (every point), ``direction`` (every point,
    each token then rescaled to its raw signal's length; a GroupNorm's scale is per sample and
    group, not per pixel, so fields keep the exact product), ``last`` (the last point only)."""
    last = list(signals)[-1] if signals else None
    fields = isinstance(norm, nn.GroupNorm)
    channels = norm.num_channels if fields else getattr(norm, "normalized_shape", (None,))[-1]
    shaped = {}
    with torch.enable_grad():
        for name, signal in signals.items():
            output = outputs.get(name)
            width = None if output is None else output.shape[1 if fields else -1]
            if (
                output is None
                or output.shape != signal.shape
                or width != channels
                or (variant == "last" and name != last)
            ):
                shaped[name] = signal
                continue
            at = output.detach().requires_grad_(True)  # (B, T, D)
            (vjp,) = torch.autograd.grad(norm(at), at, signal.to(at.dtype))  # (B, T, D); no parameter gradients
            if variant == "direction" and not fields:
                length = signal.float().norm(dim=-1, keepdim=True) / vjp.float().norm(dim=-1, keepdim=True).clamp_min(
                    1e-30
                )  # (B, T, 1)
                vjp = vjp * length.to(vjp.dtype)
            shaped[name] = vjp.to(signal.dtype)
    return shaped
