"""OPU configuration and its time/energy model.

The defaults describe a LightOn-class optical processing unit. Sources:

- [W24] Wang et al., "Streamlined optical training of large-scale modern deep learning
  architectures with direct feedback alignment", arXiv:2409.12965 (OPU: up to 1500 TeraOPS, 30 W).
- [L20] Launay et al., "Hardware beyond backpropagation: a photonic co-processor for direct
  feedback alignment", arXiv:2012.06373 (the same OPU family used for DFA: ternarised errors on a
  DMD, about 1.5 kHz frame rate, 30 W).
- [DS] The LightOn OPU datasheet figures quoted in this project's issue: DMD of 1140 x 912 binary
  micro-mirrors, camera up to 1920 x 1080 pixels at 8 bits.
- [CAM] Typical global-shutter CMOS machine-vision sensors (full well of order 10^4 electrons, read
  noise of a few electrons). An assumption of this project, not a LightOn figure.
- [ASSUMED] A modelling choice of this project, stated as such.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from optical_backend.errors import OpticalConfigError

ENCODINGS = ("dithered", "ternary", "bitplanes", "exact")


@dataclass(frozen=True)
class OPUConfig:
    """Everything the OPU simulator needs; validated on creation, JSON-able via ``to_dict``."""

    # -- device limits ---------------------------------------------------------------------
    dmd_shape: tuple[int, int] = (1140, 912)
    """Micro-mirrors (width, height) of the input DMD [DS]; n_in may not exceed their product."""
    camera_shape: tuple[int, int] = (1920, 1080)
    """Camera pixels (width, height) [DS]; n_out may not exceed their product."""

    # -- time and energy -------------------------------------------------------------------
    frame_rate_hz: float = 1500.0
    """Camera/DMD frames per second [L20]; each frame is one binary DMD pattern and one exposure."""
    power_w: float = 30.0
    """Electrical power of the whole unit while it runs [W24, L20]."""
    latency_s: float = 1e-3
    """Fixed cost per call (transfer of the inputs, DMD load, camera read-out) [ASSUMED]."""

    # -- input encoding on the binary DMD ---------------------------------------------------
    encoding: str = "dithered"
    """``dithered`` (default): x ~ s * (b+ - b-) with two binary frames, entry i shown with probability
    min(1, |x_i| / s), so that E[encoded] = x (unbiased stochastic ternarisation, seeded by the
    projector); ``ternary``: the same frames, deterministic, keeping |x_i| > threshold * mean|x|
    [L20] (biased: small entries are lost); ``bitplanes``: sign and
    ``bits`` magnitude planes (2 * bits binary frames); ``exact``: real values shown as they are
    (a hypothetical analogue modulator: the ideal reference)."""
    bits: int = 4
    """Magnitude bits of the ``bitplanes`` encoding."""
    ternary_threshold: float = 0.7
    """Ternarisation keeps |x_i| > threshold * mean|x| (the rule of Li & Liu 2016, Ternary Weight
    Networks, arXiv:1605.04711); the scale s is the mean |x_i| over the kept entries."""

    dither_scale: float | None = 2.0
    """``dithered`` scale s = dither_scale * mean|x|: entries above s are clipped to it (the only
    bias; about 11% of a Gaussian vector's entries at 2.0); None = max|x| (exactly unbiased, but
    sparser frames and about twice the error of one projection of a 200-entry Gaussian vector)."""

    # -- optics ----------------------------------------------------------------------------
    screens: int = 2
    """Random phase screens of the structured scattering model (>= 2; one FFT each)."""
    dense_threshold: int = 2**22
    """Transmission matrices with n_in * n_out <= this are materialised as i.i.d. complex
    Gaussians; larger ones use the phase-screen model [ASSUMED]."""
    reference_ratio: float = 1.0
    """Reference-beam intensity over the mean speckle intensity of each pattern (holography)."""

    # -- camera ----------------------------------------------------------------------------
    exposure: float = 0.15
    """Mean frame intensity as a fraction of the full well (auto-exposure set point) [ASSUMED]:
    low enough that the bright tail of the speckle-plus-reference intensity rarely saturates."""
    full_well_e: float = 10_000.0
    """Electrons at saturation [CAM]."""
    read_noise_e: float = 5.0
    """Read noise, electrons rms [CAM]."""
    shot_noise: bool = True
    """Photon shot noise (Gaussian approximation, variance = mean electrons)."""
    saturation: bool = True
    """Clip at the full well."""
    adc_bits: int | None = 8
    """Camera ADC depth [DS]; None = no quantisation."""

    def __post_init__(self) -> None:
        for name in ("dmd_shape", "camera_shape"):
            shape = getattr(self, name)
            if len(shape) != 2 or any(int(s) < 1 for s in shape):
                raise OpticalConfigError(f"OPUConfig.{name} must be two positive integers, got {shape!r}")
            object.__setattr__(self, name, (int(shape[0]), int(shape[1])))
        positive = ("frame_rate_hz", "power_w", "full_well_e", "reference_ratio")
        for name in positive:
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise OpticalConfigError(f"OPUConfig.{name} must be a positive number, got {getattr(self, name)!r}")
        for name in ("latency_s", "read_noise_e"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise OpticalConfigError(f"OPUConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.encoding not in ENCODINGS:
            raise OpticalConfigError(f"OPUConfig.encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if not 1 <= int(self.bits) <= 16:
            raise OpticalConfigError(f"OPUConfig.bits must be in 1..16, got {self.bits!r}")
        if not 0 <= self.ternary_threshold < 10:
            raise OpticalConfigError(f"OPUConfig.ternary_threshold must be in [0, 10), got {self.ternary_threshold!r}")
        scale = self.dither_scale
        if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale) and 0 < scale <= 1e6):
            raise OpticalConfigError(f"OPUConfig.dither_scale must be None or a number in (0, 1e6], got {scale!r}")
        if int(self.screens) < 2:
            raise OpticalConfigError(f"OPUConfig.screens must be >= 2 (one screen gives no speckle), got {self.screens!r}")
        if int(self.dense_threshold) < 0:
            raise OpticalConfigError(f"OPUConfig.dense_threshold must be >= 0, got {self.dense_threshold!r}")
        if not 0 < self.exposure <= 1:
            raise OpticalConfigError(f"OPUConfig.exposure must be in (0, 1], got {self.exposure!r}")
        if self.adc_bits is not None and not 1 <= int(self.adc_bits) <= 16:
            raise OpticalConfigError(f"OPUConfig.adc_bits must be in 1..16 or None, got {self.adc_bits!r}")

    # -- presets and serialisation ----------------------------------------------------------
    @classmethod
    def ideal(cls, **overrides: Any) -> "OPUConfig":
        """No noise, no saturation, no camera quantisation, exact input encoding."""
        settings: dict[str, Any] = dict(encoding="exact", read_noise_e=0.0, shot_noise=False, saturation=False, adc_bits=None)
        settings.update(overrides)
        return cls(**settings)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dmd_shape"] = list(self.dmd_shape)
        out["camera_shape"] = list(self.camera_shape)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OPUConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OpticalConfigError(f"OPUConfig: unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(sorted(known))}")
        values = dict(data)
        for name in ("dmd_shape", "camera_shape"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def replace(self, **changes: Any) -> "OPUConfig":
        return replace(self, **changes)

    # -- limits -------------------------------------------------------------------------------
    @property
    def max_inputs(self) -> int:
        return self.dmd_shape[0] * self.dmd_shape[1]

    @property
    def max_outputs(self) -> int:
        return self.camera_shape[0] * self.camera_shape[1]

    def check_size(self, n_in: int, n_out: int) -> None:
        """Raise OpticalConfigError naming the limit a projection of this size would break."""
        if n_in > self.max_inputs:
            w, h = self.dmd_shape
            raise OpticalConfigError(
                f"optical projector: n_in={n_in} exceeds the DMD's {w}x{h} = {self.max_inputs} micro-mirrors "
                "(OPUConfig.dmd_shape)"
            )
        if n_out > self.max_outputs:
            w, h = self.camera_shape
            raise OpticalConfigError(
                f"optical projector: n_out={n_out} exceeds the camera's {w}x{h} = {self.max_outputs} pixels "
                "(OPUConfig.camera_shape)"
            )

    # -- time and energy model ----------------------------------------------------------------
    @property
    def patterns_per_vector(self) -> int:
        """Binary DMD patterns needed to show one real vector."""
        return {"dithered": 2, "ternary": 2, "bitplanes": 2 * int(self.bits), "exact": 1}[self.encoding]

    @property
    def frames_per_vector(self) -> int:
        """Camera frames per projected vector: two holographic frames (reference phases 0 and pi) per pattern."""
        return 2 * self.patterns_per_vector

    def device_time_s(self, vectors: int, calls: int = 1) -> float:
        """Simulated device time of ``calls`` calls projecting ``vectors`` vectors in all."""
        return vectors * self.frames_per_vector / self.frame_rate_hz + calls * self.latency_s

    def energy_j(self, seconds: float) -> float:
        return self.power_w * seconds
