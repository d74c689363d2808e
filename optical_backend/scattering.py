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

  Cost per pattern (``L = 3``): one N/2-point FFT of the real pattern packed as complex numbers,
  K N-point FFTs for the M-point DFT (decimation in time: a stride-K vector's M-point DFT is its
  N-point DFT repeated K times, so the K decimated inputs are built directly, and the lossy
  screen and the fold onto the camera's every K-th mode combine the K spectra in one pass), and
  one N-point FFT to the camera; each further screen adds one M-point FFT. At N = 2^20 the
  M-point FFT would leave the cache (4x the time of one N-point FFT measured, not 2x).
  Memory: O(L M) parameters.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from optical_backend.hadamard import next_power_of_two
from optical_backend.projector import seeded_generator

FIELD_BLOCK = 1 << 21  # complex modes simulated at once (16 MiB): one pattern of a 2^20-pixel camera


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
        # it; the exit carries the gain sqrt(2 M / n_out) that makes E|t|^2 = 2 / n_out
        root = math.sqrt(self.size)
        self._first = (self.phases[0] / root).view(self.modes_per_pixel, self.n)  # (K, N)
        self._later = self.phases[1:] / root  # (L-3, M)
        self._loss = (self.loss / root).view(self.modes_per_pixel, self.n)  # (K, N)
        self._exit = self.exit * (math.sqrt(2 * self.size / n_out) / root)  # (n_out,)
        twiddle = np.exp(-2j * np.pi * np.arange(self.n // 2) / self.n)  # (N/2,) w^k
        self._split = tuple(
            torch.from_numpy(((1 + sign * 1j * twiddle) / 2).astype(np.complex64)).to(device) for sign in (-1, 1)
        )

    def _spectrum(self, patterns: torch.Tensor) -> torch.Tensor:  # (R, n_in) real -> (R, N) complex
        """The signed patterns' N-point DFT from one N/2-point complex FFT per pattern: with
        ``z[i] = u[2i] + i u[2i+1]``, ``Z = DFT(z)`` and ``Z'[k] = conj Z[-k]``, the even and odd
        samples' DFTs are ``(Z + Z') / 2`` and ``(Z - Z') / 2i``, and ``X[k] = a Z + b Z'``,
        ``X[k + N/2] = b Z + a Z'`` with ``a, b = (1 -+ i w^k) / 2``, ``w = exp(-2 pi i / N)``
        (MKL's own real-input FFT is slower than this at 2^20 points)."""
        rows, half = patterns.shape[0], self.n // 2
        signed = torch.zeros(rows, self.n, device=patterns.device)  # (R, N): zero-padded
        torch.mul(patterns, self.signs, out=signed[:, : self.n_in])
        packed = torch.fft.fft(torch.view_as_complex(signed.view(rows, half, 2)))  # (R, N/2)
        mirrored = torch.roll(packed.flip(-1), 1, dims=-1).conj_physical()  # (R, N/2): conj Z[-k]
        a, b = self._split
        full = torch.empty(rows, self.n, dtype=packed.dtype, device=patterns.device)  # (R, N)
        torch.mul(packed, a, out=full[:, :half]).addcmul_(mirrored, b)
        torch.mul(packed, b, out=full[:, half:]).addcmul_(mirrored, a)
        return full

    def _first_screen(self, patterns: torch.Tensor, decimated: bool) -> torch.Tensor:  # (R, n_in) -> (R, K, N)
        """The field after the first screen, ``x[m] = first[m] X[m mod N]`` (the M-point DFT of a
        stride-K input is its N-point DFT repeated K times); ``decimated``: as ``x[iK + j]`` at
        ``[j, i]``, where ``X[(iK + j) mod N]`` is ``X[j::K]`` repeated K times."""
        spectrum = self._spectrum(patterns)  # (R, N)
        rows, k, n = spectrum.shape[0], self.modes_per_pixel, self.n
        field = torch.empty(rows, k, n, dtype=spectrum.dtype, device=patterns.device)  # (R, K, N)
        if not decimated:
            return torch.mul(spectrum[:, None], self._first, out=field)
        first = self._first_decimated()  # (K, N)
        for j in range(k):
            strided = spectrum[:, j::k]  # (R, N/K)
            torch.mul(first[j].view(k, n // k), strided[:, None], out=field[:, j].view(rows, k, n // k))
        return field

    def _first_decimated(self) -> torch.Tensor:  # (K, N): first[iK + j] at [j, i]
        if getattr(self, "_first_dec", None) is None:
            self._first_dec = self._first.reshape(-1).view(self.n, self.modes_per_pixel).T.contiguous()
        return self._first_dec

    def _combine(self) -> torch.Tensor:  # (K, N) complex
        """``c_j[k] = sum_q loss[qN + k] w^(j (k + qN))``, ``w = exp(-2 pi i / M)``: with
        ``G_j`` the N-point DFT of the decimated ``x[iK + j]``, the M-point DFT is
        ``F[k + qN] = sum_j w^(j (k + qN)) G_j[k]`` (decimation in time), so the lossy screen and
        the fold onto the camera's modes are ``sum_q loss[qN + k] F[k + qN] = sum_j c_j[k] G_j[k]``:
        K N-point DFTs instead of one M-point DFT (which falls out of cache at 2^21 points)."""
        if getattr(self, "_combine_of", None) is not self._loss:  # recomputed if the screen is replaced
            k, n = self.modes_per_pixel, self.n
            modes = torch.arange(self.size, dtype=torch.float64, device=self._loss.device)  # (M,)
            loss = self._loss.reshape(-1).to(torch.complex128)  # (M,)
            combine = torch.stack(
                [(loss * torch.exp(-2j * math.pi * j * modes / self.size)).view(k, n).sum(dim=0) for j in range(k)]
            )
            self._combine_c, self._combine_of = combine.to(self._loss.dtype), self._loss
        return self._combine_c

    def fields(self, patterns: torch.Tensor) -> torch.Tensor:  # (R, n_in) real -> (R, n_out) complex
        """One pattern at a time for large media (the K N-point buffers then stay in cache)."""
        rows = patterns.shape[0]
        step = max(1, FIELD_BLOCK // self.size)  # rows per block
        if rows <= step:
            return self._fields(patterns)
        out = torch.empty(rows, self.n_out, dtype=self._exit.dtype, device=patterns.device)  # (R, n_out)
        for start in range(0, rows, step):
            out[start : start + step] = self._fields(patterns[start : start + step])
        return out

    def _fields(self, patterns: torch.Tensor) -> torch.Tensor:  # (R, n_in) real -> (R, n_out) complex
        rows, k, n = patterns.shape[0], self.modes_per_pixel, self.n
        if len(self._later):
            field = torch.fft.fft(self._first_screen(patterns, decimated=False).view(rows, self.size))  # (R, M)
            for phase in self._later[:-1]:
                field = torch.fft.fft(field.mul_(phase))  # (R, M)
            field = field.mul_(self._later[-1]).view(rows, n, k).transpose(1, 2).contiguous()  # (R, K, N) decimated
        else:
            field = self._first_screen(patterns, decimated=True)  # (R, K, N) decimated
        spectra = torch.fft.fft(field)  # (R, K, N): G_j
        del field
        combine = self._combine()  # (K, N)
        folded = torch.mul(spectra[:, 0], combine[0])  # (R, N)
        for j in range(1, k):
            folded.addcmul_(spectra[:, j], combine[j])
        del spectra
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
