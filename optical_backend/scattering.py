"""The complex transmission matrix T of the scattering medium: DMD field -> camera field.

Both models are normalised so that entries t behave like circular complex Gaussians with
E|t|^2 = 2 / n_out: the real part, which holography recovers, then has entries N(0, 1/n_out),
the normalisation shared by every projector.

- ``DenseTransmission``: i.i.d. complex Gaussian entries, materialised (small sizes).
- ``PhaseScreenTransmission``: the classic model of a thick scattering medium as a stack of thin
  random phase screens with Fraunhofer (Fourier) propagation between them,
  ``T = Theta F Phi_L ... F Phi_2 F S_1`` on a field of ``M = 2^k >= max(n_in, n_out)`` points
  (``F`` the unitary DFT; ``S_1`` a binary 0/pi phase plate at the DMD; ``Phi_l`` uniform random
  phases; ``Theta`` the random phase of the exit surface, seen by the camera relative to the flat
  reference beam). The DMD fills the first ``n_in`` points, the camera reads the first ``n_out``.
  From two screens on, every entry is a sum of ``M`` random phasors: fully developed speckle,
  circular Gaussian by the central limit theorem, at O(M log M) per vector and O(L M) memory.
  With exactly two screens T is a row-phased, column-signed Hankel matrix (entries on one
  anti-diagonal share their modulus, ``|t_ki| = |h_{k+i}|``), a classical structured random
  matrix; the exit phase makes the real parts of those entries independent; each further screen
  costs one FFT and removes the structure altogether. A binary first screen keeps the field real
  up to the first FFT, which then runs as a half-size real FFT.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from optical_backend.hadamard import next_power_of_two
from optical_backend.projector import seeded_generator


class DenseTransmission:
    """A materialised ``(n_in, n_out)`` complex Gaussian matrix, stored as real and imaginary parts."""

    def __init__(self, n_in: int, n_out: int, seed: int, device: torch.device):
        gen = seeded_generator(seed, salt=1)
        std = 1.0 / math.sqrt(n_out)
        self.real = (torch.randn(n_in, n_out, generator=gen) * std).to(device)  # (n_in, n_out)
        self.imag = (torch.randn(n_in, n_out, generator=gen) * std).to(device)  # (n_in, n_out)

    def fields(self, patterns: torch.Tensor) -> torch.Tensor:  # (R, n_in) real -> (R, n_out) complex
        return torch.complex(patterns @ self.real, patterns @ self.imag)

    def effective_map(self) -> torch.Tensor:
        """The real linear map recovered by holography, ``(n_in, n_out)``."""
        return self.real


class PhaseScreenTransmission:
    """``T = Theta F Phi_L ... F Phi_2 F S_1`` restricted to the DMD inputs and camera outputs."""

    def __init__(self, n_in: int, n_out: int, seed: int, device: torch.device, screens: int = 2):
        self.n_in, self.n_out = n_in, n_out
        self.size = next_power_of_two(max(n_in, n_out, 2))  # M
        rng = np.random.default_rng([seed, 0x0971C5])
        signs = rng.integers(0, 2, size=n_in, dtype=np.int8) * 2 - 1
        self.signs = torch.from_numpy(signs.astype(np.float32)).to(device)  # (n_in,) binary phase plate
        angles = torch.from_numpy(rng.uniform(0.0, 2 * np.pi, size=(screens - 1, self.size)).astype(np.float32))
        self.phases = torch.polar(torch.ones_like(angles), angles).to(device)  # (L-1, M) complex
        exit_angles = torch.from_numpy(rng.uniform(0.0, 2 * np.pi, size=n_out).astype(np.float32))
        gain = math.sqrt(2 * self.size / n_out)
        self.exit = torch.polar(torch.full_like(exit_angles, gain), exit_angles).to(device)  # (n_out,) complex
        # unnormalised FFTs: the 1/sqrt(M) of each unitary DFT is folded into the next factor;
        # the first also absorbs the 1/2 and -i/2 that split two packed real spectra
        root = math.sqrt(self.size)
        self._first_a = self.phases[0] * (0.5 / root)  # (M,)
        self._first_b = self.phases[0] * (-0.5j / root)  # (M,)
        self._later = self.phases[1:] / root  # (L-2, M)
        self._exit = self.exit / root  # (n_out,)

    def fields(self, patterns: torch.Tensor) -> torch.Tensor:  # (R, n_in) real -> (R, n_out) complex
        rows, m = patterns.shape[0], self.size
        half = (rows + 1) // 2
        # two real patterns per complex FFT: z = u_a + i u_b, then A[k] = (Z[k] + conj Z[-k]) / 2
        # and B[k] = (Z[k] - conj Z[-k]) / 2i (an odd last row is paired with zeros)
        packed = (torch.zeros if self.n_in < m or rows % 2 else torch.empty)(half, m, 2, device=patterns.device)
        torch.mul(patterns[:half], self.signs, out=packed[:, : self.n_in, 0])  # (h, n_in)
        torch.mul(patterns[half:], self.signs, out=packed[: rows - half, : self.n_in, 1])  # (h', n_in)
        spectrum = torch.fft.fft(torch.view_as_complex(packed))  # (h, M)
        mirror = spectrum[:, 1:].flip(-1).conj()  # (h, M-1): conj Z[-k] for k >= 1
        field = torch.empty(2 * half, m, dtype=spectrum.dtype, device=patterns.device)  # (2h, M)
        a, b = field[:half], field[half:]
        a[:, 0], b[:, 0] = spectrum[:, 0].real, spectrum[:, 0].imag  # k = 0: Z[-0] = Z[0]
        torch.add(spectrum[:, 1:], mirror, out=a[:, 1:]).mul_(self._first_a[1:])
        torch.sub(spectrum[:, 1:], mirror, out=b[:, 1:]).mul_(self._first_b[1:])
        a[:, 0].mul_(self._first_a[0] * 2)
        b[:, 0].mul_(self._first_a[0] * 2)
        del spectrum, mirror, packed
        field = torch.fft.fft(field[:rows])  # (R, M)
        for phase in self._later:
            field = torch.fft.fft(field.mul_(phase))  # (R, M)
        if self.n_out == m:
            return field.mul_(self._exit)  # (R, n_out)
        return field[:, : self.n_out] * self._exit  # (R, n_out)

    def effective_map(self) -> torch.Tensor:
        eye = torch.eye(self.n_in, device=self.signs.device)
        return self.fields(eye).real  # (n_in, n_out)


def transmission(n_in: int, n_out: int, seed: int, device: torch.device, *, screens: int, dense_threshold: int):
    """Materialised below ``dense_threshold`` entries, phase screens above."""
    if n_in * n_out <= dense_threshold:
        return DenseTransmission(n_in, n_out, seed, device)
    return PhaseScreenTransmission(n_in, n_out, seed, device, screens=screens)
