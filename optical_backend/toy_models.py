"""Small reference models and a synthetic regression task for DFA tests, benchmarks and examples.

``TinyViT`` is a pre-norm Vision Transformer regressor (patch embedding, sin-cos positions,
``ViTBlock`` x depth, linear head back to patches) in the spirit of ClimaX-style forecasters,
small enough for a CPU test; ``teacher_regression`` draws inputs and targets from a fixed
random teacher so that the loss can fall far below its starting value.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint


class MLP(nn.Module):
    """``Linear -> Tanh`` hidden layers (named ``layers.{2i}`` / ``layers.{2i+1}``) and a linear head."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int):
        super().__init__()
        dims = (n_in, *hidden)
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(dims[-1], n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n_in) -> (B, n_out)
        return self.head(self.layers(x))


class ViTBlock(nn.Module):
    """Pre-norm Transformer block: x + Attn(LN(x)), then + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, N, D)
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads)  # (B, N, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, N, Dh)
        p = self.dropout if self.training else 0.0
        attn = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, H, N, Dh)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, n, d))
        return x + F.dropout(self.mlp(self.norm2(x)), p, self.training)


def sincos_2d(h: int, w: int, dim: int) -> torch.Tensor:
    """Fixed 2D sine-cosine position embedding, (h*w, dim)."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float32) / max(dim // 4, 1))
    parts = [f(c.reshape(-1, 1) * omega) for c in (yy, xx) for f in (torch.sin, torch.cos)]
    emb = torch.cat(parts, dim=1)  # (h*w, 4*(dim//4))
    return F.pad(emb, (0, dim - emb.shape[1]))


class TinyViT(nn.Module):
    """Image-to-image ViT regressor: (B, C_in, H, W) -> (B, N, patch*patch*C_out) tokens.

    The output stays in token form so that DFA can use a per-token error; ``unpatchify``
    turns it back into an image. The head starts at zero (as in DiT, arXiv 2212.09748): the
    first updates then come from the data alone, and DFA aligns quickly because the head is
    built from the correlation of the error with the block outputs.
    """

    def __init__(
        self,
        image: int = 8,
        patch: int = 2,
        c_in: int = 2,
        c_out: int = 2,
        dim: int = 32,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.0,
        checkpoint_blocks: bool = False,
    ):
        super().__init__()
        self.checkpoint_blocks = checkpoint_blocks  # per-block activation checkpointing (back-propagation baseline)
        self.image, self.patch, self.c_out = image, patch, c_out
        grid = image // patch
        self.embed = nn.Linear(c_in * patch * patch, dim)
        self.register_buffer("pos", sincos_2d(grid, grid, dim), persistent=False)  # (N, D)
        self.blocks = nn.ModuleList(ViTBlock(dim, heads, dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, c_out * patch * patch)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, N, C*p*p)
        return F.unfold(x, self.patch, stride=self.patch).transpose(1, 2)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, N, C*p*p) -> (B, C, H, W)
        return F.fold(tokens.transpose(1, 2), self.image, self.patch, stride=self.patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(self.patchify(x)) + self.pos  # (B, N, D)
        for block in self.blocks:
            if self.checkpoint_blocks and torch.is_grad_enabled():
                h = checkpoint(block, h, use_reentrant=False)  # keeps only the block input
            else:
                h = block(h)
        return self.head(self.norm(h))  # (B, N, C_out*p*p)


@torch.no_grad()
def teacher_regression(
    n: int, *, kind: str = "mlp", n_in: int = 16, n_out: int = 4, image: int = 8, channels: int = 2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of a synthetic regression: a fixed random smooth teacher.

    ``kind="mlp"``: x (n, n_in), y = tanh(x A) B (n, n_out). ``kind="image"``: x (n, C, H, W),
    y = a local non-linear filter of x in TinyViT token layout (n, N, C*2*2).
    """
    gen = torch.Generator().manual_seed(seed)
    if kind == "mlp":
        x = torch.randn(n, n_in, generator=gen)
        a = torch.randn(n_in, 2 * n_in, generator=gen) / math.sqrt(n_in)
        b = torch.randn(2 * n_in, n_out, generator=gen) / math.sqrt(2 * n_in)
        return x, torch.tanh(x @ a) @ b
    x = torch.randn(n, channels, image, image, generator=gen)
    kernel = torch.randn(channels, channels, 3, 3, generator=gen) / 3.0
    y = torch.tanh(F.conv2d(x, kernel, padding=1)) + 0.5 * x.roll(1, dims=1)  # (n, C, H, W)
    tokens = F.unfold(y, 2, stride=2).transpose(1, 2)  # (n, N, C*4)
    return x, tokens
