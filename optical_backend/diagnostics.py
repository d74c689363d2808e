"""Measurements of the simulated OPU that the benchmark reports: how Gaussian the medium is, how
unbiased the encoding is, and what an optical DFA step costs in device time beside wall time.

- ``speckle_statistics(n_in, n_out)``: the screen model's complex matrix at a size that uses the
  FFT path, against the laws of an i.i.d. complex Gaussian matrix (intensity KS test against the
  exponential law, circularity, the largest correlation between two DMD pixels' intensity
  patterns at any shift, distinct moduli against Gaussian entries of the same precision,
  max/min singular value of the real part against Marchenko-Pastur, spread of |Ax|^2/|x|^2).
- ``encoding_gain(x, config)``: the mean of many projections of one vector, projected on its
  ideal projection (1 = unbiased), its relative error, and the frames shown per vector.
- ``error_families(n)``: the error vectors DFA meets (Gaussian, Student-t(2), softmax minus one-hot).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from optical_backend.opu import OPUConfig
from optical_backend.projector import make_projector
from optical_backend.scattering import ScreenTransmission


def exponential_ks_pvalue(sample: torch.Tensor) -> float:
    """Kolmogorov-Smirnov p-value of ``sample`` against the unit exponential law (asymptotic
    Kolmogorov distribution with Stephens' small-sample correction)."""
    x = sample.double().sort().values
    n = x.numel()
    cdf = 1 - torch.exp(-x)  # (n,)
    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    distance = float(torch.maximum(ranks / n - cdf, cdf - (ranks - 1) / n).max())
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * distance
    terms = [(-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101)]
    return min(1.0, max(0.0, 2 * sum(terms)))


def max_shift_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest |correlation| of two patterns over all circular shifts of one against the other."""
    a = (a - a.mean()) / a.std()
    b = (b - b.mean()) / b.std()
    cross = torch.fft.ifft(torch.fft.fft(a.double()) * torch.fft.fft(b.double()).conj()).real / a.numel()
    return float(cross.abs().max())


@torch.no_grad()
def speckle_statistics(
    n_in: int = 1024, n_out: int = 8192, seed: int = 7, config: OPUConfig | None = None
) -> dict[str, float]:
    """The statistics of item 1 for the default screen model (module docstring)."""
    config = config or OPUConfig()
    model = ScreenTransmission(
        n_in, n_out, seed, torch.device("cpu"), screens=config.screens, oversampling=config.oversampling
    )
    t = model.fields(torch.eye(n_in)) * (n_out / 2) ** 0.5  # (n_in, n_out), unit mean intensity
    gen = torch.Generator().manual_seed(seed)
    intensity = t.abs().square()
    sample = intensity.flatten()[torch.randperm(intensity.numel(), generator=gen)[:50_000]]
    pairs = [(i, i + 1) for i in range(0, 64, 8)] + [
        tuple(torch.randperm(n_in, generator=gen)[:2].tolist()) for _ in range(8)
    ]
    moduli = t.abs().flatten()
    gaussian = torch.complex(torch.randn(moduli.numel(), generator=gen), torch.randn(moduli.numel(), generator=gen))
    real = t.real.double() * 2**0.5  # unit-variance entries
    singular = torch.linalg.svdvals(real)
    ratio = math.sqrt(min(n_in, n_out) / max(n_in, n_out))
    x = torch.randn(2000, n_in, generator=gen, dtype=torch.float64)
    gains = (x @ real).square().sum(dim=1) / x.square().sum(dim=1) / n_out  # ~ chi2_{n_out} / n_out
    return {
        "intensity_ks_pvalue": exponential_ks_pvalue(sample),
        "circularity": abs(complex(t.square().mean())),  # |E t^2| / E|t|^2: 0 for circular fields
        "max_pair_shift_correlation": max(max_shift_correlation(intensity[i], intensity[j]) for i, j in pairs),
        "pair_correlation_noise": 1 / math.sqrt(n_out),
        "distinct_moduli_vs_gaussian": torch.unique(moduli).numel() / torch.unique(gaussian.abs()).numel(),
        "singular_max_over_min": float(singular.max() / singular.min()),
        "marchenko_pastur_max_over_min": (1 + ratio) / (1 - ratio),
        "norm_spread": float(gains.std()),
        "gaussian_norm_spread": math.sqrt(2 / n_out),
    }


def error_families(n: int = 1024, seed: int = 1) -> dict[str, torch.Tensor]:
    """One error vector of each family DFA meets, of ``n`` entries."""
    gen = torch.Generator().manual_seed(seed)
    onehot = torch.zeros(n)
    onehot[n // 3] = 1.0
    normal, uniform = torch.randn(n, generator=gen), torch.rand(n, generator=gen)
    heavy = normal / (-uniform.log()).sqrt()  # Student-t, 2 degrees of freedom: z / sqrt(chi2_2 / 2), chi2_2 = -2 log u
    return {
        "gaussian": torch.randn(n, generator=gen),
        "student-t(2)": heavy,
        "softmax-minus-one-hot": torch.softmax(2 * torch.randn(n, generator=gen), 0) - onehot,
    }


@torch.no_grad()
def encoding_gain(
    x: torch.Tensor, config: OPUConfig, *, n_out: int = 256, draws: int = 4000, seed: int = 3
) -> dict[str, Any]:
    """Mean of ``draws`` projections of ``x`` against its ideal projection through the same device."""
    proj = make_projector("optical", x.numel(), n_out, seed=seed, config=config)
    ideal = proj.ideal_projection(x)[0].double()  # (n_out,): x @ effective_map(), without the matrix
    mean = proj(x.expand(draws, -1).contiguous()).double().mean(dim=0)  # (n_out,)
    return {
        "gain": float(mean @ ideal / (ideal @ ideal)),
        "error_of_mean": float((mean - ideal).norm() / ideal.norm()),
        "frames_per_vector": (proj.stats.frames - config.calibration_frames_per_pass) / draws,
    }
