"""The default device's effective matrix is a Gaussian matrix whose columns are scaled by Rayleigh
amplitudes, and its spectrum is where that model puts it, not Marchenko-Pastur's.

The anchor read-out returns Re(T conj R) / rms|R|: output k is column k of the medium, turned by the
phase of R_k (still Gaussian) and scaled by r_k = |R_k| / rms|R|, a Rayleigh amplitude with E r^2 = 1.
Two figures, at 1024 -> 8192 (the structured path under the default ``dense_threshold``):

- max/min singular value: no closed form for A = G diag(r); the reference is such matrices drawn
  here with fixed seeds (Marchenko-Pastur's 2.09 is the plain Gaussian's).
- spread of g = |Ax|^2 / |x|^2 over isotropic x, exactly from M = A A^T (n x n):
  Var g / (E g)^2 = 2 / (n + 2) * (n tr M^2 / (tr M)^2 - 1), and for A = G diag(r) on average
  n tr M^2 / (tr M)^2 = 1 + (n + 1) E r^4 / (m (E r^2)^2): the spread is sqrt(E r^4) / E r^2 times
  a Gaussian matrix's, sqrt(2) for Rayleigh amplitudes (E r^4 = 2). The external reference arm has
  no such scale: Gaussian figures.
"""

from __future__ import annotations

import math

import pytest
import torch

from optical_backend import OPUConfig, make_projector

N_IN, N_OUT = 1024, 8192
MARCHENKO_PASTUR = (1 + math.sqrt(N_IN / N_OUT)) / (1 - math.sqrt(N_IN / N_OUT))  # 2.09


def figures(a: torch.Tensor) -> tuple[float, float]:
    """(max/min singular value, relative spread of |ax|^2/|x|^2 over isotropic x) of ``a`` (n, m)."""
    eig = torch.linalg.eigvalsh(a @ a.T)  # (n,) squared singular values
    n = a.shape[0]
    spread = math.sqrt(2 * (n * float(eig.square().sum()) / float(eig.sum()) ** 2 - 1) / (n + 2))
    return math.sqrt(float(eig.max() / eig.min())), spread


def gaussian_spread(n: int, m: int) -> float:
    """The spread of an (n, m) Gaussian matrix: E tr M^2 = n m (n + m + 1), E tr M = n m."""
    return math.sqrt(2 * (n + 1) / ((n + 2) * m))


pytestmark = pytest.mark.usefixtures("torch_single_thread_module")


@pytest.fixture(scope="module")
def rescaled_gaussian(torch_single_thread_module) -> tuple[float, float]:
    """The figures of G diag(r), G Gaussian and r Rayleigh with E r^2 = 1: the mean of two draws."""
    draws = []
    for seed in range(2):
        gen = torch.Generator().manual_seed(seed)
        g = torch.randn(N_IN, N_OUT, generator=gen, dtype=torch.float64)
        r = torch.empty(N_OUT, dtype=torch.float64).exponential_(generator=gen).sqrt()  # |R|^2 ~ Exp(1)
        draws.append(figures(g * r))
    return tuple(sum(d[i] for d in draws) / len(draws) for i in (0, 1))


def test_the_anchor_maps_spectrum_is_a_column_rescaled_gaussians(rescaled_gaussian):
    proj = make_projector("optical", N_IN, N_OUT, seed=0)  # the default device
    assert type(proj.passes[0].transmission).__name__ == "ScreenTransmission"  # the structured path
    condition, spread = figures(proj.effective_map().double())
    reference_condition, reference_spread = rescaled_gaussian
    assert condition == pytest.approx(reference_condition, rel=0.08)  # ~2.8-2.9
    assert condition > 1.25 * MARCHENKO_PASTUR  # wider than a Gaussian matrix's
    assert spread / gaussian_spread(N_IN, N_OUT) == pytest.approx(math.sqrt(2), rel=0.05)
    assert spread == pytest.approx(reference_spread, rel=0.05)


def test_the_external_arm_keeps_the_gaussian_figures():
    proj = make_projector("optical", N_IN, N_OUT, seed=0, config=OPUConfig(reference="external-arm"))
    condition, spread = figures(proj.effective_map().double())
    assert condition == pytest.approx(MARCHENKO_PASTUR, rel=0.05)
    assert spread / gaussian_spread(N_IN, N_OUT) == pytest.approx(1.0, rel=0.05)
