"""Reading canonical Zarr stores: ``open_store`` and a (time, window) sampler for larger-than-memory data.

- Chunk-aligned reads: whole time chunks of the store are read (every channel at once) and
  kept in a small LRU cache; a sample never triggers a partial-chunk read.
- Shuffling without materialising the data: each epoch permutes the time chunks, takes them
  in groups of ``group_chunks`` and shuffles the (time, window) samples inside each group, so
  a batch touches a handful of chunks while the order over an epoch is random. Only integer
  indices are held in memory.
- Determinism: the sample at position ``p`` of the endless stream is a function of
  ``(seed, p)`` only, so ``batches(batch_size, start_step=k)`` resumes a stream exactly.
- Prefetch: batches are assembled by background threads, ``prefetch`` steps ahead.
- Sharding for data parallel training: with ``shard=(rank, world)`` every rank walks the same
  stream (same seed), batch ``k`` of rank ``r`` being samples ``[r * B, (r + 1) * B)`` of the
  global batch ``k`` of ``world * B`` samples. Ranks see disjoint samples, and together exactly
  what one process with batch ``world * B`` would see.

A sample is the fields at times ``t + o`` for each ``o`` in ``offsets`` (time indices), all
channels, optionally cropped to a ``window`` of (lat, lon) points at a random position.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import xarray as xr

from climate_optics.io.channels import parse_channel
from data_catalog.errors import DataInputError


def open_store(store: str | Path):
    """The root group of a canonical Zarr store, lazily indexed (no dask: reads go straight to Zarr)."""

    try:
        return xr.open_zarr(store, chunks=None)
    except Exception as exc:  # noqa: BLE001 - anything unreadable is bad input
        raise DataInputError(f"cannot open as a Zarr store ({type(exc).__name__}: {exc})", source=store) from exc


def time_step_hours(ds, source: object) -> int:
    """Spacing of the store's time axis in whole hours (must be regular)."""
    times = ds["time"].values
    if times.size < 2:
        raise DataInputError("the store needs at least two times to train a forecaster", source=source)
    steps = np.unique(np.diff(times).astype("timedelta64[m]").astype(np.int64))
    if steps.size != 1 or steps[0] % 60:
        raise DataInputError("time axis is not regular in whole hours", source=source)
    return int(steps[0] // 60)


def time_chunk(ds, variables: Sequence[str]) -> int:
    """The store's chunk length along time (1 when unknown)."""
    for var in variables:
        enc = ds[var].encoding
        chunks = enc.get("chunks") or enc.get("preferred_chunks", {}).get("time")
        if isinstance(chunks, int):
            return chunks
        if chunks:
            return int(chunks[list(ds[var].dims).index("time")])
    return 1


class ZarrWindowSampler:
    """Deterministic, chunk-aligned, prefetching sampler of (time, window) samples."""

    def __init__(
        self,
        store: str | Path,
        channels: Sequence[str],
        *,
        starts: Sequence[int] | np.ndarray,
        offsets: Sequence[int] = (0,),
        window: tuple[int, int] | None = None,
        windows_per_time: int = 1,
        seed: int = 0,
        group_chunks: int = 4,
        prefetch: int = 4,
        workers: int = 2,
        shard: tuple[int, int] = (0, 1),
    ):
        self.store = str(store)
        self.rank, self.world = (int(v) for v in shard)
        if not 0 <= self.rank < self.world:
            raise ValueError(f"shard must be (rank, world) with 0 <= rank < world, got {shard}")
        self.ds = open_store(store)
        self.channels = list(channels)
        self.offsets = tuple(int(o) for o in offsets)
        self.seed = int(seed)
        self.group_chunks = max(1, int(group_chunks))
        self.prefetch, self.workers = max(1, int(prefetch)), max(1, int(workers))
        self.n_time = self.ds.sizes.get("time", 0)
        self._plan = self._channel_plan()
        self.chunk = time_chunk(self.ds, [v for v, _, _ in self._plan])
        self.grid = (self.ds.sizes["latitude"], self.ds.sizes["longitude"])
        self.window = tuple(window) if window is not None else self.grid
        if self.window[0] > self.grid[0] or self.window[1] > self.grid[1]:
            raise DataInputError(f"window {self.window} is larger than the grid {self.grid}", source=store)
        starts = np.asarray(starts, dtype=np.int64)
        valid = (starts >= 0) & (starts + max(self.offsets) < self.n_time) & (starts + min(self.offsets) >= 0)
        self.starts = np.repeat(starts[valid], int(windows_per_time))  # (n_samples,) time index per sample
        if self.starts.size == 0:
            raise DataInputError("no usable sample times (store too short for the requested offsets)", source=store)
        self._cache: OrderedDict[int, Future] = OrderedDict()
        self._cache_size = 2 * self.group_chunks + 2 + (max(self.offsets) // self.chunk + 1)
        self._lock = threading.Lock()
        self._epochs: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        """Samples per epoch."""
        return int(self.starts.size)

    # -- store layout -----------------------------------------------------------------------------
    def _channel_plan(self) -> list[tuple[str, list[int] | None, list[int]]]:
        """(variable, level indices or None, positions in the channel list) per variable."""
        plan: dict[str, tuple[list[int] | None, list[int]]] = {}
        for position, name in enumerate(self.channels):
            var, level = parse_channel(name)
            if var not in self.ds:
                raise DataInputError(f"channel {name!r} is not in the store", source=self.store, variable=var)
            if "time" not in self.ds[var].dims:
                raise DataInputError(f"channel {name!r} has no time dimension", source=self.store, variable=var)
            has_level = "level" in self.ds[var].dims
            if (level is None) == has_level:
                raise DataInputError(
                    f"channel {name!r}: level given/omitted but the variable {'has' if has_level else 'has no'} levels",
                    source=self.store,
                    variable=var,
                )
            levels, positions = plan.setdefault(var, ([] if has_level else None, []))
            if has_level:
                found = np.flatnonzero(np.isclose(self.ds["level"].values, level))
                if found.size == 0:
                    raise DataInputError(f"level {level} hPa is not in the store", source=self.store, variable=var)
                levels.append(int(found[0]))  # type: ignore[union-attr]
            positions.append(position)
        return [(var, levels, positions) for var, (levels, positions) in plan.items()]

    def read_times(self, start: int, stop: int) -> np.ndarray:
        """Fields at time indices [start, stop): (T, C, H, W) float32, channels in order."""
        out = np.empty((stop - start, len(self.channels), *self.grid), dtype=np.float32)
        for var, levels, positions in self._plan:
            da = self.ds[var].isel(time=slice(start, stop))
            if levels is not None:
                da = da.isel(level=levels).transpose("time", "level", "latitude", "longitude")
                out[:, positions] = da.values
            else:
                out[:, positions[0]] = da.transpose("time", "latitude", "longitude").values
        return out

    def _chunk(self, index: int) -> np.ndarray:
        """Chunk ``index`` of the time axis, read once and cached (thread-safe)."""
        with self._lock:
            future = self._cache.get(index)
            owner = future is None
            if owner:
                future = Future()
                self._cache[index] = future
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(index)
        if owner:
            try:
                start = index * self.chunk
                future.set_result(self.read_times(start, min(start + self.chunk, self.n_time)))
            except BaseException as exc:
                future.set_exception(exc)
                with self._lock:
                    self._cache.pop(index, None)
        return future.result()

    # -- order -----------------------------------------------------------------------------------
    def epoch(self, number: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time index, window row, window column) of every sample of epoch ``number``, in order."""
        if number in self._epochs:
            return self._epochs[number]
        rng = np.random.default_rng([self.seed, number])
        chunk_of = self.starts // self.chunk  # (n,)
        groups = rng.permutation(np.unique(chunk_of))
        order = []
        for g in range(0, groups.size, self.group_chunks):
            members = np.flatnonzero(np.isin(chunk_of, groups[g : g + self.group_chunks]))
            order.append(rng.permutation(members))
        index = np.concatenate(order)  # (n,)
        rows = rng.integers(0, self.grid[0] - self.window[0] + 1, size=index.size)
        cols = rng.integers(0, self.grid[1] - self.window[1] + 1, size=index.size)
        with self._lock:
            self._epochs[number] = (self.starts[index], rows, cols)
            while len(self._epochs) > 2:
                self._epochs.popitem(last=False)
        return self._epochs[number]

    def own(self, batch_size: int) -> slice:
        """This rank's rows of a per-step draw made for the global batch of ``world * batch_size``."""
        return slice(self.rank * batch_size, (self.rank + 1) * batch_size)

    def sample_indices(self, step: int, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time, row, col) arrays of length ``batch_size`` for this rank's share of batch ``step``."""
        n = len(self)
        positions = (step * self.world + self.rank) * batch_size + np.arange(batch_size)  # (B,) in the global stream
        times, rows, cols = (np.empty(batch_size, dtype=np.int64) for _ in range(3))
        for epoch_number in np.unique(positions // n):
            sel = positions // n == epoch_number
            t, r, c = self.epoch(int(epoch_number))
            times[sel], rows[sel], cols[sel] = t[positions[sel] % n], r[positions[sel] % n], c[positions[sel] % n]
        return times, rows, cols

    def batch(self, step: int, batch_size: int) -> dict[str, np.ndarray]:
        """Batch ``step``: ``fields`` (B, O, C, h, w) float32 plus ``time``, ``row``, ``col`` (B,)."""
        times, rows, cols = self.sample_indices(step, batch_size)
        h, w = self.window
        fields = np.empty((batch_size, len(self.offsets), len(self.channels), h, w), dtype=np.float32)
        for b, (t, r, c) in enumerate(zip(times, rows, cols)):
            for o, offset in enumerate(self.offsets):
                chunk_index, local = divmod(int(t) + offset, self.chunk)
                fields[b, o] = self._chunk(chunk_index)[local, :, r : r + h, c : c + w]
        return {"fields": fields, "time": times, "row": rows, "col": cols}

    def batches(self, batch_size: int, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Endless stream of batches from ``start_step``, assembled ``prefetch`` steps ahead."""
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="zarr-sampler")
        pending: list[Future] = []
        step = start_step
        try:
            while True:
                while len(pending) < self.prefetch:
                    pending.append(pool.submit(self.batch, step, batch_size))
                    step += 1
                yield pending.pop(0).result()
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
