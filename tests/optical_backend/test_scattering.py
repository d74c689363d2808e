"""The fast screen model computes the matrix its definition describes: ``T = Theta P_out F G F
Phi_{L-2} ... F Phi_1 F S P_in`` on M = K N modes, here built step by step with plain M-point
unitary DFTs (no packing of real inputs, no decimation), for several screen counts and oversamplings."""

from __future__ import annotations

import math

import pytest
import torch

from optical_backend import scattering
from optical_backend.scattering import ScreenTransmission


def reference(model: ScreenTransmission, patterns: torch.Tensor) -> torch.Tensor:
    """F Phi ... F S P_in, then G, then F, then every K-th mode, the exit phases and the gain sqrt(2 M / n_out)."""
    k, m = model.modes_per_pixel, model.size
    field = torch.zeros(patterns.shape[0], m, dtype=torch.complex128)  # (R, M)
    field[:, : k * model.n_in : k] = (patterns * model.signs).double()
    field = torch.fft.fft(field, norm="ortho")  # F
    for phase in model.phases[:-1]:
        field = torch.fft.fft(field * phase.to(torch.complex128), norm="ortho")  # Phi_l, F
    field = field * model.phases[-1].to(torch.complex128)  # the last phase screen
    field = torch.fft.fft(field, norm="ortho") * model.loss.to(torch.complex128)  # F, then G
    field = torch.fft.fft(field, norm="ortho")[:, ::k][:, : model.n_out]  # F, P_out
    return field * model.exit.to(torch.complex128) * math.sqrt(2 * m / model.n_out)


@pytest.mark.parametrize(
    "n_in,n_out,screens,oversampling",
    [(300, 1000, 3, 2), (1000, 300, 3, 1), (200, 64, 4, 4), (64, 64, 5, 8), (7, 5, 3, 2)],
)
def test_fast_fields_equal_the_definition(n_in, n_out, screens, oversampling):
    model = ScreenTransmission(
        n_in, n_out, seed=11, device=torch.device("cpu"), screens=screens, oversampling=oversampling
    )
    patterns = (torch.rand(5, n_in, generator=torch.Generator().manual_seed(0)) < 0.4).float()  # (5, n_in): odd count
    expected = reference(model, patterns)
    got = model.fields(patterns).to(torch.complex128)
    assert float((got - expected).abs().max() / expected.abs().max()) < 1e-5


def test_patterns_simulated_block_by_block_equal_all_at_once(monkeypatch):
    model = ScreenTransmission(300, 500, seed=2, device=torch.device("cpu"))
    patterns = (torch.rand(7, 300, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    whole = model.fields(patterns)
    monkeypatch.setattr(scattering, "FIELD_BLOCK", 2 * model.size)  # two patterns per block
    blocks = model.fields(patterns)
    assert torch.allclose(blocks, whole, rtol=0, atol=1e-6 * float(whole.abs().max()))


@pytest.mark.parametrize("reference", ["anchor", "external-arm"])
def test_ideal_projection_is_the_effective_map_applied_without_the_matrix(reference):
    """Tiled (8 passes) and single-pass devices, screen model and materialised medium."""
    from optical_backend import OPUConfig, make_projector

    for n_in, n_out, config in (
        (3000, 2000, OPUConfig(reference=reference)),
        (5000, 300, OPUConfig(reference=reference, dmd_shape=(40, 50), camera_shape=(10, 20))),
    ):
        proj = make_projector("optical", n_in, n_out, seed=1, config=config)
        x = torch.randn(3, n_in, generator=torch.Generator().manual_seed(4))
        expected = x @ proj.effective_map()
        assert float((proj.ideal_projection(x) - expected).abs().max() / expected.abs().max()) < 1e-5
        assert proj.stats.frames == 0  # nothing shown: the ideal map is not a measurement
