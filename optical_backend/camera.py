"""Camera and linear read-out: from complex speckle fields to a real linear projection.

A camera records intensity only; a linear map is recovered by interference with a reference:

- ``anchor`` (the OPU's own scheme, [LO] in ``optical_backend.opu``): a fixed random pattern
  ``a`` on spare DMD mirrors is shown together with the data pattern ``b``. With ``E = T b`` and
  the anchor's speckle ``A = T a``, the frames ``|E + A|^2`` and ``|E|^2`` and the anchor's own
  intensity ``|A|^2`` (measured once per run, averaged over calibration frames) give

      |E + A|^2 - |E|^2 - |A|^2 = 2 Re(E conj A) = 2 |A_k| Re(E_k exp(-i arg A_k)),

  a real linear function of ``b`` whose output k is scaled by the anchor's speckle amplitude
  ``|A_k|`` (Rayleigh distributed: dark anchor pixels give weak, noisy outputs). Dividing by the
  rms of ``|A|`` keeps entries of variance 1/n_out on average.
- ``external-arm``: a flat reference beam ``r`` stepped by exactly 0 and pi (an idealised
  external interferometer, not the OPU): ``|E + r|^2 - |E - r|^2 = 4 r Re(E)``; its power and the
  exposure follow each pattern's known mean intensity.

Every frame goes through the sensor: laser power fluctuating from frame to frame
(``laser_power_rms``), photon shot noise (Gaussian approximation, variance = mean electrons) and
read noise, the black level (an offset before the ADC, measured in dark calibration frames and
subtracted), saturation at the full well and an ADC of ``adc_bits`` bits. With the anchor the
exposure is set once per group of patterns read together (a simulation chunk: one vector's
patterns at the native scale, more for small sizes; the same groups whatever the thread count),
so that the brightest pattern of the group sits at ``exposure`` of the full well: the host knows
the patterns before it shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from optical_backend.opu import OPUConfig

CHUNK = 1 << 18  # pixels processed at a time: keeps the per-frame temporaries in cache


class HolographicCamera:
    """The sensor model and the two read-out schemes. Frames are simulated in ADC units (digital
    numbers; electrons without an ADC) so that saturation and quantisation are one pass."""

    def __init__(self, config: OPUConfig):
        self.config = config
        self.noisy = config.shot_noise or config.read_noise_e > 0
        self.levels = 2**config.adc_bits - 1 if config.adc_bits is not None else None
        self.unit = config.full_well_e / self.levels if self.levels else 1.0  # electrons per unit
        self.black = config.black_level_e / self.unit  # black level, units
        # std in units = sqrt(mean + offset) * noise_scale (shot) or noise_scale (read noise only)
        self.offset = config.read_noise_e**2 / self.unit
        self.noise_scale = self.unit**-0.5 if config.shot_noise else config.read_noise_e / self.unit
        self._anchor_cache: dict[int, _AnchorTerms] = {}

    def _expose(self, mean: torch.Tensor, noise: torch.Tensor | None, work: torch.Tensor) -> torch.Tensor:
        """One exposure of ``mean`` (units, black level not included) -> recorded units, in place."""
        cfg = self.config
        if noise is not None:
            if cfg.shot_noise:
                std = torch.add(mean, self.offset, out=work).clamp_min_(0).sqrt_()
                mean.addcmul_(std, noise, value=self.noise_scale)
            else:
                mean.add_(noise, alpha=self.noise_scale)
        if self.black:
            mean.add_(self.black)
        if self.levels is not None:
            mean.round_().clamp_(0, self.levels)
        elif cfg.saturation:
            mean.clamp_(0.0, cfg.full_well_e)
        return mean

    def _frame(self, electrons: torch.Tensor, noise: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One exposure of mean ``electrons`` -> recorded electrons, black level included (in place)."""
        if self.noisy:
            noise.normal_(generator=generator)
        units = electrons.div_(self.unit)
        return self._expose(units, noise if self.noisy else None, torch.empty_like(units)).mul_(self.unit)

    def _laser(self, rows: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Relative laser power of two frames per row ``(R, 2)``."""
        power = torch.ones(rows, 2, device=device)
        if self.config.laser_power_rms > 0:
            power.add_(torch.randn(rows, 2, generator=generator, device=device), alpha=self.config.laser_power_rms)
        return power

    def average_frames(self, intensity: torch.Tensor, frames: int, generator: torch.Generator) -> torch.Tensor:
        """Mean of ``frames`` exposures of ``intensity`` ``(n,)`` (electrons), black level included.

        Drawn in one pass from the law of the mean (laser power, shot and read noise and the ADC's
        rounding step averaged over the frames; valid while the per-frame noise spans an ADC step
        or more, as it does at the default exposure): thousands of calibration frames cost one draw.
        """
        cfg = self.config
        power = (
            1.0
            + cfg.laser_power_rms * float(torch.randn(1, generator=generator, device=intensity.device)) / frames**0.5
        )
        mean = intensity * power  # (n,) electrons
        variance = (mean.clamp_min(0) if cfg.shot_noise else torch.zeros_like(mean)) + cfg.read_noise_e**2
        if self.levels is not None:
            variance = variance + self.unit**2 / 12
        draws = torch.randn(mean.shape, generator=generator, device=mean.device)
        average = mean.add_(variance.div_(frames).sqrt_().mul_(draws)).add_(cfg.black_level_e)
        if cfg.saturation or self.levels is not None:
            average.clamp_(0.0, cfg.full_well_e)
        return average

    def _chunks(self, field: torch.Tensor, generator: torch.Generator, planar: bool = False) -> Iterator[tuple]:
        """Blocks of about ``CHUNK`` pixels of ``field`` ``(R, n)``, in a fixed order: yields
        ``(rows, cols, re, im, (b0, b1, b2, b3), noise0, noise1)`` with four scratch buffers and both
        frames' sensor draws (None without noise), so the same generator state repeats the frames.
        ``planar``: ``re`` and ``im`` are contiguous copies (strided views otherwise)."""
        rows, n = field.shape
        parts = torch.view_as_real(field)  # (R, n, 2)
        cols = min(n, CHUNK)
        block = min(rows, max(1, CHUNK // cols))  # rows per chunk
        buffers = torch.empty(6 if planar else 4, block * cols, device=field.device)
        noise = torch.empty(2 * block * cols, device=field.device) if self.noisy else None
        for r0 in range(0, rows, block):
            r1 = min(rows, r0 + block)
            for c0 in range(0, n, cols):
                c1 = min(n, c0 + cols)
                shape = (r1 - r0, c1 - c0)
                size = shape[0] * shape[1]
                n0 = n1 = None
                if noise is not None:
                    draws = noise[: 2 * size].normal_(generator=generator)  # contiguous: the fast sampler
                    n0, n1 = draws[:size].view(shape), draws[size:].view(shape)
                views = tuple(b[:size].view(shape) for b in buffers)
                re, im = parts[r0:r1, c0:c1, 0], parts[r0:r1, c0:c1, 1]
                if planar:
                    re, im = views[4].copy_(re), views[5].copy_(im)
                yield slice(r0, r1), slice(c0, c1), re, im, views[:4], n0, n1

    # -- external reference arm -------------------------------------------------------------------
    def read_real_part(
        self, field: torch.Tensor, speckle_intensity: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Estimate ``Re(field)`` ``(R, n)`` from two phase-stepped frames per row (external arm);
        ``speckle_intensity`` ``(R,)`` sets each row's reference power and exposure."""
        cfg = self.config
        valid = speckle_intensity > 0  # (R,): blank patterns give no light and are not read
        sigma2 = torch.where(valid, speckle_intensity, torch.ones_like(speckle_intensity))  # (R,)
        ref = torch.sqrt(cfg.reference_ratio * sigma2)[:, None]  # (R, 1) reference amplitude
        gain = (cfg.exposure * cfg.full_well_e / (sigma2 * (1 + cfg.reference_ratio)))[
            :, None
        ] / self.unit  # (R, 1) units per intensity
        ref2, cross_gain = ref.square(), 2 * ref * gain  # (R, 1)
        scale = valid[:, None] / (2 * cross_gain)  # (R, 1): (I(0) - I(pi)) / (4 r gain)
        power = self._laser(field.shape[0], generator, field.device)  # (R, 2)
        out = torch.empty(field.shape, device=field.device)
        for rows, cols, re, im, (common, cross, minus, work), n0, n1 in self._chunks(field, generator):
            torch.addcmul(ref2[rows], im, im, out=common).addcmul_(re, re).mul_(gain[rows])  # gain (|E|^2 + r^2), units
            torch.mul(re, cross_gain[rows], out=cross)  # 2 r gain Re(E)
            torch.sub(common, cross, out=minus).mul_(power[rows, 1:])
            plus = common.add_(cross).mul_(power[rows, :1])
            self._expose(plus, n0, work)
            self._expose(minus, n1, work)
            torch.sub(plus, minus, out=out[rows, cols]).mul_(scale[rows])
        return out

    # -- anchor on the DMD --------------------------------------------------------------------------
    def read_with_anchors(
        self,
        field: torch.Tensor,
        anchors: torch.Tensor,
        speckle_intensity: torch.Tensor,
        measured: torch.Tensor,
        reference_rms: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Estimate ``Re(field conj(A1 - A2)) / reference_rms`` ``(R, n)`` from the frames
        ``|E + A1|^2`` and ``|E + A2|^2`` of every row.

        ``anchors`` ``(2, n)`` complex: the speckle of the two anchor halves; ``measured`` ``(n,)``:
        ``|A1|^2 - |A2|^2`` as measured in calibration (intensity units); ``speckle_intensity``
        ``(R,)``: mean data intensity of each pattern (known from its mirrors), which with the anchors
        sets the call's exposure. Both frames sit on an anchor's pedestal, so the shot noise keeps
        the ADC's rounding nearly unbiased even for a pattern of one mirror.
        """
        valid = speckle_intensity > 0  # (R,)
        terms = self._anchor_terms(anchors)
        gain = (
            self.config.exposure
            * self.config.full_well_e
            / (float(speckle_intensity.max()) + terms.pedestal)
            / self.unit
        )  # units per intensity
        scales = self._laser(field.shape[0], generator, field.device).mul_(
            gain
        )  # (R, 2): gain x laser power of each frame
        known = measured * gain  # (n,)
        scale = valid[:, None] / (2 * gain * reference_rms)  # (R, 1)
        out = torch.empty(field.shape, device=field.device)
        for rows, cols, re, im, (speckle, first, second, work), n0, n1 in self._chunks(field, generator, planar=True):
            torch.mul(im, im, out=speckle).addcmul_(re, re)  # |E|^2
            for i, frame in enumerate((first, second)):
                # gain |E + A_i|^2 = gain (|E|^2 + |A_i|^2 + 2 Re(E conj A_i)), times the frame's laser power
                torch.mul(re, terms.re2[i, cols], out=frame).addcmul_(im, terms.im2[i, cols])
                frame.add_(speckle).add_(terms.intensity[i, cols]).mul_(scales[rows, i : i + 1])
            self._expose(first, n0, work)
            self._expose(second, n1, work)
            torch.sub(first, second, out=out[rows, cols]).sub_(known[cols]).mul_(scale[rows])
        return out

    def _anchor_terms(self, anchors: torch.Tensor) -> "_AnchorTerms":
        """``2 Re A``, ``2 Im A``, ``|A|^2`` ``(2, n)`` and the brightest half's mean intensity,
        computed once per anchor pair (a pass shows the same anchors in every call)."""
        cached = self._anchor_cache.get(id(anchors))
        if cached is None or cached.anchors is not anchors:
            intensity = anchors.abs().square()  # (2, n)
            cached = _AnchorTerms(
                anchors, 2 * anchors.real, 2 * anchors.imag, intensity, float(intensity.mean(dim=1).max())
            )
            self._anchor_cache[id(anchors)] = cached
        return cached


@dataclass(frozen=True)
class _AnchorTerms:
    anchors: torch.Tensor  # (2, n) complex: kept so that a reused id is never mistaken for it
    re2: torch.Tensor  # (2, n) 2 Re A_i
    im2: torch.Tensor  # (2, n) 2 Im A_i
    intensity: torch.Tensor  # (2, n) |A_i|^2
    pedestal: float  # max_i mean |A_i|^2
