"""Showing real vectors on a binary DMD: dithered (unbiased) or deterministic ternary patterns, bit planes, exact values.

Every encoder returns ``patterns`` ``(N, P, n_in)`` (binary except for ``exact``) and ``weights``
``(N, P)`` such that ``x ~ sum_p weights[:, p, None] * patterns[:, p]``; by linearity the
projection of ``x`` is the same weighted sum of the projections of the patterns.
"""

from __future__ import annotations

import torch

from optical_backend.opu import OPUConfig


def ternary(x: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``x ~ s * (b+ - b-)`` keeping ``|x_i| > threshold * mean|x|``; ``s`` = mean kept ``|x_i|``."""
    n = x.shape[1]
    cut = torch.linalg.vector_norm(x, 1, dim=1, keepdim=True) * (threshold / n)  # (N, 1)
    patterns = torch.empty(x.shape[0], 2, n, dtype=x.dtype, device=x.device)  # (N, 2, n)
    patterns[:, 0] = x > cut
    patterns[:, 1] = x < -cut
    sums = torch.bmm(patterns, x.unsqueeze(2)).squeeze(2)  # (N, 2): sum of kept x_i, each sign
    kept = patterns.sum(dim=2).sum(dim=1).clamp_min(1)  # (N,)
    scale = (sums[:, 0] - sums[:, 1]) / kept  # (N,)
    weights = torch.stack([scale, -scale], dim=1)  # (N, 2)
    return patterns, weights


def _dither(x: torch.Tensor, mag: torch.Tensor, s: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Patterns ``(N, 2, n)``: entry i shown (on the sign of ``x_i``) with probability min(1, mag_i / s)."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)  # (N, n)
    keep = u * s < mag  # a zero magnitude is never shown
    patterns = torch.empty(x.shape[0], 2, x.shape[1], dtype=x.dtype, device=x.device)  # (N, 2, n)
    patterns[:, 0] = keep & (x > 0)
    patterns[:, 1] = keep & (x < 0)
    return patterns


def dithered(
    x: torch.Tensor, scale: float | None, generator: torch.Generator, residual: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stochastic ternarisation: show ``sign(x_i) * s`` with probability ``min(1, |x_i| / s)``.

    ``s = max|x|`` (``scale=None``: one pair, E[encoded] = x exactly) or ``scale * mean|x|``:
    entries above ``s`` are then shown at ``s`` every time, and with ``residual`` their remainder
    ``|x_i| - s`` is dithered in a second pair at its own maximum, so that E[encoded] = x exactly
    for every vector (4 patterns; the second pair is blank, and not shown, when nothing is clipped).
    Without ``residual`` the remainder is lost (biased towards zero on peaked vectors).
    Draws come from ``generator`` (CPU), so a seeded projector repeats its outputs.
    """
    n = x.shape[1]
    mag = x.abs()  # (N, n)
    tiny = torch.finfo(x.dtype).tiny
    if scale is None:
        s = mag.amax(dim=1, keepdim=True).clamp_min(tiny)  # (N, 1)
    else:
        s = (mag.sum(dim=1, keepdim=True) * (scale / n)).clamp_min(tiny)  # (N, 1)
    patterns = _dither(x, mag, s, generator)  # (N, 2, n)
    weights = torch.cat([s, -s], dim=1)  # (N, 2)
    if scale is None or not residual:
        return patterns, weights
    rest = (mag - s).clamp_min_(0)  # (N, n): what the first pair clipped
    s_rest = rest.amax(dim=1, keepdim=True)  # (N, 1): 0 where nothing was clipped
    rest_patterns = _dither(x, rest, s_rest.clamp_min(tiny), generator)  # (N, 2, n)
    return torch.cat([patterns, rest_patterns], dim=1), torch.cat([weights, s_rest, -s_rest], dim=1)


def bitplanes(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sign and ``bits`` magnitude planes: ``|x| ~ max|x| * sum_k 2^k b_k / (2^bits - 1)``."""
    levels = 2**bits - 1
    peak = x.abs().amax(dim=1)  # (N,)
    q = torch.round(x.abs() / peak.clamp_min(torch.finfo(x.dtype).tiny)[:, None] * levels).to(torch.int32)  # (N, n)
    pos, neg = x > 0, x < 0
    planes, weights = [], []
    for k in range(bits):
        bit = ((q >> k) & 1).bool()  # (N, n)
        planes += [(bit & pos).to(x.dtype), (bit & neg).to(x.dtype)]
        w = peak * (2**k / levels)  # (N,)
        weights += [w, -w]
    return torch.stack(planes, dim=1), torch.stack(weights, dim=1)  # (N, 2 bits, n), (N, 2 bits)


def exact(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The real vector itself (a hypothetical analogue modulator): the ideal reference.

    Shown at full modulator range, ``x / max|x|`` with weight ``max|x|``, like every other
    encoding: the light on the camera then does not depend on the vector's size (a DFA error of
    1e-6 would otherwise be lost under the anchor reference and the camera's noise)."""
    scale = x.abs().amax(dim=1, keepdim=True)  # (N, 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (x / scale).unsqueeze(1), scale


def encode(
    x: torch.Tensor, config: OPUConfig, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patterns ``(N, P, n_in)`` and weights ``(N, P)`` for the configured encoding.

    ``generator`` (CPU) drives the ``dithered`` encoding's draws; the other encodings ignore it.
    """
    if config.encoding == "dithered":
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        return dithered(x, config.dither_scale, generator, residual=config.clip_residual)
    if config.encoding == "ternary":
        return ternary(x, config.ternary_threshold)
    if config.encoding == "bitplanes":
        return bitplanes(x, config.bits)
    return exact(x)
