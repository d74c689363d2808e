"""Fast Walsh-Hadamard transform as a Kronecker product of small Hadamard matrices.

A Sylvester Hadamard matrix of size ``d = 2^k`` factors as ``H_d = H_f1 (x) H_f2 (x) ... (x) H_fm``
with ``f1 * ... * fm = d``. Viewing a vector as an ``(f1, ..., fm)`` array, ``H_d x`` applies each
small ``H_f`` along its own axis: ``m`` batched matrix products of ``O(d * f)`` work each, which
BLAS and GPUs run far faster than the ``log2(d)`` add/subtract passes of the textbook butterfly.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

MAX_FACTOR = 64  # the size of the small Hadamard blocks: a balance of BLAS efficiency and flops


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def next_power_of_two(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def kron_factors(d: int, max_factor: int = MAX_FACTOR) -> list[int]:
    """Split ``d = 2^k`` into near-equal powers of two, each at most ``max_factor``."""
    if not is_power_of_two(d):
        raise ValueError(f"Hadamard size must be a power of two, got {d}")
    k = d.bit_length() - 1
    if k == 0:
        return [1]
    per = max_factor.bit_length() - 1
    parts = math.ceil(k / per)
    exps = [k // parts + (1 if i < k % parts else 0) for i in range(parts)]
    return [1 << e for e in exps]


@lru_cache(maxsize=32)
def _sylvester_cpu(f: int) -> torch.Tensor:
    h = torch.ones(1, 1)
    while h.shape[0] < f:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def sylvester(f: int, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The unnormalised ``f x f`` Sylvester Hadamard matrix (entries +-1, symmetric)."""
    return _sylvester_cpu(f).to(device=device, dtype=dtype)


def hadamard_transform(x: torch.Tensor, *, normalized: bool = True, max_factor: int = MAX_FACTOR) -> torch.Tensor:
    """``H x`` along the last dimension (size a power of two); orthonormal when ``normalized``."""
    d = x.shape[-1]
    factors = kron_factors(d, max_factor)
    lead = x.shape[:-1]
    y = x.reshape(-1, d)  # (N, d)
    n = y.shape[0]
    before = 1
    for f in factors:
        after = d // (before * f)
        h = sylvester(f, y.device, y.dtype)  # (f, f)
        if after == 1:
            y = y.reshape(-1, f) @ h  # (N * before, f) @ (f, f): H is symmetric
        else:
            y = torch.matmul(h, y.reshape(n * before, f, after))  # (f, f) @ (N * before, f, after)
        before *= f
    y = y.reshape(*lead, d)
    if normalized:
        y = y * (1.0 / math.sqrt(d))
    return y
