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

Vectors are simulated in chunks of about 16 MiB of field, so that each chunk's FFTs and camera
passes run in cache. Every chunk draws its dither and sensor noise from its own generator, seeded
by (projector seed, call number, chunk number): the frames of a seeded projector are the same
whether the chunks run one after the other or, on a multi-core CPU, in parallel threads.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import numpy as np
import torch

from optical_backend.camera import HolographicCamera
from optical_backend.encoding import encode
from optical_backend.errors import OpticalConfigError
from optical_backend.opu import OPUConfig
from optical_backend.projector import BaseProjector
from optical_backend.scattering import transmission

CHUNK_ELEMENTS = 1 << 21  # complex field elements simulated at once (16 MiB): in cache, bounds peak memory
DITHER, NOISE = 3, 2  # salts of the two random streams of a chunk


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
        self.camera = HolographicCamera(config)
        self._call = 0  # numbers the calls: each call's chunks draw fresh, reproducible randomness

    def _generator(self, salt: int, chunk: int, device: torch.device) -> torch.Generator:
        """The random stream ``salt`` of one chunk of the current call."""
        words = np.random.SeedSequence([self.seed, salt, self._call, chunk]).generate_state(2, dtype=np.uint32)
        gen = torch.Generator(device=device)
        gen.manual_seed(int(words[0]) << 31 | int(words[1]) >> 1)
        return gen

    def _simulate(self, x: torch.Tensor, chunk: int, out: torch.Tensor) -> None:
        """Encode, scatter and read out the vectors ``x`` ``(c, n_in)`` into ``out`` ``(c, n_out)``."""
        dither = self._generator(DITHER, chunk, torch.device("cpu"))
        patterns, weights = encode(x, self.opu, dither)  # (c, P, n_in), (c, P)
        c, p, _ = patterns.shape
        flat = patterns.reshape(c * p, self.n_in)  # (c P, n_in)
        fields = self.transmission.fields(flat)  # (c P, n_out) complex
        speckle = flat.square().sum(dim=1) * (2.0 / self.n_out)  # (c P,) mean |E|^2 of each pattern
        noise = self._generator(NOISE, chunk, self.device)
        real = self.camera.read_real_part(fields, speckle, noise).view(c, p, self.n_out)  # (c, P, n_out)
        torch.bmm(weights.unsqueeze(1), real, out=out.unsqueeze(1))  # (c, 1, P) @ (c, P, n_out) -> (c, 1, n_out)

    @torch.no_grad()  # a physical measurement: not differentiable (frames are rounded by the ADC)
    def _project(self, x: torch.Tensor) -> torch.Tensor:  # (N, n_in) -> (N, n_out)
        n = x.shape[0]
        field_size = getattr(self.transmission, "size", self.n_out)
        per_chunk = max(1, CHUNK_ELEMENTS // (self.opu.patterns_per_vector * field_size))
        out = torch.empty(n, self.n_out, device=self.device)
        starts = range(0, n, per_chunk)

        def simulate(chunk: int) -> None:
            rows = slice(starts[chunk], starts[chunk] + per_chunk)
            self._simulate(x[rows], chunk, out[rows])

        workers = min(len(starts), torch.get_num_threads()) if self.device.type == "cpu" else 1
        if workers > 1:
            with _one_torch_thread_per_worker(), ThreadPoolExecutor(workers) as pool:
                list(pool.map(simulate, range(len(starts))))
        else:
            for chunk in range(len(starts)):
                simulate(chunk)
        self._call += 1
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


@contextlib.contextmanager
def _one_torch_thread_per_worker() -> Iterator[None]:
    """Chunks run in parallel Python threads (torch releases the GIL), each op single-threaded:
    on CPU this beats splitting every op over the cores (the random draws are serial otherwise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
