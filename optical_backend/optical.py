"""The OPU simulator as a projector: DMD encoding -> scattering medium -> camera read-out.

For each input vector ``x``:

1. ``encoding``: ``x ~ sum_p w_p b_p`` with binary DMD patterns ``b_p`` (default: dithered
   ternary pair plus a dithered pair for the clipped remainder, unbiased; ``optical_backend.encoding``);
2. ``scattering``: the speckle field ``E_p = T b_p`` (complex; materialised Gaussian T for small
   sizes, the lossy screen model above ``dense_threshold`` entries);
3. ``camera``: two intensity frames per shown pattern give a real linear function of ``E_p``
   (default: interference with an anchor pattern's own speckle; ``optical_backend.camera``);
4. decoding: ``y = sum_p w_p read(E_p)``, an estimate of ``x @ effective_map()`` whose entries
   have the N(0, 1/n_out) normalisation of every projector on average.

Tiling: an input longer than the DMD allows (``OPUConfig.data_mirrors`` per tile, the anchor
included) or an output longer than the camera is split into near-equal tiles; every (input tile,
output tile) pair is one pass of the device, the passes' outputs are summed digitally per output
tile. Each pass is simulated as its own sub-block of the medium, independent of the others; on
the device the passes reuse the same mirrors and pixels, so a real OPU must place them on
different DMD and camera windows, which overlap when the tiles together exceed the device
(``OpticalProjector.shared_entry_fraction``; docs/optical_backend.md).

Frames are counted as shown: two per non-blank pattern and pass, plus the calibration frames
(dark, and anchor alone) once per run and pass; device time = frames / frame rate + latency per
call; energy = power x time (``optical_backend.opu``).

Vectors are simulated in chunks of about 16 MiB of field, so that each chunk's FFTs and camera
passes run in cache. Every chunk draws its dither and sensor noise from its own generator, seeded
by (projector seed, call number, chunk number): the frames of a seeded projector are the same
whether the chunks run one after the other or, on a multi-core CPU, in parallel threads.

Data parallelism: by default every rank simulates the same device (same medium, same seed).
``OPUConfig(per_rank_medium=True)`` gives each rank its own OPU, as separate devices are: the
medium and the noise streams are seeded by (seed, rank), the rank taken from torch.distributed;
``state_dict`` keeps the common seed, so a projector rebuilt on rank r gets rank r's medium.
"""

from __future__ import annotations

import contextlib
import math
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
DITHER, NOISE, CALIBRATION, ANCHOR = 3, 2, 5, 7  # salts of the random streams


def _split(n: int, parts: int) -> list[slice]:
    """``parts`` near-equal contiguous slices covering ``range(n)``."""
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


class _Pass:
    """One (input tile, output tile) pass: its sub-block of the medium and its calibration."""

    def __init__(self, rows: slice, cols: slice, seed: int, config: OPUConfig, device: torch.device):
        self.rows, self.cols = rows, cols
        self.n_in, self.n_out = rows.stop - rows.start, cols.stop - cols.start
        self.n_anchor = config.anchor_mirrors(self.n_in)
        self.seed = seed
        self.transmission = transmission(
            self.n_in + self.n_anchor,
            self.n_out,
            seed,
            device,
            screens=config.screens,
            dense_threshold=config.dense_threshold,
            oversampling=config.oversampling,
        )
        self.anchor: torch.Tensor | None = None  # (2, n_out) complex: the speckle of the two anchor halves
        self.anchor_measured: torch.Tensor | None = None  # (n_out,) calibrated |A1|^2 - |A2|^2
        self.anchor_rms = 1.0
        self.share = 1.0  # output scale of this pass (set by the projector)

    def fields(self, patterns: torch.Tensor) -> torch.Tensor:  # (R, n_in) -> (R, n_out) complex
        if self.n_anchor:
            patterns = torch.nn.functional.pad(patterns, (0, self.n_anchor))  # (R, n_in + n_anchor): anchor dark
        return self.transmission.fields(patterns)

    def calibrate(self, camera: HolographicCamera, config: OPUConfig, device: torch.device) -> None:
        """Measure the black level (dark frames) and each anchor half's intensity (anchor-alone frames)."""
        gen = torch.Generator(device=device)
        gen.manual_seed(int(np.random.SeedSequence([self.seed, CALIBRATION]).generate_state(1)[0]))
        dark = camera.average_frames(torch.zeros(self.n_out, device=device), config.calibration_frames, gen)
        black = float(dark.mean())  # electrons
        if not self.n_anchor:
            return
        rng = np.random.default_rng([self.seed, ANCHOR])
        half = self.n_anchor // 2
        patterns = torch.zeros(2, self.n_in + self.n_anchor, device=device)  # (2, n_in + n_anchor)
        anchor = torch.from_numpy(rng.integers(0, 2, self.n_anchor).astype(np.float32)).to(device)
        patterns[0, self.n_in : self.n_in + half] = anchor[:half]
        patterns[1, self.n_in + half :] = anchor[half:]
        for i, start in ((0, self.n_in), (1, self.n_in + half)):
            if not bool(patterns[i].any()):
                patterns[i, start] = 1.0  # never a dark anchor half
        self.anchor = self.transmission.fields(patterns)  # (2, n_out) complex: A1, A2
        intensity = self.anchor.abs().square()  # (2, n_out)
        electrons_per_unit = config.exposure * config.full_well_e / float(intensity.mean(dim=1).max())
        measured = [
            camera.average_frames(intensity[i] * electrons_per_unit, config.calibration_frames, gen) for i in (0, 1)
        ]
        self.anchor_measured = (measured[0] - measured[1]).div_(
            electrons_per_unit
        )  # (n_out,) |A1|^2 - |A2|^2; black cancels
        reference = (measured[0] + measured[1] - 2 * black).div_(
            electrons_per_unit
        )  # |A1|^2 + |A2|^2 ~ |A1 - A2|^2 on average
        self.anchor_rms = math.sqrt(max(float(reference.mean()), 1e-30))

    def linear(self, x: torch.Tensor) -> torch.Tensor:  # (R, n_in) real -> (R, n_out) real
        """The noiseless read-out of real inputs ``x`` (by linearity, without materialising the map)."""
        field = self.fields(x)  # (R, n_out) complex
        if self.anchor is None:
            return field.real
        return (field * (self.anchor[0] - self.anchor[1]).conj()).real / self.anchor_rms

    def effective_map(self) -> torch.Tensor:  # (n_in, n_out) real
        return self.linear(torch.eye(self.n_in, device=self.transmission_device()))

    def transmission_device(self) -> torch.device:
        t = self.transmission
        return (t.real if hasattr(t, "real") else t.signs).device


class OpticalProjector(BaseProjector):
    """A simulated optical processing unit computing ``x @ effective_map()`` for a seeded random medium."""

    kind = "optical"

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        seed: int = 0,
        device: torch.device | str | None = None,
        config: OPUConfig | dict[str, Any] | None = None,
        rank: int | None = None,
    ):
        """``rank``: the data-parallel rank this device serves (default: torch.distributed's when
        initialised, else 0); it matters only with ``config.per_rank_medium``."""
        super().__init__(n_in, n_out, seed=seed, device=device)
        if config is None:
            config = OPUConfig()
        elif isinstance(config, dict):
            config = OPUConfig.from_dict(config)
        elif not isinstance(config, OPUConfig):
            raise OpticalConfigError(
                f"optical projector: config must be an OPUConfig or a dict, got {type(config).__name__}"
            )
        self.opu = config
        self.rank = _data_parallel_rank() if rank is None else int(rank)
        # the seed of this device's medium and noise: the projector's own, or one per rank (separate OPUs)
        self.medium_seed = _rank_seed(self.seed, self.rank) if config.per_rank_medium else self.seed
        self.tiles = config.tiles(self.n_in, self.n_out)
        single = self.tiles == (1, 1)
        self.passes = [
            _Pass(rows, cols, self.medium_seed if single else _pass_seed(self.medium_seed, a, b), config, self.device)
            for a, rows in enumerate(_split(self.n_in, self.tiles[0]))
            for b, cols in enumerate(_split(self.n_out, self.tiles[1]))
        ]
        for one in self.passes:
            one.share = math.sqrt(one.n_out / self.n_out)  # a tile's medium has E|t|^2 = 2 / tile outputs
        self.camera = HolographicCamera(config)
        self._calibrated = self._calibration_counted = False
        self._call = 0  # numbers the calls: each call's chunks draw fresh, reproducible randomness

    @property
    def transmission(self):
        """The medium of the first pass (the only one when nothing is tiled)."""
        return self.passes[0].transmission

    @property
    def shared_entry_fraction(self) -> float:
        """Fraction of the matrix entries that a real device would read twice (the same mirror and
        pixel in two passes), with pass k's DMD and camera windows spread evenly over the device;
        0 without tiling. The simulator treats every pass as independent (module docstring)."""
        count = len(self.passes)
        if count == 1:
            return 0.0
        mirrors = [one.n_in + one.n_anchor for one in self.passes]
        pixels = [one.n_out for one in self.passes]
        d, c = self.opu.max_inputs, self.opu.max_outputs

        def windows(sizes: list[int], total: int) -> list[tuple[float, float]]:
            return [(k * (total - w) / (count - 1), k * (total - w) / (count - 1) + w) for k, w in enumerate(sizes)]

        def overlap(u: tuple[float, float], v: tuple[float, float]) -> float:
            return max(0.0, min(u[1], v[1]) - max(u[0], v[0]))

        m, p = windows(mirrors, d), windows(pixels, c)
        shared = sum(overlap(m[i], m[j]) * overlap(p[i], p[j]) for i in range(count) for j in range(i + 1, count))
        return min(1.0, shared / sum(w * h for w, h in zip(mirrors, pixels)))  # pairwise: an upper bound

    def _generator(self, salt: int, chunk: int, device: torch.device) -> torch.Generator:
        """The random stream ``salt`` of one chunk of the current call."""
        words = np.random.SeedSequence([self.medium_seed, salt, self._call, chunk]).generate_state(2, dtype=np.uint32)
        gen = torch.Generator(device=device)
        gen.manual_seed(int(words[0]) << 31 | int(words[1]) >> 1)
        return gen

    def _calibrate(self, count: bool = True) -> None:
        """Once per run: dark and anchor frames of every pass, counted as device time with the
        first projection (``count``; ``effective_map`` calibrates without counting)."""
        if not self._calibrated:
            for one in self.passes:
                one.calibrate(self.camera, self.opu, self.device)
            self._calibrated = True
        if not count or self._calibration_counted:
            return
        frames = len(self.passes) * self.opu.calibration_frames_per_pass
        self.stats.frames += frames
        seconds = self.opu.frames_time_s(frames, calls=0)
        self.stats.device_time_s += seconds
        self.stats.energy_j += self.opu.energy_j(seconds)
        self._calibration_counted = True

    def count_measurement(self, vectors: int) -> None:
        """Count ``vectors`` vectors shown once on every pass (a measurement of the map, at most
        ``frames_per_vector`` frames each) as device time and energy."""
        frames = len(self.passes) * vectors * self.opu.frames_per_vector
        seconds = self.opu.frames_time_s(frames, calls=1)
        self.stats.frames += frames
        self.stats.device_time_s += seconds
        self.stats.energy_j += self.opu.energy_j(seconds)

    def _simulate(self, x: torch.Tensor, chunk: int, out: torch.Tensor) -> int:
        """Encode, scatter and read out the vectors ``x`` ``(c, n_in)`` into ``out`` ``(c, n_out)``;
        returns the number of frames shown."""
        dither = self._generator(DITHER, chunk, torch.device("cpu"))
        patterns, weights = encode(x, self.opu, dither)  # (c, P, n_in), (c, P)
        c, p, _ = patterns.shape
        noise = self._generator(NOISE, chunk, self.device)
        frames = 0
        out.zero_()
        for one in self.passes:
            flat = patterns[:, :, one.rows].reshape(c * p, one.n_in)  # (c P, n_tile)
            energy = flat.square().sum(dim=1)  # (c P,): mirrors on (binary patterns)
            frames += 2 * int((energy > 0).sum())  # blank patterns are not shown
            speckle = energy * (2.0 / one.n_out)  # (c P,) mean |E|^2 of each pattern
            fields = one.fields(flat)  # (c P, n_out) complex
            if one.anchor is None:
                real = self.camera.read_real_part(fields, speckle, noise)
            else:
                real = self.camera.read_with_anchors(
                    fields, one.anchor, speckle, one.anchor_measured, one.anchor_rms, noise
                )
            del fields
            part = torch.bmm(weights.unsqueeze(1), real.view(c, p, one.n_out))  # (c, 1, P) @ (c, P, n_out)
            out[:, one.cols] += part.squeeze(1) * one.share  # normalised to the whole output
        return frames

    @torch.no_grad()  # a physical measurement: not differentiable (frames are rounded by the ADC)
    def _project(self, x: torch.Tensor) -> torch.Tensor:  # (N, n_in) -> (N, n_out)
        self._calibrate()
        n = x.shape[0]
        field_size = max(getattr(one.transmission, "size", one.n_out) for one in self.passes)
        per_chunk = max(1, CHUNK_ELEMENTS // (self.opu.patterns_per_vector * field_size))
        out = torch.empty(n, self.n_out, device=self.device)
        starts = range(0, n, per_chunk)

        def simulate(chunk: int) -> int:
            rows = slice(starts[chunk], starts[chunk] + per_chunk)
            return self._simulate(x[rows], chunk, out[rows])

        workers = min(len(starts), torch.get_num_threads()) if self.device.type == "cpu" else 1
        if workers > 1:
            with _one_torch_thread_per_worker(), ThreadPoolExecutor(workers) as pool:
                frames = sum(pool.map(simulate, range(len(starts))))
        else:
            frames = sum(simulate(chunk) for chunk in range(len(starts)))
        self._call += 1
        seconds = self.opu.frames_time_s(frames, calls=1)
        self.stats.frames += frames
        self.stats.device_time_s += seconds
        self.stats.energy_j += self.opu.energy_j(seconds)
        return out

    @torch.no_grad()
    def effective_map(self) -> torch.Tensor:
        """The real linear map ``(n_in, n_out)`` the noiseless device computes (small sizes; it
        includes the anchor's calibrated speckle amplitude per output)."""
        self._calibrate(count=False)
        out = torch.zeros(self.n_in, self.n_out, device=self.device)
        for one in self.passes:
            out[one.rows, one.cols] = one.effective_map() * one.share
        return out

    @torch.no_grad()
    def ideal_projection(self, x: torch.Tensor) -> torch.Tensor:  # (N, n_in) -> (N, n_out)
        """``x @ effective_map()`` without the matrix: the noiseless device on the exact vector (any size)."""
        self._calibrate(count=False)
        x = x.reshape(-1, self.n_in).to(self.device, torch.float32)
        out = torch.zeros(x.shape[0], self.n_out, device=self.device)
        for one in self.passes:
            out[:, one.cols] += one.linear(x[:, one.rows]) * one.share
        return out

    def config(self) -> dict[str, Any]:
        return {"config": self.opu.to_dict()}

    def state_dict(self) -> dict[str, Any]:
        """Seed and configuration, plus where the random streams stand (calls made, calibration
        counted): a projector rebuilt from it continues the same noise, as an exact resume needs."""
        return {
            **super().state_dict(),
            "position": {"calls": self._call, "calibration_counted": self._calibration_counted},
        }

    def restore_position(self, position: dict[str, Any]) -> None:
        """Continue the random streams from ``state_dict()["position"]``."""
        self._call = int(position.get("calls", 0))
        self._calibration_counted = bool(position.get("calibration_counted", False))


def _data_parallel_rank() -> int:
    distributed = torch.distributed
    return distributed.get_rank() if distributed.is_available() and distributed.is_initialized() else 0


def _rank_seed(seed: int, rank: int) -> int:
    """The medium seed of rank ``rank``'s own device (rank 0 too differs from ``seed``)."""
    return int(np.random.SeedSequence([seed, 0x0DD5, rank]).generate_state(1)[0])


def _pass_seed(seed: int, tile_in: int, tile_out: int) -> int:
    return int(np.random.SeedSequence([seed, 0x711E, tile_in, tile_out]).generate_state(1)[0])


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
