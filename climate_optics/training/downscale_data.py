"""Downscaling data: fine-grid truth from an ingested store, coarse conditioning made on the fly.

For each training sample the full fine field at one time is read (chunk-aligned, prefetched:
``io.windows.ZarrWindowSampler``), coarsened by ``factor`` with the area-weighted
``data_catalog.regrid.coarsen_conservative`` (what a coarse model or reanalysis would give),
normalised with the store's per-channel statistics and interpolated back to the fine grid
(``climate_optics.interpolation``). A random ``tile x tile`` regional patch (longitude wraps)
of the conditioning and of the normalised truth is the sample.

Conditioning channels (K = C + 6): interpolated coarse fields (C), land-sea mask, surface
geopotential (normalised), sin/cos latitude, sin/cos longitude.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from climate_optics import interpolation
from climate_optics.io.channels import parse_channel
from climate_optics.io.windows import ZarrWindowSampler, open_store
from climate_optics.models.downscaler import STATIC_CHANNELS, DownscalerConfig, geo_channels
from data_catalog.errors import DataInputError
from data_catalog.regrid import coarsen_conservative
from data_catalog.stats import read_statistics

STAT_SAMPLE_TIMES = 64  # times read to estimate statistics when the store has none


def coarse_grid(lat: np.ndarray, lon: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes of the grid ``coarsen_conservative`` makes from (lat, lon)."""

    probe = xr.DataArray(
        np.zeros((lat.size, lon.size), np.float32),
        dims=("latitude", "longitude"),
        coords={"latitude": lat, "longitude": lon},
    )
    out = coarsen_conservative(probe, factor)
    return out["latitude"].values, out["longitude"].values


def channel_statistics(store: str | Path, ds, channels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (mean, std) from the store's statistics group, else estimated from the data."""

    try:
        stats = read_statistics(store)
    except DataInputError:
        stats = None
    mean, std = np.zeros(len(channels)), np.ones(len(channels))
    for i, name in enumerate(channels):
        var, level = parse_channel(name)
        if stats is not None and var in stats:
            da = stats[var] if level is None else stats[var].sel(level=level)
            mean[i], std[i] = float(da.sel(statistic="mean")), float(da.sel(statistic="std"))
        else:
            da = ds[var] if level is None else ds[var].sel(level=level)
            times = np.linspace(0, ds.sizes["time"] - 1, min(STAT_SAMPLE_TIMES, ds.sizes["time"])).astype(int)
            values = np.asarray(da.isel(time=np.unique(times)).values, dtype=np.float64)
            mean[i], std[i] = values.mean(), values.std()
        if not np.isfinite(std[i]) or std[i] <= 0:
            raise DataInputError(
                f"channel {name!r} has zero or undefined standard deviation; it cannot be downscaled",
                source=store,
                variable=var,
            )
    return mean.astype(np.float32), std.astype(np.float32)


def static_fields(store: str | Path, ds) -> np.ndarray:
    """Normalised land-sea mask and surface geopotential on the fine grid: (2, H, W) float32."""
    out = []
    for name in STATIC_CHANNELS:
        if name not in ds:
            raise DataInputError(
                f"static field {name!r} is missing; the downscaler needs {', '.join(STATIC_CHANNELS)}",
                source=store,
                variable=name,
            )
        values = np.asarray(ds[name].values, dtype=np.float64)
        if values.shape != (ds.sizes["latitude"], ds.sizes["longitude"]):
            raise DataInputError(
                f"static field must have dims (latitude, longitude), got {ds[name].dims}", source=store, variable=name
            )
        if name == "geopotential_at_surface":
            values = (values - values.mean()) / max(values.std(), 1e-6)
        out.append(values.astype(np.float32))
    return np.stack(out)  # (2, H, W)


class DownscaleData:
    """Training and validation patches for one store and one ``DownscalerConfig``."""

    def __init__(self, store: str | Path, config: DownscalerConfig, *, val_fraction: float = 0.1):
        self.store = Path(store)
        if not self.store.exists():
            raise DataInputError("training store does not exist", source=store)
        self.ds = open_store(store)
        for dim in ("time", "latitude", "longitude"):
            if dim not in self.ds.dims:
                raise DataInputError(
                    f"store has no {dim!r} dimension; expected an ingested canonical store", source=store
                )
        self.config = config
        self.channels = tuple(config.channels)
        self.lat = self.ds["latitude"].values.astype(np.float64)
        self.lon = self.ds["longitude"].values.astype(np.float64)
        height, width = self.lat.size, self.lon.size
        if height % config.factor or width % config.factor:
            raise DataInputError(
                f"grid {height}x{width} does not divide by the coarsening factor {config.factor}", source=store
            )
        if height < config.tile or width < config.tile:
            raise DataInputError(f"grid {height}x{width} is smaller than the training tile {config.tile}", source=store)
        n_time = self.ds.sizes["time"]
        n_val = max(1, int(round(val_fraction * n_time)))
        if n_time - n_val < 1:
            raise DataInputError(f"store has {n_time} times; need at least 2 (training + validation)", source=store)
        self.train_times = np.arange(n_time - n_val)
        self.val_times = np.arange(n_time - n_val, n_time)
        self.mean, self.std = channel_statistics(store, self.ds, self.channels)
        self.static = static_fields(store, self.ds)  # (2, H, W)
        self.geo = geo_channels(self.lat, self.lon)  # (4, H, W)
        self.coarse_lat, self.coarse_lon = coarse_grid(self.lat, self.lon, config.factor)
        w_lat, w_lon = interpolation.grid_matrices(
            self.coarse_lat,
            self.coarse_lon,
            self.lat,
            self.lon,
            method=config.interpolation,
            great_circles=config.great_circles,
        )
        self.w_lat, self.w_lon = w_lat.astype(np.float32), w_lon.astype(np.float32)
        self._val: dict[str, torch.Tensor] | None = None

    # -- transforms ------------------------------------------------------------------------------
    def coarsen(self, fields: np.ndarray) -> np.ndarray:
        """Physical fine fields (..., C, H, W) -> conservatively coarsened (..., C, Hc, Wc)."""

        dims = tuple(f"d{i}" for i in range(fields.ndim - 2)) + ("latitude", "longitude")
        da = xr.DataArray(fields, dims=dims, coords={"latitude": self.lat, "longitude": self.lon})
        return np.asarray(coarsen_conservative(da, self.config.factor).values, dtype=np.float32)

    def normalise(self, fields: np.ndarray) -> np.ndarray:
        """(..., C, H, W) physical -> standardised per channel."""
        return (fields - self.mean[:, None, None]) / self.std[:, None, None]

    def interpolate(self, coarse: np.ndarray) -> np.ndarray:
        """Physical coarse fields (..., C, Hc, Wc) -> normalised, interpolated to the fine grid (..., C, H, W)."""
        return interpolation.apply(self.normalise(coarse), self.w_lat, self.w_lon).astype(np.float32)

    @property
    def extra(self) -> np.ndarray:
        """Static and geographic conditioning channels (6, H, W)."""
        return np.concatenate([self.static, self.geo])

    def crop(self, array: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Regional patches (B, *, tile, tile) of a (B, *, H, W) array; longitude wraps."""
        t, width = self.config.tile, self.lon.size
        return np.stack(
            [array[b, ..., r : r + t, :][..., np.arange(c, c + t) % width] for b, (r, c) in enumerate(zip(rows, cols))]
        )

    # -- streams ---------------------------------------------------------------------------------
    def sampler(self, times: np.ndarray, seed: int, **kwargs: Any) -> "PatchSampler":
        return PatchSampler(self, times, seed=seed, **kwargs)

    def batches(
        self, seed: int, batch_size: int, start_step: int = 0, shard: tuple[int, int] = (0, 1)
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Endless, deterministic stream of training patches (batch ``k`` depends on seed and k only).

        ``shard=(rank, world)``: this rank's share of a global batch of ``world * batch_size``.
        """
        yield from self.sampler(self.train_times, seed, shard=shard).batches(batch_size, start_step=start_step)

    def validation_batch(self, size: int = 16, seed: int = 12345) -> dict[str, torch.Tensor]:
        """A fixed set of patches from the held-out (last) times."""
        if self._val is None:
            sampler = self.sampler(self.val_times, seed, prefetch=1, workers=1)
            self._val = sampler.batch(0, size)
        return self._val

    def checkpoint_extra(self) -> dict[str, Any]:
        """What inference needs without the training store: grids, statistics, static fields."""
        units = [str(self.ds[parse_channel(c)[0]].attrs.get("units", "")) for c in self.channels]
        return {
            "latitude": torch.tensor(self.lat, dtype=torch.float64),
            "longitude": torch.tensor(self.lon, dtype=torch.float64),
            "coarse_latitude": torch.tensor(self.coarse_lat, dtype=torch.float64),
            "coarse_longitude": torch.tensor(self.coarse_lon, dtype=torch.float64),
            "mean": torch.tensor(self.mean),
            "std": torch.tensor(self.std),
            "static": torch.tensor(self.static),
            "units": units,
            "source_store": str(self.store),
        }


class PatchSampler(ZarrWindowSampler):
    """The project's chunk-aligned, prefetching sampler, yielding downscaling patches.

    Each time chunk is read once, coarsened, interpolated and cached as (T, 2C, H, W):
    normalised truth and interpolated coarse fields; a batch only crops patches from it.
    """

    def __init__(self, data: DownscaleData, times: np.ndarray, *, seed: int, **kwargs: Any):
        super().__init__(data.store, data.channels, starts=times, seed=seed, **kwargs)
        self.data = data

    def read_times(self, start: int, stop: int) -> np.ndarray:
        fields = super().read_times(start, stop)  # (T, C, H, W) physical
        truth = self.data.normalise(fields).astype(np.float32)  # (T, C, H, W)
        return np.concatenate([truth, self.data.interpolate(self.data.coarsen(fields))], axis=1)  # (T, 2C, H, W)

    def batch(self, step: int, batch_size: int) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """Batch ``step``: {"cond": (B, K, t, t), "target": (B, C, t, t)}, a function of (seed, step)."""
        times, _, _ = self.sample_indices(step, batch_size)
        rng = np.random.default_rng([self.seed, step, 7])
        own, n = self.own(batch_size), batch_size * self.world  # this rank's rows of the global draw
        rows = rng.integers(0, self.data.lat.size - self.data.config.tile + 1, size=n)[own]
        cols = rng.integers(0, self.data.lon.size, size=n)[own]
        fields = np.stack([self._chunk(int(t) // self.chunk)[int(t) % self.chunk] for t in times])  # (B, 2C, H, W)
        extra = np.broadcast_to(self.data.extra, (batch_size, *self.data.extra.shape))  # (B, 6, H, W)
        patches = self.data.crop(np.concatenate([fields, extra], axis=1), rows, cols)  # (B, 2C + 6, t, t)
        c = len(self.data.channels)
        return {
            "cond": torch.from_numpy(np.ascontiguousarray(patches[:, c:])),
            "target": torch.from_numpy(np.ascontiguousarray(patches[:, :c])),
        }
