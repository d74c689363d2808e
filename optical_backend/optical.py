"""The OPU simulator as a projector: DMD encoding -> scattering medium -> holographic camera.

For each input vector ``x``:

1. ``encoding``: ``x ~ sum_p w_p b_p`` with binary DMD patterns ``b_p`` (dithered or
   deterministic ternary: 2 patterns, bit planes: ``2 * bits``, exact: ``x`` itself);
2. ``scattering``: the speckle field ``E_p = T b_p`` (complex; materialised Gaussian T for small
   sizes, random phase screens with FFT propagation above ``dense_threshold`` entries);
3. ``camera``: two intensity frames per pattern with the reference phase at 0 and pi give
   ``Re(E_p)`` through the sensor (shot and read noise, saturation, ADC);
4. decoding: ``y = sum_p w_p Re(E_p)``, an estimate of ``x @ Re(T)`` whose entries have the
   N(0, 1/n_out) normalisation of every projector.

Frames are counted (``2 * patterns`` per vector) and converted to simulated device time and
energy with the OPU's frame rate, latency and power (``optical_backend.opu``).
"""

from __future__ import annotations

from typing import Any

import torch

from optical_backend.camera import HolographicCamera
from optical_backend.encoding import encode
from optical_backend.errors import OpticalConfigError
from optical_backend.opu import OPUConfig
from optical_backend.projector import BaseProjector, seeded_generator
from optical_backend.scattering import transmission

CHUNK_ELEMENTS = 1 << 23  # complex field elements simulated at once (64 MiB): bounds peak memory


class OpticalProjector(BaseProjector):
    """A simulated optical processing unit computing ``x @ Re(T)`` for a seeded random T."""

    kind = "optical"

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        seed: int = 0,
        device: torch.device | str | None = None,
        config: OPUConfig | dict[str, Any] | None = None,
    ):
        super().__init__(n_in, n_out, seed=seed, device=device)
        if config is None:
            config = OPUConfig()
        elif isinstance(config, dict):
            config = OPUConfig.from_dict(config)
        elif not isinstance(config, OPUConfig):
            raise OpticalConfigError(f"optical projector: config must be an OPUConfig or a dict, got {type(config).__name__}")
        config.check_size(self.n_in, self.n_out)
        self.opu = config
        self.transmission = transmission(
            self.n_in, self.n_out, self.seed, self.device, screens=config.screens, dense_threshold=config.dense_threshold
        )
        noise = torch.Generator(device=self.device)
        noise.manual_seed(seeded_generator(self.seed, salt=2).initial_seed())
        self.camera = HolographicCamera(config, noise)
        self.dither = seeded_generator(self.seed, salt=3)  # CPU draws of the dithered encoding

    @torch.no_grad()  # a physical measurement: not differentiable (frames are rounded by the ADC)
    def _project(self, x: torch.Tensor) -> torch.Tensor:  # (N, n_in) -> (N, n_out)
        n = x.shape[0]
        patterns_per_vector = self.opu.patterns_per_vector
        field_size = getattr(self.transmission, "size", self.n_out)
        chunk = max(1, CHUNK_ELEMENTS // (patterns_per_vector * field_size))
        out = torch.empty(n, self.n_out, device=self.device)
        for start in range(0, n, chunk):
            patterns, weights = encode(x[start : start + chunk], self.opu, self.dither)  # (c, P, n_in), (c, P)
            c, p, _ = patterns.shape
            flat = patterns.reshape(c * p, self.n_in)  # (c P, n_in)
            fields = self.transmission.fields(flat)  # (c P, n_out) complex
            speckle = flat.square().sum(dim=1) * (2.0 / self.n_out)  # (c P,) mean |E|^2 of each pattern
            real = self.camera.read_real_part(fields, speckle).view(c, p, self.n_out)  # (c, P, n_out)
            out[start : start + c] = torch.einsum("cp,cpo->co", weights, real)  # (c, n_out)
        seconds = self.opu.device_time_s(n, calls=1)
        self.stats.frames += n * self.opu.frames_per_vector
        self.stats.device_time_s += seconds
        self.stats.energy_j += self.opu.energy_j(seconds)
        return out

    def effective_map(self) -> torch.Tensor:
        """The exact linear map ``Re(T)`` ``(n_in, n_out)`` that the ideal OPU computes (small sizes)."""
        return self.transmission.effective_map()

    def config(self) -> dict[str, Any]:
        return {"config": self.opu.to_dict()}
