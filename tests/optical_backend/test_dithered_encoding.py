"""The dithered (stochastic) ternary encoding: unbiased (with the residual pair), binary, deterministic by seed."""

from __future__ import annotations

import json

import pytest
import torch

from optical_backend import OpticalConfigError, OPUConfig, make_projector
from optical_backend.encoding import dithered, ternary

DRAWS = 20_000


def _decoded(patterns: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return torch.einsum("np,npi->ni", weights, patterns)  # (N, n)


def _mean_of_draws(x: torch.Tensor, scale: float | None, residual: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean decoded vector over DRAWS independent encodings of ``x`` ``(n,)``, and the scale s used."""
    patterns, weights = dithered(x.expand(DRAWS, -1), scale, torch.Generator().manual_seed(5), residual=residual)
    return _decoded(patterns, weights).mean(dim=0), weights[0, 0]


def test_dithered_frames_are_binary_and_disjoint():
    x = torch.randn(4, 300, generator=torch.Generator().manual_seed(1))
    x[0] = 0.0
    patterns, weights = dithered(x, None, torch.Generator().manual_seed(0))
    assert patterns.shape == (4, 2, 300) and weights.shape == (4, 2)
    assert set(patterns.unique().tolist()) <= {0.0, 1.0}
    assert not bool((patterns[:, 0] * patterns[:, 1]).any())
    assert torch.equal(_decoded(patterns, weights)[0], torch.zeros(300))  # a blank vector stays blank
    shown = _decoded(patterns, weights)[1:]
    assert bool(((shown == 0) | (shown.sign() == x[1:].sign())).all())  # never the wrong sign


def test_dithered_is_unbiased_where_ternary_is_not():
    """Mean over 20,000 draws is within 0.03 s of x at every entry (the standard error is at most
    s / sqrt(20,000) = 0.007 s); the deterministic ternarisation misses by more than that."""
    x = torch.randn(64, generator=torch.Generator().manual_seed(3))
    mean, s = _mean_of_draws(x, None)
    assert float(s) == pytest.approx(float(x.abs().max()))
    assert float((mean - x).abs().max()) < 0.03 * float(s)
    patterns, weights = ternary(x[None], 0.7)
    assert float((_decoded(patterns, weights)[0] - x).abs().max()) > 0.1 * float(s)


def test_residual_pair_makes_the_scaled_dither_unbiased_everywhere():
    x = torch.randn(64, generator=torch.Generator().manual_seed(4))
    x[7] = 9.0  # one entry far above 2 mean|x|
    mean, s = _mean_of_draws(x, 2.0, residual=True)
    assert float(s) == pytest.approx(2.0 * float(x.abs().mean()))
    assert float((mean - x).abs().max()) < 0.03 * float(x.abs().max())
    assert float(mean[7]) == pytest.approx(9.0, abs=1e-4)  # the largest entry is shown exactly every time
    patterns, weights = dithered(x[None], 2.0, torch.Generator().manual_seed(0))
    assert patterns.shape == (1, 4, 64) and set(patterns.unique().tolist()) <= {0.0, 1.0}
    small = torch.full((1, 8), 0.5)  # nothing above 2 mean|x|: the residual pair is blank, not shown
    patterns, weights = dithered(small, 2.0, torch.Generator().manual_seed(0))
    assert not bool(patterns[:, 2:].any()) and torch.equal(weights[:, 2:], torch.zeros(1, 2))


def test_scaled_dither_without_residual_is_unbiased_only_below_the_clip():
    x = torch.randn(64, generator=torch.Generator().manual_seed(4))
    mean, s = _mean_of_draws(x, 1.5)
    assert float(s) == pytest.approx(1.5 * float(x.abs().mean()))
    below = x.abs() <= s
    assert 0 < int(below.sum()) < 64
    assert float((mean - x)[below].abs().max()) < 0.03 * float(s)
    assert torch.allclose(mean[~below], s * x[~below].sign(), atol=1e-5)  # clipped: shown every time


def test_optical_projection_with_dither_is_unbiased_and_deterministic_by_seed():
    cfg = OPUConfig.ideal(encoding="dithered", dither_scale=None)
    x = torch.randn(1, 40, generator=torch.Generator().manual_seed(6))
    proj = make_projector("optical", 40, 50, seed=9, config=cfg)
    ys = proj(x.expand(4000, -1))  # (4000, 50): 4000 independent dithers of the same vector
    exact = x @ proj.effective_map()  # (1, 50)
    assert float((ys.mean(dim=0) - exact[0]).norm() / exact.norm()) < 0.05
    assert float((ys[0] - exact[0]).norm() / exact.norm()) > 0.05  # one draw alone is noisy
    again = make_projector("optical", 40, 50, seed=9, config=cfg)
    assert torch.equal(again(x.expand(4000, -1)), ys)
    other = make_projector("optical", 40, 50, seed=10, config=cfg)
    assert not torch.equal(other(x), make_projector("optical", 40, 50, seed=9, config=cfg)(x))
    shown = proj.stats.frames - cfg.calibration_frames_per_pass  # calibration: once per run
    assert 0 < shown <= 4000 * 4  # at most 2 binary patterns x 2 frames per vector (max|x| scale: no residual)


def test_dither_config_round_trip_and_validation():
    cfg = OPUConfig(encoding="dithered", dither_scale=2.0)
    assert OPUConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.frames_per_vector == 8 and cfg.replace(clip_residual=False).frames_per_vector == 4
    assert cfg.replace(dither_scale=None).frames_per_vector == 4
    for bad in (0.0, -1.0, float("inf"), "big"):
        with pytest.raises(OpticalConfigError, match="OPUConfig.dither_scale"):
            OPUConfig(dither_scale=bad)
