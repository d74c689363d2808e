"""The default encoding keeps the error DFA projects: the mean of many default projections of one
error vector equals its ideal projection, for every family of errors DFA meets (Gaussian,
heavy-tailed, classification, a trained transformer's per-sample and per-token errors), at a
frame cost that is counted. The previous default (clipping at 2 mean|x|, no residual pair) fails."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from optical_backend import OPUConfig, make_projector
from optical_backend.toy_models import TinyViT, teacher_regression

DRAWS, N_OUT = 4000, 256


def _vit_errors() -> tuple[torch.Tensor, torch.Tensor]:
    """d(loss)/d(output) of a TinyViT after 30 back-propagation steps: one sample's (128 entries) and one token's (8)."""
    torch.manual_seed(0)
    x, y = teacher_regression(64, kind="image")
    model = TinyViT(depth=2, dim=32, heads=4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    out = model(x).detach().requires_grad_(True)
    F.mse_loss(out, y).backward()
    error = out.grad  # (64, tokens, channels)
    return error[0].flatten(), error[0, 5]


def _families() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    n = 1024
    logits = 2 * torch.randn(n, generator=gen)
    onehot = torch.zeros(n)
    onehot[17] = 1.0
    per_sample, per_token = _vit_errors()
    return {
        "gaussian": torch.randn(n, generator=gen),
        "student-t(2)": torch.distributions.StudentT(2.0).sample((n,)),
        "softmax-minus-one-hot": torch.softmax(logits, 0) - onehot,
        "vit per-sample": per_sample,
        "vit per-token": per_token,
    }


FAMILIES = _families()


def _mean_projection(x: torch.Tensor, config: OPUConfig) -> tuple[float, float, float]:
    """(gain, relative error of the mean, frames per vector) of DRAWS default projections of ``x``."""
    proj = make_projector("optical", x.numel(), N_OUT, seed=3, config=config)
    ideal = (x @ proj.effective_map()).double()  # (n_out,)
    mean = proj(x.expand(DRAWS, -1).contiguous()).double().mean(dim=0)  # (n_out,)
    gain = float(mean @ ideal / (ideal @ ideal))
    frames = (proj.stats.frames - config.calibration_frames_per_pass) / DRAWS
    return gain, float((mean - ideal).norm() / ideal.norm()), frames


@pytest.mark.parametrize("family", list(FAMILIES))
def test_default_projection_is_unbiased(family):
    gain, error, frames = _mean_projection(FAMILIES[family], OPUConfig())
    print(f"{family}: gain {gain:.4f}, error of the mean {error:.4f}, {frames:.2f} frames per vector")
    assert gain == pytest.approx(1.0, abs=0.02)  # nothing of the error is lost on average
    assert error < 0.05  # the mean of 4000 draws: sampling noise ~0.01-0.02 plus the 8-bit camera's rounding
    assert frames <= 8  # two pairs at most: the residual pair only when something was clipped
    if family != "vit per-token":  # 8 entries: often nothing above 2 mean|x|
        assert frames > 6


@pytest.mark.parametrize("family,most", [("gaussian", 0.95), ("student-t(2)", 0.6), ("softmax-minus-one-hot", 0.2)])
def test_clipping_without_the_residual_loses_the_error(family, most):
    gain, _, frames = _mean_projection(FAMILIES[family], OPUConfig(clip_residual=False))
    print(f"{family} without the residual pair: gain {gain:.4f}")
    assert gain < most
    assert frames <= 4
