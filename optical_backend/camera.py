"""Camera and holographic read-out: from a complex speckle field to an estimate of its real part.

A camera records intensity only. A reference beam of amplitude ``r`` (real, uniform) interferes
with the speckle field ``E``; two frames with the reference phase stepped by pi give

    I(0) - I(pi) = |E + r|^2 - |E - r|^2 = 4 r Re(E),

so ``Re(E)`` — a linear function of the DMD pattern — is recovered exactly from two intensity
frames (two-step phase-shifting holography). Each frame goes through the sensor model:

- auto-exposure: the mean frame intensity ``sigma^2 + r^2`` (``sigma^2`` the mean speckle
  intensity of the pattern, known from the normalisation of T) sits at ``exposure * full_well``;
- photon shot noise (Gaussian approximation, variance = mean electrons; exact in distribution
  for the large counts of a well-exposed frame) and read noise, added as one Gaussian;
- saturation at the full well; an ADC of ``adc_bits`` bits spanning the full well.
"""

from __future__ import annotations

import torch

from optical_backend.opu import OPUConfig

CHUNK = 1 << 18  # pixels processed at a time: keeps the per-frame temporaries in cache


class HolographicCamera:
    """Two-frame phase-shifting read-out with a configurable sensor."""

    def __init__(self, config: OPUConfig, generator: torch.Generator):
        self.config = config
        self.generator = generator
        self.noisy = config.shot_noise or config.read_noise_e > 0

    def _frame(self, electrons: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One exposure of mean ``electrons`` -> recorded electrons (in place on ``electrons``)."""
        cfg = self.config
        if self.noisy:
            var = electrons.clamp_min(0) if cfg.shot_noise else torch.zeros_like(electrons)
            std = var.add_(cfg.read_noise_e**2).sqrt_()
            noise.normal_(generator=self.generator)
            electrons.addcmul_(std, noise)
        if cfg.saturation:
            electrons.clamp_(0.0, cfg.full_well_e)
        if cfg.adc_bits is not None:
            levels = 2**cfg.adc_bits - 1
            step = cfg.full_well_e / levels  # electrons per digital number
            electrons.div_(step).round_().clamp_(0, levels).mul_(step)
        return electrons

    def read_real_part(self, field: torch.Tensor, speckle_intensity: torch.Tensor) -> torch.Tensor:
        """Estimate ``Re(field)`` ``(R, n)`` from two frames per row; ``speckle_intensity`` ``(R,)``."""
        cfg = self.config
        valid = speckle_intensity > 0  # (R,): blank patterns give no light and are not read
        sigma2 = torch.where(valid, speckle_intensity, torch.ones_like(speckle_intensity))  # (R,)
        ref = torch.sqrt(cfg.reference_ratio * sigma2)[:, None]  # (R, 1) reference amplitude
        gain = (cfg.exposure * cfg.full_well_e / (sigma2 * (1 + cfg.reference_ratio)))[:, None]  # (R, 1) e- per unit
        common = torch.view_as_real(field).square().sum(-1).add_(ref.square()).mul_(gain)  # (R, n) mean e-, both frames
        cross = field.real * (2 * ref * gain)  # (R, n): the interference term, +- in the two frames
        flat_common, flat_cross = common.view(-1), cross.view(-1)
        diff = torch.empty_like(flat_common)
        noise = torch.empty(min(CHUNK, flat_common.numel()), device=field.device)
        for start in range(0, flat_common.numel(), CHUNK):
            a = flat_common[start : start + CHUNK]
            b = flat_cross[start : start + CHUNK]
            n = noise[: a.numel()]
            plus = self._frame(a + b, n)
            minus = self._frame(a.sub_(b), n)
            torch.sub(plus, minus, out=diff[start : start + CHUNK])
        real = diff.view_as(common) / (4 * ref * gain)  # (R, n)
        return real * valid[:, None]
