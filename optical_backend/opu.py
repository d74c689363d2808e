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
- [LO] LightOn's own simulated OPU and its linear mode (lightonml documentation): frame time
  500 us, output region 2040 x 1088; the linear map is recovered from intensities by interfering
  the input with a fixed anchor pattern shown on part of the DMD, whose own speckle is the
  reference (Gupta, Gribonval, Daudet & Dokmanic, "Don't take it lightly: phasing optical random
  projections with unknown operators", NeurIPS 2019, arXiv:1907.01703; Hesslow et al., "Photonic
  co-processors in HPC: using LightOn OPUs for randomized numerical linear algebra",
  arXiv:2104.14429).
- [ASSUMED] A modelling choice of this project, stated as such.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from optical_backend.errors import OpticalConfigError

ENCODINGS = ("dithered", "ternary", "bitplanes", "exact")
REFERENCES = ("anchor", "external-arm")


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
    """``dithered`` (default): x ~ s * (b+ - b-) with two binary patterns, entry i shown with
    probability min(1, |x_i| / s) (stochastic ternarisation, seeded by the projector), plus, with
    ``clip_residual``, a second dithered pair for what the scale clipped, so that E[encoded] = x
    exactly for any vector; ``ternary``: the same frames, deterministic, keeping |x_i| > threshold * mean|x|
    [L20] (biased: small entries are lost); ``bitplanes``: sign and
    ``bits`` magnitude planes (2 * bits binary frames); ``exact``: real values shown as they are
    (a hypothetical analogue modulator: the ideal reference)."""
    bits: int = 4
    """Magnitude bits of the ``bitplanes`` encoding."""
    ternary_threshold: float = 0.7
    """Ternarisation keeps |x_i| > threshold * mean|x| (the rule of Li & Liu 2016, Ternary Weight
    Networks, arXiv:1605.04711); the scale s is the mean |x_i| over the kept entries."""

    dither_scale: float | None = 2.0
    """``dithered`` scale s = dither_scale * mean|x| of the first pair: entries above s are shown at s
    (clipped); None = max|x| (nothing clipped, one pair, but sparse, noisy frames for peaked vectors)."""
    clip_residual: bool = True
    """``dithered``: show the clipped remainder x - clip(x, s) in a second dithered pair at its own
    max (only for vectors that have one): unbiased for every vector at up to 4 patterns. False
    keeps one pair and loses the clipped part (22% of a Gaussian vector's projection at 2.0, 99%
    of a softmax-minus-one-hot error's: measured, docs/results.md)."""

    # -- optics ----------------------------------------------------------------------------
    screens: int = 3
    """Screens of the structured scattering model (>= 3: binary plate, ``screens - 2`` random phase
    screens, one lossy complex-Gaussian screen; ``optical_backend.scattering``)."""
    oversampling: int = 2
    """Optical modes of the medium per DMD or camera mode (a power of two, 1..8): the camera sees a
    sub-block of a medium with ``oversampling`` times more modes [ASSUMED, see scattering]."""
    dense_threshold: int = 2**22
    """Transmission matrices with n_in * n_out <= this are materialised as i.i.d. complex
    Gaussians; larger ones use the phase-screen model [ASSUMED]."""
    reference: str = "anchor"
    """Linear read-out from intensities. ``anchor`` (default, what the OPU has [LO]): fixed random
    patterns a1, a2 on two halves of ``anchor_fraction`` extra mirrors; the frames |T(b + a1)|^2 and
    |T(b + a2)|^2 of every data pattern b, with |T a1|^2 - |T a2|^2 measured once per run, give
    2 Re(T b conj(T a1 - T a2)): a real linear map whose column k is scaled by the reference
    speckle amplitude |T(a1 - a2)|_k (random, Rayleigh; ``optical_backend.camera``).
    ``external-arm``: a flat reference beam phase-stepped by exactly 0 and pi (an idealised
    external interferometer arm, not on the OPU): |E + r|^2 - |E - r|^2 = 4 r Re(E)."""
    anchor_fraction: float = 0.25
    """Anchor mirrors per data mirror of a tile (``anchor``, at least 16); taken from the DMD [ASSUMED]."""
    reference_ratio: float = 1.0
    """``external-arm``: reference-beam intensity over the mean speckle intensity of each pattern."""
    laser_power_rms: float = 0.005
    """Relative rms fluctuation of the laser power from one frame to the next [ASSUMED]."""
    per_rank_medium: bool = False
    """Under data parallelism (torch.distributed), give each rank its own device: a medium (and
    noise) seeded by the projector seed and the rank, as separate OPUs never share a transmission
    matrix. False: every rank simulates the same device (one shared feedback matrix) [ASSUMED]."""
    calibration_frames: int = 1000
    """Frames averaged once per run and pass to measure the black level (dark) and, with ``anchor``,
    the anchor's own intensity (whose error is a fixed bias of every projection: 1000 frames keep
    it near 0.5% of a one-hot error's projection); counted in the device time [ASSUMED]."""

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
    black_level_e: float = 200.0
    """Camera black level (offset added before the ADC, in electrons), subtracted digitally with
    the value measured in the dark calibration frames [CAM]."""

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
        if int(self.screens) < 3:
            raise OpticalConfigError(
                f"OPUConfig.screens must be >= 3 (two screens give a Hankel-like matrix), got {self.screens!r}"
            )
        if int(self.oversampling) not in (1, 2, 4, 8):
            raise OpticalConfigError(f"OPUConfig.oversampling must be 1, 2, 4 or 8, got {self.oversampling!r}")
        if self.reference not in REFERENCES:
            raise OpticalConfigError(
                f"OPUConfig.reference must be one of {', '.join(REFERENCES)}, got {self.reference!r}"
            )
        if not (isinstance(self.anchor_fraction, (int, float)) and 0 < self.anchor_fraction <= 4):
            raise OpticalConfigError(f"OPUConfig.anchor_fraction must be in (0, 4], got {self.anchor_fraction!r}")
        if not (isinstance(self.laser_power_rms, (int, float)) and 0 <= self.laser_power_rms < 0.5):
            raise OpticalConfigError(f"OPUConfig.laser_power_rms must be in [0, 0.5), got {self.laser_power_rms!r}")
        if not 1 <= int(self.calibration_frames) <= 100_000:
            raise OpticalConfigError(
                f"OPUConfig.calibration_frames must be in 1..100000, got {self.calibration_frames!r}"
            )
        if not (isinstance(self.black_level_e, (int, float)) and 0 <= self.black_level_e < self.full_well_e):
            raise OpticalConfigError(f"OPUConfig.black_level_e must be in [0, full_well_e), got {self.black_level_e!r}")
        if int(self.dense_threshold) < 0:
            raise OpticalConfigError(f"OPUConfig.dense_threshold must be >= 0, got {self.dense_threshold!r}")
        if not 0 < self.exposure <= 1:
            raise OpticalConfigError(f"OPUConfig.exposure must be in (0, 1], got {self.exposure!r}")
        if self.adc_bits is not None and not 1 <= int(self.adc_bits) <= 16:
            raise OpticalConfigError(f"OPUConfig.adc_bits must be in 1..16 or None, got {self.adc_bits!r}")

    # -- presets and serialisation ----------------------------------------------------------
    @classmethod
    def ideal(cls, **overrides: Any) -> "OPUConfig":
        """No noise, no laser fluctuation, no black level, no saturation, no ADC, exact input encoding."""
        settings: dict[str, Any] = dict(
            encoding="exact",
            read_noise_e=0.0,
            shot_noise=False,
            saturation=False,
            adc_bits=None,
            laser_power_rms=0.0,
            black_level_e=0.0,
        )
        settings.update(overrides)
        return cls(**settings)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dmd_shape"] = list(self.dmd_shape)
        out["camera_shape"] = list(self.camera_shape)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OPUConfig":
        """Build from a mapping; an unknown field, or a value of the wrong kind, is refused naming it."""
        if not isinstance(data, dict):
            raise OpticalConfigError(f"OPUConfig: expected a mapping of fields, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise OpticalConfigError(
                f"OPUConfig: unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(sorted(known))}"
            )
        values = dict(data)
        for name in ("dmd_shape", "camera_shape"):
            if name in values:
                if not isinstance(values[name], (list, tuple)) or not all(isinstance(v, int) for v in values[name]):
                    raise OpticalConfigError(f"OPUConfig.{name} must be two positive integers, got {values[name]!r}")
                values[name] = tuple(values[name])
        for name, value in values.items():
            default = getattr(cls, name, None)
            if value is None:
                if "None" not in str(known[name].type):
                    raise OpticalConfigError(f"OPUConfig.{name} may not be empty (null)")
                continue
            if isinstance(default, bool) and not isinstance(value, bool):
                raise OpticalConfigError(f"OPUConfig.{name} must be true or false, got {value!r}")
            if isinstance(default, str) and not isinstance(value, str):
                raise OpticalConfigError(f"OPUConfig.{name} must be a string, got {value!r}")
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise OpticalConfigError(f"OPUConfig.{name} must be a number, got {value!r}")
                if isinstance(default, int) and not float(value).is_integer():
                    raise OpticalConfigError(f"OPUConfig.{name} must be an integer, got {value!r}")
                if isinstance(default, int):
                    values[name] = int(value)  # 3.0 from a YAML file is the integer 3
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, OpticalConfigError):
                raise
            raise OpticalConfigError(f"OPUConfig: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> "OPUConfig":
        """Read a YAML (or JSON) file of fields (safe loader); errors name the file and the field."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise OpticalConfigError(f"{path}: cannot read OPU configuration ({exc.strerror or exc})") from None
        except yaml.YAMLError as exc:
            raise OpticalConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        try:
            return cls.from_dict(data if data is not None else {})
        except OpticalConfigError as exc:
            raise OpticalConfigError(f"{path}: {exc}") from None

    def replace(self, **changes: Any) -> "OPUConfig":
        return replace(self, **changes)

    # -- limits and tiling ----------------------------------------------------------------------
    @property
    def max_inputs(self) -> int:
        """DMD mirrors."""
        return self.dmd_shape[0] * self.dmd_shape[1]

    @property
    def max_outputs(self) -> int:
        """Camera pixels."""
        return self.camera_shape[0] * self.camera_shape[1]

    @property
    def data_mirrors(self) -> int:
        """Mirrors one tile of the input may use: the DMD less the anchor that goes with it."""
        if self.reference == "anchor":
            return int(self.max_inputs // (1 + self.anchor_fraction))
        return self.max_inputs

    def anchor_mirrors(self, tile_inputs: int) -> int:
        """Anchor mirrors shown beside a tile of ``tile_inputs`` data mirrors (0 without an anchor)."""
        if self.reference != "anchor":
            return 0
        # at least 16 mirrors (8 per half), so that a short input still gets a developed speckle reference
        return min(self.max_inputs - tile_inputs, max(16, 2 * math.ceil(self.anchor_fraction * tile_inputs / 2)))

    def tiles(self, n_in: int, n_out: int) -> tuple[int, int]:
        """(input tiles, output tiles): each pair is one pass of the device (frames multiplied)."""
        return math.ceil(n_in / self.data_mirrors), math.ceil(n_out / self.max_outputs)

    # -- time and energy model ----------------------------------------------------------------
    @property
    def patterns_per_vector(self) -> int:
        """Binary DMD patterns needed to show one real vector, at most (a blank pattern is not shown)."""
        if self.encoding == "dithered":
            return 4 if self.clip_residual and self.dither_scale is not None else 2
        return {"ternary": 2, "bitplanes": 2 * int(self.bits), "exact": 1}[self.encoding]

    @property
    def frames_per_vector(self) -> int:
        """Camera frames per vector and pass, at most: two per pattern (``anchor``: with and without
        the anchor; ``external-arm``: reference phases 0 and pi)."""
        return 2 * self.patterns_per_vector

    @property
    def calibration_frames_per_pass(self) -> int:
        """Frames measured once per run and pass: dark frames, and with ``anchor`` each anchor half alone."""
        return self.calibration_frames * (3 if self.reference == "anchor" else 1)

    def frames_time_s(self, frames: int, calls: int = 1) -> float:
        """Device time of ``frames`` camera frames shown in ``calls`` calls."""
        return frames / self.frame_rate_hz + calls * self.latency_s

    def device_time_s(self, vectors: int, calls: int = 1, passes: int = 1) -> float:
        """Device time of ``calls`` calls projecting ``vectors`` vectors in all, at most (every
        pattern shown), over ``passes`` tile pairs; calibration not included."""
        return self.frames_time_s(vectors * passes * self.frames_per_vector, calls)

    def energy_j(self, seconds: float) -> float:
        return self.power_w * seconds
