"""Downscale coarse fields with a trained downscaler and write an ensemble store.

``run_downscale(checkpoint, coarse, members=M, out=...)`` reads coarse fields (a catalog entry,
an analysis store or a forecast store), finds where they sit on the model's coarse grid (the
globe or a region), builds the conditioning on the matching fine grid, computes the regression
mean with overlapping tiles, draws M residuals with the EDM Heun sampler (the denoiser also
applied tile by tile at every step, so tiles agree), and writes the forecast-store layout
``(time, prediction_timedelta, realization, [level,] latitude, longitude)`` in physical units
with provenance attributes, one (time, lead) slab at a time, atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from climate_optics import interpolation
from climate_optics.errors import UsageInputError
from climate_optics.inference.forecast import forecast_provenance
from climate_optics.inference.tiling import tiled_apply
from climate_optics.io.channels import channel_name, parse_channel
from climate_optics.io.models import downscaler_from_checkpoint, load_downscaler_checkpoint
from climate_optics.models.downscaler import Downscaler, geo_channels
from climate_optics.models.edm import heun_sample
from climate_optics.stores import ForecastStoreWriter
from data_catalog import open_dataset
from data_catalog.cf import absolute_source
from data_catalog.errors import DataInputError
from data_catalog.regrid import cell_area_weights, coarsen_conservative
from data_catalog.store import check_target


@dataclass
class TargetGrid:
    """Where the coarse input sits: its fine grid, interpolation matrices and static channels."""

    lat: np.ndarray  # (H,) fine latitudes
    lon: np.ndarray  # (W,) fine longitudes
    periodic: bool  # the input covers every longitude
    w_lat: np.ndarray  # (H, Hc), or (2, H, Hc) through the poles (interpolation.great_circle_matrices)
    w_lon: np.ndarray  # (W, Wc)
    extra: torch.Tensor  # (6, H, W) static + geographic conditioning


def _axis_indices(values: np.ndarray, reference: np.ndarray, name: str, source: str) -> np.ndarray:
    """Indices of ``values`` in the model's coarse ``reference`` axis (contiguous, ascending)."""
    values = np.asarray(values, dtype=np.float64)
    step = float(np.median(np.abs(np.diff(reference)))) if reference.size > 1 else 1.0
    idx = np.abs(values[:, None] - reference[None, :]).argmin(axis=1)
    if values.size == 0 or np.any(np.abs(reference[idx] - values) > 1e-3 * step):
        raise DataInputError(
            f"{name} values do not lie on the model's coarse grid ({reference.size} points from {reference[0]:g} to {reference[-1]:g});"
            " pass --coarsen N if the source is on the fine grid",
            source=source,
            variable=name,
        )
    if np.any(np.diff(idx) != 1):
        raise DataInputError(
            f"{name} must be a contiguous, ascending range of the model's coarse grid (a region crossing 0 degrees east is not supported)",
            source=source,
            variable=name,
        )
    return idx


def target_grid(
    extra: dict[str, Any],
    coarse_lat: np.ndarray,
    coarse_lon: np.ndarray,
    method: str,
    factor: int,
    source: str,
    *,
    great_circles: bool = True,
) -> TargetGrid:
    """The fine grid under the coarse cells of the input, from the checkpoint's grids and static fields.

    The whole globe gets the matrices training used (``interpolation.grid_matrices``); a region
    has no far meridians, so its conservative reconstruction is linear along meridians.
    """
    ref_lat = extra["coarse_latitude"].numpy()
    ref_lon = extra["coarse_longitude"].numpy()
    i_lat = _axis_indices(coarse_lat, ref_lat, "latitude", source)
    i_lon = _axis_indices(coarse_lon, ref_lon, "longitude", source)
    rows = (i_lat[:, None] * factor + np.arange(factor)[None]).ravel()  # fine rows under the coarse cells
    cols = (i_lon[:, None] * factor + np.arange(factor)[None]).ravel()
    lat, lon = extra["latitude"].numpy()[rows], extra["longitude"].numpy()[cols]
    periodic = i_lon.size == ref_lon.size
    if periodic and i_lat.size == ref_lat.size:  # the whole globe: the matrices training used
        w_lat, w_lon = interpolation.grid_matrices(
            ref_lat, ref_lon, lat, lon, method=method, great_circles=great_circles
        )
    else:
        areas = cell_area_weights(extra["latitude"].numpy())[rows]  # the fine rows' areas, as in training
        w_lat = interpolation.interp_matrix(ref_lat[i_lat], lat, periodic=False, method=method, weights=areas)
        w_lon = interpolation.interp_matrix(ref_lon[i_lon], lon, periodic=periodic, method=method)
    static = extra["static"][:, rows][:, :, cols]  # (2, H, W)
    geo = torch.from_numpy(geo_channels(lat, lon))  # (4, H, W)
    return TargetGrid(
        lat, lon, periodic, w_lat.astype(np.float32), w_lon.astype(np.float32), torch.cat([static.float(), geo])
    )


class EnsembleDownscaler:
    """A trained ``Downscaler`` with its statistics: coarse physical fields -> fine ensemble."""

    def __init__(
        self,
        model: Downscaler,
        extra: dict[str, Any],
        *,
        device: str | torch.device = "cpu",
        sampler_steps: int | None = None,
        max_batch: int = 64,
    ):
        self.model = model.to(device).eval()
        self.config = model.config
        self.device = torch.device(device)
        self.mean = extra["mean"].float().to(device)  # (C,)
        self.std = extra["std"].float().to(device)  # (C,)
        self.sampler = self.config.sampler(**({} if sampler_steps is None else {"steps": sampler_steps}))
        self.max_batch = max_batch

    def _tiled(self, fn, x: torch.Tensor, periodic: bool) -> torch.Tensor:
        c = self.config
        return tiled_apply(
            fn,
            x,
            tile=c.tile,
            overlap=c.overlap,
            margin=c.margin,
            window=c.window,
            periodic_lon=periodic,
            max_batch=self.max_batch,
        )

    def conditioning(self, coarse: np.ndarray, grid: TargetGrid) -> torch.Tensor:
        """Physical coarse fields (B, C, Hc, Wc) -> conditioning (B, K, H, W)."""
        x = torch.as_tensor(np.asarray(coarse, dtype=np.float32), device=self.device)
        x = (x - self.mean[:, None, None]) / self.std[:, None, None]  # (B, C, Hc, Wc)
        fine = interpolation.apply(x, grid.w_lat, grid.w_lon)  # (B, C, H, W)
        extra = grid.extra.to(self.device)[None].expand(x.shape[0], -1, -1, -1)  # (B, 6, H, W)
        return torch.cat([fine, extra], dim=1)

    @torch.no_grad()
    def regression_mean(self, cond: torch.Tensor, periodic: bool) -> torch.Tensor:
        """Normalised conditional mean (B, C, H, W) from conditioning (B, K, H, W), tile by tile."""
        return self._tiled(self.model.regress, cond, periodic)

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, members: int, periodic: bool, *, generator: torch.Generator) -> torch.Tensor:
        """Normalised ensemble (M, C, H, W) for one conditioning (1, K, H, W)."""
        c = self.config.n_channels
        mean = self.regression_mean(cond, periodic)  # (1, C, H, W)
        cond_full = torch.cat([cond, mean], dim=1).expand(members, -1, -1, -1)  # (M, K + C, H, W)

        def denoiser(r: torch.Tensor, sigma: torch.Tensor, _cond: Any) -> torch.Tensor:
            def on_tile(tile: torch.Tensor) -> torch.Tensor:  # (B', C + K + C, t, t)
                s = sigma[:1].expand(tile.shape[0])
                return self.model.denoise(tile[:, :c], s, tile[:, c:])

            return self._tiled(on_tile, torch.cat([r, cond_full], dim=1), periodic)  # (M, C, H, W)

        shape = (members, c, *cond.shape[-2:])
        latents = torch.randn(shape, generator=generator, dtype=torch.float64).to(self.device)
        residual = heun_sample(
            denoiser, shape, config=self.sampler, device=self.device, latents=latents, generator=None
        )
        return mean + self.model.residual_std.reshape(1, -1, 1, 1) * residual  # (M, C, H, W)

    def to_physical(self, x: torch.Tensor) -> np.ndarray:
        """Normalised (..., C, H, W) -> physical units, numpy float32."""
        return (x * self.std[:, None, None] + self.mean[:, None, None]).float().cpu().numpy()

    def ensemble(self, coarse: np.ndarray, grid: TargetGrid, members: int, *, seed: int = 0) -> np.ndarray:
        """Physical coarse fields (C, Hc, Wc) -> physical fine ensemble (M, C, H, W)."""
        generator = torch.Generator().manual_seed(seed)
        cond = self.conditioning(coarse[None], grid)  # (1, K, H, W)
        return self.to_physical(self.sample(cond, members, grid.periodic, generator=generator))


def load_downscaler(
    checkpoint: str | os.PathLike, *, device: str = "cpu", sampler_steps: int | None = None
) -> tuple[EnsembleDownscaler, dict[str, Any]]:
    """An ``EnsembleDownscaler`` from a diffusion-stage checkpoint (file or run directory)."""
    state = load_downscaler_checkpoint(checkpoint)
    if state["task"].get("stage") != "diffusion":
        raise UsageInputError(
            f"{state['path']}: holds only the regression stage; train the diffusion stage (train downscale --stage diffusion --init ...)"
        )
    return EnsembleDownscaler(
        downscaler_from_checkpoint(state), state["task"], device=device, sampler_steps=sampler_steps
    ), state


def open_coarse(
    source: str | os.PathLike, channels: list[str], *, start: Any = None, end: Any = None, coarsen: int = 1
):
    """The coarse input as an xarray Dataset with the model's variables (forecast stores keep their leads)."""

    variables = sorted({parse_channel(c)[0] for c in channels})
    path = Path(source)
    if path.suffix == ".zarr" and path.exists():
        try:
            ds = xr.open_zarr(path)
        except Exception as exc:  # noqa: BLE001 - anything unreadable is bad input
            raise DataInputError(f"cannot open as a Zarr store ({type(exc).__name__}: {exc})", source=source) from exc
    else:
        ds = open_dataset(str(source), variables=variables)
    check_channels(ds, channels, source)
    if "realization" in ds.dims:
        raise DataInputError(
            "coarse input is an ensemble (realization dimension); select one member first", source=source
        )
    for dim in ("time", "latitude", "longitude"):
        if dim not in ds.dims:
            raise DataInputError(f"coarse input has no {dim!r} dimension", source=source)
    ds = ds[variables]
    if start is not None or end is not None:
        ds = ds.sel(time=slice(start, end))
        if ds.sizes["time"] == 0:
            raise DataInputError(f"no times between {start} and {end}", source=source)
    if coarsen != 1:
        lon = ds["longitude"].values
        if lon.size < 2 or abs(lon.size * float(np.median(np.diff(lon))) - 360.0) > 1e-6 * 360.0:
            # data_catalog.regrid takes longitude as periodic when it makes cell bounds.
            raise DataInputError(
                "--coarsen needs a source covering every longitude; coarsen the region's global field instead",
                source=source,
            )
        ds = coarsen_conservative(ds, coarsen)
    return ds


def coarse_fields(ds, channels: list[str], source: str) -> np.ndarray:
    """Channels of one slab (time [, lead] already selected): (C, Hc, Wc) float32."""
    out = []
    for name in channels:
        var, level = parse_channel(name)
        da = ds[var]
        if level is not None:
            if "level" not in da.dims or not np.any(np.isclose(ds["level"].values, level)):
                raise DataInputError(f"level {level} hPa is missing from the coarse input", source=source, variable=var)
            da = da.sel(level=level)
        out.append(np.asarray(da.transpose("latitude", "longitude").values, dtype=np.float32))
    fields = np.stack(out)
    if not np.all(np.isfinite(fields)):
        raise DataInputError("coarse input holds NaN or infinite values", source=source)
    return fields


FORECASTER_KEYS = (
    "checkpoint_sha256",
    "model_config",
    "training_backend",
    "opu_config",
    "trained_steps",
    "rollout",
    "input_store",
    "created",
)


def check_channels(ds, channels: list[str], source: str | os.PathLike) -> None:
    """Every ``variable`` / ``variable@level`` channel of the model is in ``ds``; else a DataInputError naming it."""
    available = []
    for name, da in ds.data_vars.items():
        levels = ds["level"].values if "level" in da.dims else [None]
        available += [channel_name(name, lev) for lev in levels]
    for channel in channels:
        var, level = parse_channel(channel)
        present = var in ds.data_vars and (
            level is None or ("level" in ds[var].dims and bool(np.any(np.isclose(ds["level"].values, level))))
        )
        if not present:
            raise DataInputError(
                f"the downscaler needs channel {channel!r}, absent from the input "
                f"(it holds {', '.join(available) or 'no variables'})",
                source=source,
                variable=var,
            )


def forecaster_provenance(attrs: dict[str, Any]) -> dict[str, Any]:
    """A forecast input's provenance, keys prefixed ``forecast_`` (present keys only; none for analyses)."""
    return {f"forecast_{k}": attrs[k] for k in FORECASTER_KEYS if k in attrs}


def field_seed(seed: int, init_time: np.datetime64, lead: np.timedelta64) -> int:
    """Noise seed of one (time, lead) field: independent of which other fields are downscaled."""
    hours = [int(np.datetime64(init_time, "h").astype(np.int64)), int(np.timedelta64(lead, "h").astype(np.int64))]
    return int(np.random.SeedSequence([seed, hours[0] % 2**32, hours[1]]).generate_state(1)[0])


def run_downscale(
    checkpoint: str | os.PathLike,
    coarse: str | os.PathLike,
    *,
    members: int,
    out: str | os.PathLike,
    overwrite: bool = False,
    seed: int = 0,
    steps: int | None = None,
    start: Any = None,
    end: Any = None,
    coarsen: int = 1,
    device: str = "cpu",
) -> Path:
    """Downscale every (time, lead) of ``coarse`` into an ``members``-member store at ``out``.

    ``coarse``: an analysis store, a catalog entry or a forecast store (its provenance is kept,
    prefixed ``forecast_``). Each field's noise is seeded by ``seed``, its time and its lead
    (``field_seed``), so downscaling a subset of times gives the same members.
    """

    if members < 1:
        raise UsageInputError(f"--members must be >= 1, got {members}")
    if steps is not None and steps < 1:
        raise UsageInputError(f"--steps must be >= 1, got {steps}")
    check_target(out, overwrite=overwrite)
    engine, state = load_downscaler(checkpoint, device=device, sampler_steps=steps)
    config, extra = engine.config, state["task"]
    channels = list(config.channels)
    ds = open_coarse(coarse, channels, start=start, end=end, coarsen=coarsen)
    grid = target_grid(
        extra,
        ds["latitude"].values,
        ds["longitude"].values,
        config.interpolation,
        config.factor,
        str(coarse),
        great_circles=config.great_circles,
    )
    has_lead = "prediction_timedelta" in ds.dims
    leads = ds["prediction_timedelta"].values if has_lead else np.array([0], dtype="timedelta64[ns]")
    backend = state.get("train_config", {}).get("mode", "backprop")
    attrs = forecast_provenance(
        state["path"],
        {**state, "task": {**extra, "model_config": extra["config"]}},
        ds.attrs.get("source_dataset", absolute_source(coarse)),
        {
            "model_name": f"downscaler-{backend}",
            "product": "downscaled forecast ensemble" if has_lead else "downscaled ensemble",
            "input_store": absolute_source(coarse),
            "members": members,
            "seed": seed,
            "sampler_steps": engine.sampler.steps,
            "coarsen_input": coarsen,
            "channels": channels,
            **forecaster_provenance(ds.attrs),
        },
    )
    writer = ForecastStoreWriter(
        out,
        channels=channels,
        init_times=ds["time"].values,
        lead_times=leads,
        latitude=grid.lat,
        longitude=grid.lon,
        realizations=members,
        attrs=attrs,
        overwrite=overwrite,
    )
    with writer:
        for i_time, time in enumerate(ds["time"].values):
            one_time = ds.isel(time=i_time).load()  # every lead of one time in memory: (L, C, Hc, Wc)
            for i_lead, lead in enumerate(leads):
                slab = one_time.isel(prediction_timedelta=i_lead) if has_lead else one_time
                fields = coarse_fields(slab, channels, str(coarse))  # (C, Hc, Wc)
                writer.write(
                    i_time, i_lead, engine.ensemble(fields, grid, members, seed=field_seed(seed, time, lead))
                )  # (M, C, H, W)
    return Path(out)
