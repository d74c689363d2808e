"""EDM: preconditioning, training loss and Heun sampler (Karras et al. 2022, arXiv:2206.00364).

Notation follows the paper. A network ``F`` is wrapped into a denoiser

    D(x; sigma) = c_skip(sigma) * x + c_out(sigma) * F(c_in(sigma) * x; c_noise(sigma))   (eq. 7)

with the coefficients of Table 1 (column "ours"), chosen so that the network's input and its
effective training target both have unit variance when the data have standard deviation
``sigma_data``. Training draws ``ln(sigma) ~ N(P_mean, P_std^2)`` and minimises
``lambda(sigma) * ||D(y + n; sigma) - y||^2`` with ``lambda = 1 / c_out^2`` (eq. 8, Sec. 5).
Sampling integrates the probability-flow ODE ``dx/dsigma = (x - D(x; sigma)) / sigma`` with
Heun's 2nd-order method on the schedule of eq. 5 (Algorithm 1), optionally with the stochastic
"churn" of Algorithm 2.

Shapes: ``x`` is any (B, ...) tensor; ``sigma`` is (B,) or a scalar, broadcast over the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


def _expand(sigma: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """(B,) or scalar -> (B, 1, 1, ...) broadcastable against ``like``."""
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device)
    if sigma.ndim == 0:
        sigma = sigma.expand(like.shape[0])
    return sigma.reshape(-1, *([1] * (like.ndim - 1)))


def c_skip(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    return sigma_data**2 / (sigma**2 + sigma_data**2)


def c_out(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    return sigma * sigma_data / torch.sqrt(sigma**2 + sigma_data**2)


def c_in(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    return 1.0 / torch.sqrt(sigma**2 + sigma_data**2)


def c_noise(sigma: torch.Tensor) -> torch.Tensor:
    return torch.log(sigma) / 4.0


def loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2 = 1 / c_out^2."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


class EDMPrecond(nn.Module):
    """Wrap a raw network ``F`` into the preconditioned denoiser ``D(x; sigma, cond)`` (eq. 7).

    ``forward(x, sigma, cond)``: ``x`` noisy sample (B, C, H, W), ``sigma`` (B,) noise levels,
    ``cond`` conditioning fields handed to ``F`` unchanged (B, K, H, W) -> denoised (B, C, H, W).
    """

    def __init__(self, net: nn.Module, *, sigma_data: float = 0.5):
        super().__init__()
        if sigma_data <= 0:
            raise ValueError(f"sigma_data must be positive, got {sigma_data}")
        self.net = net
        self.sigma_data = float(sigma_data)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        s = _expand(sigma, x)  # (B, 1, 1, 1)
        f = self.net(c_in(s, self.sigma_data) * x, c_noise(s.reshape(-1)), cond)  # (B, C, H, W)
        return c_skip(s, self.sigma_data) * x + c_out(s, self.sigma_data) * f.to(x.dtype)  # (B, C, H, W)


@dataclass(frozen=True)
class EDMLossConfig:
    """Noise-level distribution of the training loss (paper Table 1: P_mean=-1.2, P_std=1.2)."""

    p_mean: float = -1.2  # mean of ln(sigma)
    p_std: float = 1.2  # standard deviation of ln(sigma)


def sample_sigma(
    batch: int, config: EDMLossConfig, *, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """ln(sigma) ~ N(p_mean, p_std^2) -> (B,)."""
    normal = torch.randn(batch, generator=generator, device=device)
    return torch.exp(config.p_mean + config.p_std * normal)  # (B,)


def edm_loss(
    denoiser: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    y: torch.Tensor,
    cond: torch.Tensor | None = None,
    *,
    sigma_data: float = 0.5,
    config: EDMLossConfig = EDMLossConfig(),
    generator: torch.Generator | None = None,
    sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scalar EDM loss ``E[lambda(sigma) ||D(y + sigma*eps; sigma) - y||^2]`` (mean over elements).

    ``y`` clean data (B, C, H, W) with std ~ ``sigma_data``; ``sigma`` (B,) overrides the draw.
    """
    if sigma is None:
        sigma = sample_sigma(y.shape[0], config, generator=generator, device=y.device)  # (B,)
    s = _expand(sigma, y)  # (B, 1, 1, 1)
    noise = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype) * s  # (B, C, H, W)
    denoised = denoiser(y + noise, sigma, cond)  # (B, C, H, W)
    return (loss_weight(s, sigma_data) * (denoised - y) ** 2).mean()


@dataclass(frozen=True)
class SamplerConfig:
    """Heun sampler settings (paper Table 1 / Algorithm 2; churn 0 gives the deterministic Algorithm 1)."""

    steps: int = 18  # number of noise levels N (the ODE takes 2N - 1 network evaluations)
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    s_churn: float = 0.0  # total stochasticity; 0 = deterministic ODE
    s_tmin: float = 0.0  # churn only where s_tmin <= sigma <= s_tmax
    s_tmax: float = float("inf")
    s_noise: float = 1.0  # std of the churn noise, slightly > 1 counters over-denoising

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"sampler steps must be >= 1, got {self.steps}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")
        if self.rho <= 0 or self.s_churn < 0 or self.s_noise <= 0:
            raise ValueError("rho and s_noise must be positive and s_churn non-negative")


def sigma_steps(config: SamplerConfig, *, device=None, dtype=torch.float64) -> torch.Tensor:
    """Noise levels of eq. 5 with a final 0: (N + 1,), decreasing from sigma_max to 0."""
    n = config.steps
    i = torch.arange(n, dtype=dtype, device=device)
    lo, hi = config.sigma_min ** (1 / config.rho), config.sigma_max ** (1 / config.rho)
    ramp = i / max(n - 1, 1)
    sigmas = (hi + ramp * (lo - hi)) ** config.rho  # (N,)
    return torch.cat([sigmas, sigmas.new_zeros(1)])  # (N + 1,)


@torch.no_grad()
def heun_sample(
    denoiser: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    shape: tuple[int, ...],
    cond: torch.Tensor | None = None,
    *,
    config: SamplerConfig = SamplerConfig(),
    generator: torch.Generator | None = None,
    device=None,
    dtype=torch.float32,
    latents: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw samples of ``shape`` (B, C, H, W) by Algorithm 2 (Algorithm 1 when ``s_churn == 0``).

    ``denoiser(x, sigma, cond)`` takes ``sigma`` as (B,). ``latents`` (unit normal, ``shape``)
    replaces the initial draw, which lets callers fix the noise of every member.
    """
    t_steps = sigma_steps(config, device=device)  # (N + 1,) float64
    if latents is None:
        latents = torch.randn(shape, generator=generator, device=device, dtype=torch.float64)
    x_next = latents.to(torch.float64) * t_steps[0]  # (B, C, H, W), x_0 ~ N(0, sigma_max^2 I)
    batch = shape[0]
    gamma_max = min(config.s_churn / config.steps, 2**0.5 - 1)

    def d(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = t.to(dtype).expand(batch)  # (B,)
        return denoiser(x.to(dtype), sigma, cond).to(torch.float64)  # (B, C, H, W)

    for i in range(config.steps):
        t_cur, t_next = t_steps[i], t_steps[i + 1]
        x_cur = x_next
        # Churn: raise the noise level from t_cur to t_hat by adding fresh noise (Alg. 2, lines 4-6).
        gamma = gamma_max if config.s_tmin <= float(t_cur) <= config.s_tmax else 0.0
        t_hat = t_cur + gamma * t_cur
        if gamma > 0:
            eps = torch.randn(shape, generator=generator, device=device, dtype=torch.float64)
            x_cur = x_cur + (t_hat**2 - t_cur**2).sqrt() * config.s_noise * eps
        # Euler step (line 7-8).
        d_cur = (x_cur - d(x_cur, t_hat)) / t_hat  # (B, C, H, W)
        x_next = x_cur + (t_next - t_hat) * d_cur
        # Heun's 2nd-order correction, except for the final step to sigma = 0 (lines 9-11).
        if i < config.steps - 1:
            d_prime = (x_next - d(x_next, t_next)) / t_next
            x_next = x_cur + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next.to(dtype)
