"""The screen model of the medium is a Gaussian random matrix in every statistic we test, at sizes
that use the structured (FFT) path: intensity law, circularity, no pattern correlations at any
shift, distinct moduli, Marchenko-Pastur singular values and the spread of |Ax|^2."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from optical_backend import OPUConfig, make_projector
from optical_backend.diagnostics import max_shift_correlation
from optical_backend.scattering import ScreenTransmission

N_IN, N_OUT = 1024, 8192  # the case: Marchenko-Pastur max/min singular value 2.09


@pytest.fixture(scope="module")
def medium() -> torch.Tensor:
    model = ScreenTransmission(N_IN, N_OUT, seed=7, device=torch.device("cpu"))
    return model.fields(torch.eye(N_IN)) * (N_OUT / 2) ** 0.5  # (n_in, n_out), unit mean intensity


def test_intensity_is_exponential_and_fields_circular(medium):
    intensity = medium.abs().square().flatten()
    sample = intensity[torch.randperm(intensity.numel(), generator=torch.Generator().manual_seed(0))[:50_000]]
    assert stats.kstest(sample.double().numpy(), "expon").pvalue > 1e-3
    assert float(intensity.mean()) == pytest.approx(1.0, rel=0.01)
    assert abs(complex(medium.square().mean())) < 0.01  # circular: E t^2 = 0
    assert float(medium.real.var()) == pytest.approx(float(medium.imag.var()), rel=0.02)


def test_no_correlation_between_pixel_patterns_at_any_shift(medium):
    intensity = medium.abs().square()  # (n_in, n_out)
    gen = torch.Generator().manual_seed(1)
    pairs = [(i, i + 1) for i in range(0, 64, 8)] + [
        tuple(torch.randperm(N_IN, generator=gen)[:2].tolist()) for _ in range(8)
    ]
    # one correlation coefficient has sd 1/sqrt(8192) = 0.011; the max over 8192 shifts ~ 4.3 sd
    worst = max(max_shift_correlation(intensity[i], intensity[j]) for i, j in pairs)
    assert worst < 0.07, worst
    # the statistic has power: a pattern shifted by one (the two-screen Hankel structure) scores 1
    assert max_shift_correlation(intensity[3], torch.roll(intensity[3], 1)) > 0.99


def test_moduli_are_distinct(medium):
    """As many distinct |t| as i.i.d. complex Gaussian entries of the same float32 precision give
    (two screens give at most M = 16384: |t_ki| a function of k + i)."""
    moduli = medium.abs().flatten()
    gen = torch.Generator().manual_seed(3)
    gaussian = (
        torch.complex(torch.randn(moduli.numel(), generator=gen), torch.randn(moduli.numel(), generator=gen)) / 2**0.5
    )
    assert torch.unique(moduli).numel() > 0.98 * torch.unique(gaussian.abs()).numel()


def test_real_part_follows_marchenko_pastur_and_the_gaussian_norm_spread(medium):
    real = medium.real.double() * 2**0.5  # entries of unit variance
    singular = torch.linalg.svdvals(real)
    ratio = math.sqrt(N_IN / N_OUT)
    mp = (1 + ratio) / (1 - ratio)  # 2.09
    assert float(singular.max() / singular.min()) == pytest.approx(mp, rel=0.10)
    x = torch.randn(3000, N_IN, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    gains = (x @ real).square().sum(dim=1) / x.square().sum(dim=1) / N_OUT  # (3000,) ~ chi2_{n_out} / n_out
    assert float(gains.mean()) == pytest.approx(1.0, rel=0.03)
    assert float(gains.std()) == pytest.approx(math.sqrt(2 / N_OUT), rel=0.30)


def test_a_whole_unitary_would_fail_the_spectrum_test():
    """Power: with one mode per pixel and phase-only screens (a lossless, fully observed medium) the
    spectrum is too narrow. The lossy screen is replaced by phases here to build that model."""
    model = ScreenTransmission(256, 2048, seed=3, device=torch.device("cpu"), oversampling=1)
    model._loss = model._loss / model._loss.abs()  # phase only: T is an isometry's sub-block
    real = model.fields(torch.eye(256)).real.double()
    singular = torch.linalg.svdvals(real)
    ratio = math.sqrt(256 / 2048)
    assert float(singular.max() / singular.min()) < 0.85 * (1 + ratio) / (1 - ratio)


def test_anchor_reference_scales_each_output_by_a_rayleigh_amplitude():
    """The anchor read-out's map is Re(T conj R) / rms|R|: per-output scales |R_k| / rms with
    E = 1 and a Rayleigh law; divided by them, the columns are the medium's Gaussian entries."""
    cfg = OPUConfig.ideal(dense_threshold=0)
    proj = make_projector("optical", 256, 4096, seed=5, config=cfg)
    w = proj.effective_map().double()  # (256, 4096)
    reference = (proj.passes[0].anchor[0] - proj.passes[0].anchor[1]).abs().double() / proj.passes[
        0
    ].anchor_rms  # (4096,)
    assert float(reference.square().mean()) == pytest.approx(1.0, rel=0.05)
    assert stats.kstest(reference.square().numpy(), "expon").pvalue > 1e-3  # |R|^2 exponential: Rayleigh amplitude
    column_scale = w.square().mean(dim=0).sqrt() * 4096**0.5  # (4096,)
    assert float(torch.corrcoef(torch.stack([column_scale, reference]))[0, 1]) > 0.9
    unscaled = w / reference * 4096**0.5  # unit-variance Gaussian entries
    assert stats.kstest(unscaled.flatten()[::17].numpy(), "norm").pvalue > 1e-3
