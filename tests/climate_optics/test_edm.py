"""EDM preconditioning, loss and Heun sampler (Karras et al. 2022)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from climate_optics.models import edm


class ConstNet(nn.Module):
    """F(x, c_noise, cond) = a fixed field, so D is easy to write by hand."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x, noise_label, cond):
        return torch.full_like(x, self.value)


@pytest.mark.parametrize("sigma_data", [0.5, 1.0, 2.3])
def test_preconditioning_gives_unit_variance_input_and_target(sigma_data):
    sigma = torch.logspace(-3, 2, 50, dtype=torch.float64)
    cin, cskip, cout = edm.c_in(sigma, sigma_data), edm.c_skip(sigma, sigma_data), edm.c_out(sigma, sigma_data)
    # Input y + n has variance sigma_data^2 + sigma^2; c_in scales it to 1.
    torch.testing.assert_close(cin**2 * (sigma_data**2 + sigma**2), torch.ones_like(sigma))
    # Effective target (y - c_skip (y + n)) / c_out has unit variance (paper eq. 8 and App. B.6).
    target_var = ((1 - cskip) ** 2 * sigma_data**2 + cskip**2 * sigma**2) / cout**2
    torch.testing.assert_close(target_var, torch.ones_like(sigma))
    # lambda(sigma) = 1 / c_out^2 makes the effective loss weight one.
    torch.testing.assert_close(edm.loss_weight(sigma, sigma_data) * cout**2, torch.ones_like(sigma))


def test_denoiser_limits():
    x = torch.randn(3, 2, 4, 5, dtype=torch.float64)
    denoiser = edm.EDMPrecond(ConstNet(7.0), sigma_data=0.5).double()
    tiny = torch.full((3,), 1e-9, dtype=torch.float64)
    # sigma -> 0: c_skip -> 1, c_out -> 0, so D(x; sigma) -> x whatever the network says.
    torch.testing.assert_close(denoiser(x, tiny), x, atol=1e-7, rtol=0)
    huge = torch.full((3,), 1e9, dtype=torch.float64)
    # sigma -> inf: c_skip -> 0, c_out -> sigma_data, so D -> sigma_data * F.
    torch.testing.assert_close(denoiser(x, huge), torch.full_like(x, 0.5 * 7.0), atol=1e-6, rtol=0)
    # In between: eq. 7 by hand.
    s = 0.8
    expected = 0.25 / (s**2 + 0.25) * x + s * 0.5 / math.sqrt(s**2 + 0.25) * 7.0
    torch.testing.assert_close(denoiser(x, torch.full((3,), s, dtype=torch.float64)), expected)


def test_loss_is_zero_for_the_ideal_denoiser_of_a_point_mass():
    y = torch.full((4, 1, 3, 3), 0.3)
    ideal = lambda x, sigma, cond: torch.full_like(x, 0.3)  # noqa: E731 - D = E[y | x] for a point mass
    assert edm.edm_loss(ideal, y) == 0
    identity = lambda x, sigma, cond: x  # noqa: E731
    sigma = torch.full((4,), 2.0)
    # D = x leaves the noise: lambda * sigma^2 = (sigma^2 + sd^2) / sd^2
    loss = edm.edm_loss(identity, y, sigma=sigma, generator=torch.Generator().manual_seed(0))
    assert loss == pytest.approx((4 + 0.25) / 0.25, rel=0.3)


def test_sigma_schedule_matches_eq5():
    cfg = edm.SamplerConfig(steps=5, sigma_min=0.01, sigma_max=10.0, rho=7.0)
    t = edm.sigma_steps(cfg)
    assert t.shape == (6,) and t[-1] == 0
    assert t[0].item() == pytest.approx(10.0) and t[-2].item() == pytest.approx(0.01)
    assert torch.all(t[1:] < t[:-1])
    mid = (10 ** (1 / 7) + 0.5 * (0.01 ** (1 / 7) - 10 ** (1 / 7))) ** 7
    assert t[2].item() == pytest.approx(mid)


@pytest.mark.parametrize("churn", [0.0, 10.0])
def test_heun_sampler_recovers_a_gaussian_target(churn, torch_single_thread):
    # Data ~ N(mu, s^2) per element: the exact denoiser is E[y | y + n] = (s^2 x + sigma^2 mu) / (s^2 + sigma^2).
    mu = torch.tensor([1.5, -2.0]).reshape(1, 2, 1, 1)
    s2 = torch.tensor([0.25, 2.0]).reshape(1, 2, 1, 1)

    def exact(x, sigma, cond):
        sg2 = sigma.reshape(-1, 1, 1, 1) ** 2
        return (s2 * x + sg2 * mu) / (s2 + sg2)

    # x_0 ~ N(0, sigma_max^2) ignores the data mean; the ODE carries that error as mu * s / sigma_max
    # (0.014 here). The Heun discretisation error in the variance falls from ~10% at 18 steps to ~1% at 64.
    cfg = edm.SamplerConfig(steps=64, sigma_max=200.0, s_churn=churn, s_tmin=0.05, s_tmax=50.0)
    samples = edm.heun_sample(exact, (4000, 2, 4, 4), config=cfg, generator=torch.Generator().manual_seed(1))
    mean = samples.mean(dim=(0, 2, 3))
    var = samples.var(dim=(0, 2, 3))
    torch.testing.assert_close(mean, mu.reshape(2), atol=0.04, rtol=0)
    torch.testing.assert_close(var, s2.reshape(2), rtol=0.05, atol=0)


def test_sampler_config_validates():
    with pytest.raises(ValueError, match="steps"):
        edm.SamplerConfig(steps=0)
    with pytest.raises(ValueError, match="sigma_min"):
        edm.SamplerConfig(sigma_min=5.0, sigma_max=1.0)
