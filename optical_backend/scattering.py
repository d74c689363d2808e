"""The complex transmission matrix T of the scattering medium: DMD field -> camera field.

Both models are normalised so that entries t behave like circular complex Gaussians with
E|t|^2 = 2 / n_out: the real part, which holography recovers, then has entries N(0, 1/n_out),
the normalisation shared by every projector.

- ``DenseTransmission``: i.i.d. complex Gaussian entries, materialised (small sizes).
- ``ScreenTransmission``: a thick, lossy multiple-scattering medium as a cascade of thin random
  screens with Fraunhofer (Fourier) propagation between them, on ``M = K N`` optical modes
  (``N = 2^k >= max(n_in, n_out)``, ``K = oversampling``):

      T = Theta P_out F G F Phi_{L-2} ... F Phi_1 F S P_in

  ``P_in`` places the DMD pixels on every K-th input mode, ``S`` is a binary 0/pi phase plate,
  ``F`` the unitary DFT on M points, ``Phi_l`` uniform random phase screens, ``G`` a screen of
  random complex Gaussian transmission (amplitude and phase: the medium loses light into modes
  the camera never sees), ``P_out`` keeps every K-th output mode (the camera pixels) and
  ``Theta`` is the random phase of the exit surface. The camera sees a sub-block of a lossy
  medium, never a whole unitary: a unitary model's sub-block has too narrow a singular-value
  spread and too little variation of ``|Tx|``, which only vanishes as the observed fraction of
  modes goes to zero (Goetschy & Stone, "Filtering random matrices: the effect of incomplete
  channel control in multiple scattering", PRL 111, 063901, 2013); the random amplitudes of ``G``
  put the singular values on the Marchenko-Pastur law at ``K = 2`` (tested: max/min singular
  value within 10%, spread of ``|Ax|^2/|x|^2`` within 30% of a Gaussian matrix's). From three
  screens on (``L >= 3``) the entries are a double sum of random phasors with no shift structure
  (two screens give a Hankel-like matrix, ``|t_ki|`` a function of ``k + i``): exponential
  intensity, circular fields, distinct moduli, no correlation between the speckle patterns of
  any two DMD pixels at any shift (tested). Cascades of diagonal random matrices and fast
  transforms as dense random matrices: Le, Sarlos & Smola, "Fastfood", ICML 2013; Yu et al.,
  "Orthogonal random features", NeurIPS 2016; as optical diffusers: Hu et al., "Structured random
  models for phase retrieval with optical diffusers", arXiv:2510.14490.

  Cost per pattern: the stride-K input and output modes make the first and last transforms
  N-point FFTs (a stride-K vector's M-point DFT is its N-point DFT repeated K times; the DFT at
  every K-th frequency is the N-point DFT of the K folded blocks), the binary plate keeps the
  first one real (two patterns share one complex FFT), and each of the ``L - 2`` middle screens
  costs one M-point FFT. Memory: O(L M) parameters.
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
        """The complex matrix ``(n_in, n_out)``."""
        return torch.complex(self.real, self.imag)


class ScreenTransmission:
    """``T = Theta P_out F G F Phi_{L-2} ... F Phi_1 F S P_in`` on ``M = K N`` modes (module docstring)."""

    def __init__(self, n_in: int, n_out: int, seed: int, device: torch.device, screens: int = 3, oversampling: int = 2):
        if screens < 3:
            raise ValueError(f"the screen model needs at least 3 screens, got {screens}")
        self.n_in, self.n_out = n_in, n_out
        self.modes_per_pixel = int(oversampling)  # K
        self.n = next_power_of_two(max(n_in, n_out, 2))  # N: DMD and camera modes
        self.size = self.n * self.modes_per_pixel  # M: modes of the medium
        rng = np.random.default_rng([seed, 0x0971C5, 3])
        signs = rng.integers(0, 2, size=n_in, dtype=np.int8) * 2 - 1
        self.signs = torch.from_numpy(signs.astype(np.float32)).to(device)  # (n_in,) binary phase plate
        angles = rng.uniform(0.0, 2 * np.pi, size=(screens - 2, self.size))
        self.phases = torch.from_numpy(np.exp(1j * angles).astype(np.complex64)).to(device)  # (L-2, M)
        loss = rng.standard_normal(self.size) + 1j * rng.standard_normal(self.size)
        loss /= np.sqrt(np.mean(np.abs(loss) ** 2))  # mean |g|^2 = 1 exactly: no global fluctuation of the scale
        self.loss = torch.from_numpy(loss.astype(np.complex64)).to(device)  # (M,)
        exit_angles = rng.uniform(0.0, 2 * np.pi, size=n_out)
        self.exit = torch.from_numpy(np.exp(1j * exit_angles).astype(np.complex64)).to(device)  # (n_out,)
        # unnormalised FFTs: each unitary DFT's 1/sqrt(M) is folded into the factor that follows
        # it; the first also absorbs the 1/2 and -i/2 that split two packed real spectra; the exit
        # carries the gain sqrt(2 M / n_out) that makes E|t|^2 = 2 / n_out
        root = math.sqrt(self.size)
        first = self.phases[0] / root  # (M,)
        self._first_a = (first * 0.5).view(self.modes_per_pixel, self.n)  # (K, N)
        self._first_b = (first * -0.5j).view(self.modes_per_pixel, self.n)  # (K, N)
        self._later = self.phases[1:] / root  # (L-3, M)
        self._loss = (self.loss / root).view(self.modes_per_pixel, self.n)  # (K, N)
        self._exit = self.exit * (math.sqrt(2 * self.size / n_out) / root)  # (n_out,)

    def _input_spectra(self, patterns: torch.Tensor) -> torch.Tensor:  # (R, n_in) real -> (R, N) complex
        """Unnormalised N-point DFTs of the signed patterns, two real patterns per complex FFT."""
        rows, n = patterns.shape[0], self.n
        half = (rows + 1) // 2
        # z = u_a + i u_b, then A[k] = Z[k] + conj Z[-k], B[k] = Z[k] - conj Z[-k]: the 1/2 and
        # 1/2i of the split are folded into the first screen (an odd last row pairs with zeros)
        packed = (torch.zeros if self.n_in < n or rows % 2 else torch.empty)(half, n, 2, device=patterns.device)
        torch.mul(patterns[:half], self.signs, out=packed[:, : self.n_in, 0])  # (h, n_in)
        torch.mul(patterns[half:], self.signs, out=packed[: rows - half, : self.n_in, 1])  # (h', n_in)
        spectrum = torch.fft.fft(torch.view_as_complex(packed))  # (h, N)
        mirror = torch.roll(spectrum.flip(-1), 1, dims=-1).conj()  # (h, N): conj Z[-k]
        out = torch.empty(2 * half, n, dtype=spectrum.dtype, device=patterns.device)  # (2h, N)
        torch.add(spectrum, mirror, out=out[:half])
        torch.sub(spectrum, mirror, out=out[half:])
        return out[:rows]

    def fields(self, patterns: torch.Tensor) -> torch.Tensor:  # (R, n_in) real -> (R, n_out) complex
        rows, half = patterns.shape[0], (patterns.shape[0] + 1) // 2
        spectra = self._input_spectra(patterns)  # (R, N): the M-point DFT is this repeated K times
        field = torch.empty(rows, self.modes_per_pixel, self.n, dtype=spectra.dtype, device=patterns.device)  # (R, K, N)
        torch.mul(spectra[:half, None], self._first_a, out=field[:half])
        torch.mul(spectra[half:, None], self._first_b, out=field[half:])
        del spectra
        field = torch.fft.fft(field.view(rows, self.size))  # (R, M)
        for phase in self._later:
            field = torch.fft.fft(field.mul_(phase))  # (R, M)
        folded = field.view(rows, self.modes_per_pixel, self.n).mul_(self._loss).sum(dim=1)  # (R, N)
        del field
        field = torch.fft.fft(folded)  # (R, N): the medium's DFT at every K-th mode
        return field[:, : self.n_out].mul_(self._exit) if self.n_out == self.n else field[:, : self.n_out] * self._exit

    def effective_map(self) -> torch.Tensor:
        """The complex matrix ``(n_in, n_out)`` (small sizes)."""
        eye = torch.eye(self.n_in, device=self.signs.device)
        return self.fields(eye)


def transmission(
    n_in: int, n_out: int, seed: int, device: torch.device, *, screens: int, dense_threshold: int, oversampling: int = 2
):
    """Materialised up to ``dense_threshold`` entries, the screen model above."""
    if n_in * n_out <= dense_threshold:
        return DenseTransmission(n_in, n_out, seed, device)
    return ScreenTransmission(n_in, n_out, seed, device, screens=screens, oversampling=oversampling)
