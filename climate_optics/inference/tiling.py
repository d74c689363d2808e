"""Apply a patch-trained network to a whole region or the globe with overlapping tiles.

The fine grid (H, W) is covered by ``tile x tile`` windows. Along latitude the windows start
at multiples of ``tile - overlap`` and the last one ends at the border; along a global
longitude axis they wrap around the date line (periodic), so the globe needs no seam.
Each tile's output is multiplied by a blending window and accumulated; the result is the
weighted mean ``sum(w * y) / sum(w)``. The window ramps from 0 to 1 across the overlap
(cosine or linear), is zero on the ``margin`` cells next to a tile's inner edges (where a
network sees the least context), and is flat 1 at the borders of a non-periodic domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def tile_starts(size: int, tile: int, overlap: int, *, periodic: bool) -> list[int]:
    """Start indices of the tiles covering ``size`` cells (periodic: starts may wrap past ``size``)."""
    stride = tile - overlap
    if periodic:
        count = max(1, math.ceil(size / stride))
        return [k * stride for k in range(count)]
    if size <= tile:
        return [0]
    count = math.ceil((size - tile) / stride) + 1
    starts = [k * stride for k in range(count - 1)] + [size - tile]
    return sorted(set(starts))


def ramp(tile: int, overlap: int, margin: int, kind: str) -> torch.Tensor:
    """1-D blending weights (tile,): 0 on ``margin`` cells, a ramp over the rest of ``overlap``, then 1."""
    n = overlap - margin
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n  # (n,) in (0, 1)
    up = 0.5 - 0.5 * torch.cos(math.pi * t) if kind == "cosine" else t
    edge = torch.cat([torch.zeros(margin, dtype=torch.float64), up])  # (overlap,)
    w = torch.ones(tile, dtype=torch.float64)
    w[:overlap] = edge
    w[tile - overlap :] = torch.minimum(w[tile - overlap :], edge.flip(0))
    return w


def _axis_windows(
    size: int, tile: int, overlap: int, margin: int, kind: str, periodic: bool
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For each tile along one axis: (indices into the axis (tile,), weights (tile,))."""
    starts = tile_starts(size, tile, overlap, periodic=periodic)
    if size <= tile and not periodic:
        # One tile pads the axis: replicate the last index, weight only the real cells.
        idx = torch.clamp(torch.arange(tile), max=size - 1)
        return [(idx, (torch.arange(tile) < size).double())]
    base = ramp(tile, overlap, margin, kind)
    windows = []
    for k, start in enumerate(starts):
        idx = torch.arange(start, start + tile)
        w = base.clone()
        if not periodic:
            if k == 0:
                w[: tile // 2] = 1.0  # the domain border is not a seam
            if k == len(starts) - 1:
                w[tile - tile // 2 :] = 1.0
        windows.append((idx % size if periodic else idx, w))
    return windows


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    margin: int = 0,
    window: str = "cosine",
    periodic_lon: bool = True,
    max_batch: int = 64,
) -> torch.Tensor:
    """Blend ``fn`` over overlapping tiles of ``x`` (B, C, H, W) -> (B, C_out, H, W).

    ``fn`` maps (B', C, tile, tile) -> (B', C_out, tile, tile); tiles of all samples are batched
    together, ``max_batch`` at a time. ``periodic_lon`` wraps the last axis (a global grid).
    """
    b, _, height, width = x.shape
    rows = _axis_windows(height, tile, overlap, margin, window, periodic=False)
    cols = _axis_windows(width, tile, overlap, margin, window, periodic=periodic_lon)
    pieces, places = [], []
    dev = x.device
    for r_idx, r_w in rows:
        for c_idx, c_w in cols:
            r_idx, c_idx = r_idx.to(dev), c_idx.to(dev)
            pieces.append(x[:, :, r_idx][:, :, :, c_idx])  # (B, C, tile, tile)
            places.append((r_idx, c_idx, (r_w[:, None] * c_w[None, :]).to(dev)))
    stacked = torch.cat(pieces, dim=0)  # (T*B, C, tile, tile), tile-major
    outputs = torch.cat([fn(chunk) for chunk in stacked.split(max_batch)], dim=0)  # (T*B, C_out, tile, tile)
    out = x.new_zeros((b, outputs.shape[1], height, width), dtype=torch.float64)
    weight = x.new_zeros((height, width), dtype=torch.float64)
    for k, (r_idx, c_idx, w) in enumerate(places):
        y = outputs[k * b : (k + 1) * b].to(torch.float64)  # (B, C_out, tile, tile)
        flat = (r_idx[:, None] * width + c_idx[None, :]).reshape(-1)  # (tile*tile,)
        out.view(b, -1, height * width).index_add_(2, flat, (y * w).reshape(b, y.shape[1], -1))
        weight.view(-1).index_add_(0, flat, w.reshape(-1))
    if torch.any(weight <= 0):
        raise ValueError("tiling left cells without weight; increase overlap relative to margin")
    return (out / weight).to(x.dtype)  # (B, C_out, H, W)
