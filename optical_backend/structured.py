"""A structured random projection: never materialised, O(n log n), statistically like dense.

Each block of ``d = 2^k >= n_in`` outputs is a Fastfood / structured-orthogonal-random-features
transform (Le, Sarlos & Smola 2013, "Fastfood"; Yu et al. 2016, "Orthogonal Random Features"):

    y_block = sqrt(d / n_out) * S * H D3 H D2 H D1 x_padded

with ``H`` the orthonormal Walsh-Hadamard transform (applied as Kronecker factors, see
``optical_backend.hadamard``), ``D1, D2, D3`` independent random sign diagonals and ``S`` a
diagonal of chi-distributed row lengths ``chi_d / sqrt(d)``, so that each row has the length
distribution of a Gaussian row. Three ``HD`` rounds make every row look Gaussian even for
adversarial inputs (a one-hot input is spread by the first round, Gaussianised by the next two).
``n_out > d`` stacks ``ceil(n_out / d)`` independent blocks; the output is cut to ``n_out``.
Entries then behave like i.i.d. N(0, 1/n_out), the normalisation shared by all backends.
Parameters: 3 sign vectors and one scale vector per block, regenerated from the seed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from optical_backend.hadamard import hadamard_transform, next_power_of_two
from optical_backend.projector import BaseProjector

HD_ROUNDS = 3


class StructuredProjector(BaseProjector):
    """Randomised Hadamard (Fastfood-type) projector ``(..., n_in) -> (..., n_out)``."""

    kind = "structured"

    def __init__(self, n_in: int, n_out: int, *, seed: int = 0, device: torch.device | str | None = None):
        super().__init__(n_in, n_out, seed=seed, device=device)
        self.size = next_power_of_two(self.n_in)  # d: padded input size, outputs per block
        self.blocks = math.ceil(self.n_out / self.size)
        rng = np.random.default_rng([self.seed, 0x5EED_F00D])
        signs = rng.integers(0, 2, size=(HD_ROUNDS, self.blocks, self.size), dtype=np.int8) * 2 - 1
        lengths = np.sqrt(rng.chisquare(self.size, size=(self.blocks, self.size)) / self.size)
        self.signs = torch.from_numpy(signs.astype(np.float32)).to(self.device)  # (3, B, d)
        scale = math.sqrt(self.size / self.n_out)
        self.scale = torch.from_numpy((lengths * scale).astype(np.float32)).to(self.device)  # (B, d)

    def _project(self, x: torch.Tensor) -> torch.Tensor:  # (N, n_in) -> (N, n_out)
        n = x.shape[0]
        if self.size != self.n_in:
            x = torch.nn.functional.pad(x, (0, self.size - self.n_in))  # (N, d)
        y = x.unsqueeze(1) * self.signs[0]  # (N, B, d)
        for r in range(1, HD_ROUNDS):
            y = hadamard_transform(y) * self.signs[r]  # (N, B, d)
        y = hadamard_transform(y) * self.scale  # (N, B, d)
        return y.reshape(n, self.blocks * self.size)[:, : self.n_out]  # (N, n_out)

    def config(self) -> dict[str, Any]:
        return {}
