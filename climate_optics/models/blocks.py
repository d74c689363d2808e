"""Vision Transformer building blocks shared by the forecaster and the downscaler.

- ``VariablePatchEmbed``: one patch embedding per input variable, a learned variable token
  added to each, and the variable tokens of every patch aggregated into one token by
  cross-attention with a learned query (ClimaX, Nguyen et al. 2023, arXiv:2301.10343).
- ``sincos_pos_embed_2d``: fixed 2D sine-cosine position embedding (MAE, arXiv:2111.06377).
- ``ScalarEmbedding``: a scalar per sample (lead time, diffusion noise level) to a vector,
  sinusoidal features followed by an MLP (as for diffusion timesteps, DiT arXiv:2212.09748).
- ``Block``: pre-norm Transformer block (attention + MLP), optionally modulated by a
  conditioning vector through adaptive layer norm (DiT's adaLN-Zero).
- ``PatchHead`` / ``unpatchify``: tokens back to fields on the (padded) input grid.

Shapes: B batch, C channels (variables x levels), H x W grid, p patch size,
h x w = H/p x W/p patches, N = h * w tokens, D embedding width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Sine-cosine features of ``positions`` (M,) -> (M, dim); ``dim`` must be even."""
    if dim % 2:
        raise ValueError(f"sine-cosine embedding needs an even width, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega  # (dim/2,)
    angles = positions.to(torch.float64)[:, None] * omega[None, :]  # (M, dim/2)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).float()  # (M, dim)


def sincos_pos_embed_2d(dim: int, h: int, w: int) -> torch.Tensor:
    """Fixed 2D position embedding for an ``h x w`` patch grid -> (h*w, dim), row-major.

    Half of the width encodes the row (latitude) index, half the column (longitude) index.
    """
    if dim % 4:
        raise ValueError(f"2D sine-cosine embedding needs a width divisible by 4, got {dim}")
    rows = torch.arange(h).repeat_interleave(w)  # (h*w,)
    cols = torch.arange(w).repeat(h)  # (h*w,)
    return torch.cat([sincos_1d(dim // 2, rows), sincos_1d(dim // 2, cols)], dim=1)  # (h*w, dim)


class VariablePatchEmbed(nn.Module):
    """Per-variable patch embedding with variable tokens aggregated per patch by cross-attention.

    (B, C, H, W) -> (B, N, D). ``H`` and ``W`` must be multiples of ``patch``.
    Each channel has its own linear patch projection (a grouped convolution), its own learned
    variable embedding, and a learned query attends over the C variable tokens of each patch.
    """

    def __init__(self, in_channels: int, patch: int, dim: int, heads: int):
        super().__init__()
        self.in_channels, self.patch, self.dim = in_channels, patch, dim
        # One Conv2d(1, D, p, p) per channel, written as a single grouped convolution.
        self.proj = nn.Conv2d(in_channels, in_channels * dim, kernel_size=patch, stride=patch, groups=in_channels)
        self.var_embed = nn.Parameter(sincos_1d(dim, torch.arange(in_channels)).unsqueeze(0).clone())  # (1, C, D)
        self.query = nn.Parameter(torch.zeros(1, 1, dim))  # (1, 1, D)
        self.agg = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.shape  # (B, C, H, W)
        tokens = self.proj(x)  # (B, C*D, h, w)
        n = tokens.shape[-2] * tokens.shape[-1]
        tokens = tokens.reshape(b, c, self.dim, n).permute(0, 3, 1, 2)  # (B, N, C, D)
        tokens = tokens + self.var_embed[:, None]  # (B, N, C, D)
        tokens = tokens.reshape(b * n, c, self.dim)  # (B*N, C, D)
        query = self.query.expand(b * n, -1, -1)  # (B*N, 1, D)
        pooled, _ = self.agg(query, tokens, tokens, need_weights=False)  # (B*N, 1, D)
        return pooled.reshape(b, n, self.dim)  # (B, N, D)


class ScalarEmbedding(nn.Module):
    """A scalar per sample (lead time in hours, noise level, ...) -> (B, D).

    ``scale`` multiplies the scalar before the sinusoidal features (e.g. 1/6 for hours, so that
    one 6-hour step is one unit).
    """

    def __init__(self, dim: int, *, features: int = 256, scale: float = 1.0):
        super().__init__()
        self.features, self.scale = features, scale
        self.mlp = nn.Sequential(nn.Linear(features, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        value = value.reshape(-1).float() * self.scale  # (B,)
        half = self.features // 2
        freqs = torch.exp(
            -math.log(10000.0) * torch.arange(half, device=value.device, dtype=torch.float32) / half
        )  # (F/2,)
        angles = value[:, None] * freqs[None, :]  # (B, F/2)
        feats = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # (B, F)
        return self.mlp(feats.to(self.mlp[0].weight.dtype))  # (B, D)


class Attention(nn.Module):
    """Multi-head self-attention on (B, N, D) using the fused scaled-dot-product kernel."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape  # (B, N, D)
        qkv = (
            self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        )  # (3, B, heads, N, D/heads)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, N, D/heads)
        return self.out(y.transpose(1, 2).reshape(b, n, d))  # (B, N, D)


class Block(nn.Module):
    """Pre-norm Transformer block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``.

    With ``cond_dim`` set, ``forward(x, cond)`` modulates both branches with a shift, scale and
    gate computed from ``cond`` (B, cond_dim) and initialised to zero (adaLN-Zero, DiT), so the
    block starts as the identity. Without it, ``forward(x)`` is the plain ViT block.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, *, cond_dim: int | None = None):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        affine = cond_dim is None
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=affine)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=affine)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.modulation: nn.Module | None = None
        if cond_dim is not None:
            self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * dim))
            nn.init.zeros_(self.modulation[1].weight)
            nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.modulation is None:
            x = x + self.attn(self.norm1(x))  # (B, N, D)
            return x + self.mlp(self.norm2(x))  # (B, N, D)
        if cond is None:
            raise ValueError("this block was built with cond_dim and needs a conditioning vector")
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond)[:, None].chunk(6, dim=-1)  # 6 x (B, 1, D)
        x = x + gate1 * self.attn(self.norm1(x) * (1 + scale1) + shift1)  # (B, N, D)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)  # (B, N, D)


def unpatchify(tokens: torch.Tensor, channels: int, patch: int, h: int, w: int) -> torch.Tensor:
    """(B, N, p*p*C) -> (B, C, h*p, w*p); token n covers patch row n // w, column n % w."""
    b = tokens.shape[0]
    x = tokens.reshape(b, h, w, patch, patch, channels)  # (B, h, w, p, p, C)
    x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C, h, p, w, p)
    return x.reshape(b, channels, h * patch, w * patch)  # (B, C, H, W)


class PatchHead(nn.Module):
    """Tokens to fields: a small MLP per token then ``unpatchify``. (B, N, D) -> (B, C, H, W)."""

    def __init__(self, dim: int, channels: int, patch: int, *, depth: int = 2):
        super().__init__()
        self.channels, self.patch = channels, patch
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.Linear(dim, dim), nn.GELU(approximate="tanh")]
        layers.append(nn.Linear(dim, patch * patch * channels))
        self.mlp = nn.Sequential(*layers)

    def forward(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return unpatchify(self.mlp(tokens), self.channels, self.patch, h, w)  # (B, C, h*p, w*p)


def pad_to_multiple(x: torch.Tensor, patch: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) at the bottom/right so H and W are multiples of ``patch``.

    Longitude (W) wraps around the globe, so it is padded circularly; latitude replicates
    the edge row. Returns the padded tensor and the original (H, W) for ``crop``.
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % patch, (-width) % patch
    if pad_w:
        x = F.pad(x, (0, pad_w, 0, 0), mode="circular")
    if pad_h:
        x = F.pad(x, (0, 0, 0, pad_h), mode="replicate")
    return x, (height, width)
