"""A small noise-conditioned UNet for fields: (B, C_in, H, W) -> (B, C_out, H, W).

The convolutional alternative to the downscaler's ViT backbone (CorrDiff itself uses a UNet,
the DDPM++ "SongUNet"; Song et al. 2021, arXiv:2011.13456). Two resolutions (full and half),
residual blocks with GroupNorm/SiLU/3x3 convolutions, the noise embedding added per channel
(FiLM-style shift) inside every block, nearest-neighbour upsampling and a skip connection
per level. H and W must be even. ``blocks.0 ... blocks.4`` are the DFA feedback points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from climate_optics.models.blocks import ScalarEmbedding


def _groups(channels: int) -> int:
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class ResBlock(nn.Module):
    """x + conv(silu(norm(conv(silu(norm(x))) + shift(emb)))): (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int | None):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out) if emb_dim else None
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        if self.emb is not None and emb is not None:
            h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class FieldUNet(nn.Module):
    """Two-level UNet of width ``width`` (``2 * width`` at half resolution)."""

    def __init__(self, in_channels: int, out_channels: int, width: int, *, noise_conditioned: bool = False):
        super().__init__()
        emb_dim = 4 * width if noise_conditioned else None
        self.noise_embed = ScalarEmbedding(emb_dim) if noise_conditioned else None
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            [
                ResBlock(width, width, emb_dim),  # encoder, full resolution
                ResBlock(2 * width, 2 * width, emb_dim),  # encoder, half resolution
                ResBlock(2 * width, 2 * width, emb_dim),  # middle, half resolution
                ResBlock(4 * width, width, emb_dim),  # decoder, half resolution (with skip), narrows
                ResBlock(2 * width, width, emb_dim),  # decoder, full resolution (with skip)
            ]
        )
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.out_norm = nn.GroupNorm(_groups(width), width)
        self.out = nn.Conv2d(width, out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # start as "no correction" (EDM's SongUNet zero-inits its output too)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, noise_label: torch.Tensor | None = None) -> torch.Tensor:
        emb = None if self.noise_embed is None else self.noise_embed(noise_label)  # (B, E)
        h0 = self.blocks[0](self.stem(x), emb)  # (B, w, H, W)
        h1 = self.blocks[1](self.down(h0), emb)  # (B, 2w, H/2, W/2)
        m = self.blocks[2](h1, emb)  # (B, 2w, H/2, W/2)
        u1 = self.blocks[3](torch.cat([m, h1], dim=1), emb)  # (B, w, H/2, W/2)
        u0 = F.interpolate(u1, scale_factor=2, mode="nearest")  # (B, w, H, W)
        u0 = self.blocks[4](torch.cat([u0, h0], dim=1), emb)  # (B, w, H, W)
        return self.out(F.silu(self.out_norm(u0)))  # (B, C_out, H, W)
