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
    """Two-frame phase-shifting read-out with a configurable sensor.

    Frames are simulated in ADC units (digital numbers; electrons without an ADC) so that
    saturation and quantisation are one ``round``/``clamp`` pass, chunk by chunk in cache.
    """

    def __init__(self, config: OPUConfig):
        self.config = config
        self.noisy = config.shot_noise or config.read_noise_e > 0
        self.levels = 2**config.adc_bits - 1 if config.adc_bits is not None else None
        self.unit = config.full_well_e / self.levels if self.levels else 1.0  # electrons per unit
        # std in units = sqrt(mean + offset) * noise_scale (shot) or noise_scale (read noise only)
        self.offset = config.read_noise_e**2 / self.unit
        self.noise_scale = self.unit**-0.5 if config.shot_noise else config.read_noise_e / self.unit

    def _expose(self, mean: torch.Tensor, noise: torch.Tensor | None, work: torch.Tensor) -> torch.Tensor:
        """One exposure of ``mean`` (units) -> recorded units, in place on ``mean``; ``work`` scratch."""
        cfg = self.config
        if noise is not None:
            if cfg.shot_noise:
                std = torch.add(mean, self.offset, out=work).clamp_min_(0).sqrt_()
                mean.addcmul_(std, noise, value=self.noise_scale)
            else:
                mean.add_(noise, alpha=self.noise_scale)
        if self.levels is not None:
            mean.round_().clamp_(0, self.levels)
        elif cfg.saturation:
            mean.clamp_(0.0, cfg.full_well_e)
        return mean

    def _frame(self, electrons: torch.Tensor, noise: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One exposure of mean ``electrons`` -> recorded electrons (in place on ``electrons``)."""
        if self.noisy:
            noise.normal_(generator=generator)
        units = electrons.div_(self.unit)
        return self._expose(units, noise if self.noisy else None, torch.empty_like(units)).mul_(self.unit)

    def read_real_part(self, field: torch.Tensor, speckle_intensity: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Estimate ``Re(field)`` ``(R, n)`` from two frames per row; ``speckle_intensity`` ``(R,)``.

        The sensor noise is drawn chunk by chunk (in cache), in a fixed order from ``generator``,
        so the same generator state repeats the same frames.
        """
        cfg = self.config
        rows, n = field.shape
        valid = speckle_intensity > 0  # (R,): blank patterns give no light and are not read
        sigma2 = torch.where(valid, speckle_intensity, torch.ones_like(speckle_intensity))  # (R,)
        ref = torch.sqrt(cfg.reference_ratio * sigma2)[:, None]  # (R, 1) reference amplitude
        gain = (cfg.exposure * cfg.full_well_e / (sigma2 * (1 + cfg.reference_ratio)))[:, None] / self.unit  # (R, 1) units per intensity
        ref2 = ref.square()  # (R, 1)
        cross_gain = 2 * ref * gain  # (R, 1): the interference term, +- in the two frames
        scale = valid[:, None] / (2 * cross_gain)  # (R, 1): (I(0) - I(pi)) / (4 r gain)
        parts = torch.view_as_real(field)  # (R, n, 2)
        out = torch.empty(rows, n, device=field.device)
        cols = min(n, CHUNK)
        block = min(rows, max(1, CHUNK // cols))  # rows per chunk
        buffers = torch.empty(4, block * cols, device=field.device)
        noise = torch.empty(2 * block * cols, device=field.device) if self.noisy else None  # both frames' draws
        for r0 in range(0, rows, block):
            r1 = min(rows, r0 + block)
            for c0 in range(0, n, cols):
                c1 = min(n, c0 + cols)
                shape = (r1 - r0, c1 - c0)
                size = shape[0] * shape[1]
                common, cross, minus, work = (b[:size].view(shape) for b in buffers)
                re, im = parts[r0:r1, c0:c1, 0], parts[r0:r1, c0:c1, 1]  # (r, c)
                torch.addcmul(ref2[r0:r1], im, im, out=common).addcmul_(re, re).mul_(gain[r0:r1])  # mean units
                torch.mul(re, cross_gain[r0:r1], out=cross)
                torch.sub(common, cross, out=minus)
                plus = common.add_(cross)
                n_plus = n_minus = None
                if noise is not None:
                    draws = noise[: 2 * size].normal_(generator=generator)  # contiguous: the fast sampler
                    n_plus, n_minus = draws[:size].view(shape), draws[size:].view(shape)
                self._expose(plus, n_plus, work)
                self._expose(minus, n_minus, work)
                torch.sub(plus, minus, out=out[r0:r1, c0:c1]).mul_(scale[r0:r1])
        return out
