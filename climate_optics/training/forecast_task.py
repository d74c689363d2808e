"""The forecasting ``TrainTask``: a ViT forecaster on (state, future state) pairs from a store.

Times are split chronologically: the last ``val_fraction`` of the record is held out for
validation. Inputs are standardised with the store's per-channel mean and std (plus the past
changes when the model's ``history`` > 1); the target is the tendency divided by
``diff_std * sqrt(lead steps)`` (see ``climate_optics.models.forecaster``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from climate_optics.evaluation.weights import lat_weights
from climate_optics.io.channels import parse_channel, store_channels
from climate_optics.io.windows import ZarrWindowSampler, open_store, time_step_hours
from climate_optics.models import architectures
from climate_optics.models.forecaster import lat_weighted_mse
from data_catalog.errors import DataInputError
from data_catalog.schema import STATIC_VARIABLES
from data_catalog.stats import read_statistics

VALIDATION_CHANNEL = "geopotential@500"


def channel_statistics(statistics, channels: Sequence[str], source: object) -> dict[str, np.ndarray]:
    """mean, std, diff_std arrays (C,) for ``channels`` from a statistics Dataset."""
    out = {k: np.empty(len(channels), dtype=np.float32) for k in ("mean", "std", "diff_std")}
    for i, name in enumerate(channels):
        var, level = parse_channel(name)
        if var not in statistics:
            raise DataInputError("no statistics for this variable; re-ingest the store", source=source, variable=var)
        da = statistics[var]
        if level is not None:
            da = da.sel(level=level)
        for key in out:
            out[key][i] = float(da.sel(statistic=key))
    out["std"] = np.where(out["std"] > 0, out["std"], 1.0).astype(np.float32)
    out["diff_std"] = np.where(out["diff_std"] > 0, out["diff_std"], out["std"]).astype(np.float32)
    return out


class ForecastTask:
    """Forecasting as a ``TrainTask`` (see ``climate_optics.training.task``)."""

    def __init__(
        self,
        store: str | Path,
        config: Any = None,  # a config of the architecture (default: its ``preset`` for this store)
        *,
        preset: str = "tiny",
        architecture: str | None = None,
        variables: Sequence[str] | None = None,
        static: bool = True,
        val_fraction: float = 0.15,
        val_samples: int = 16,
        group_chunks: int = 4,
        prefetch: int = 4,
        seed: int = 0,
        model: torch.nn.Module | None = None,  # train this model (with ``config``) instead of building one
        **overrides: Any,
    ):

        self.store = Path(store)
        ds = open_store(store)
        self.ds = ds
        dt = time_step_hours(ds, store)
        channels = list(config.channels) if config is not None else store_channels(ds, variables)
        statics = [n for n in STATIC_VARIABLES if n in ds.data_vars and "time" not in ds[n].dims] if static else []
        self.architecture = architectures.get(architecture, architectures.FORECASTER)
        if config is None:
            config = self.architecture.make_config(
                preset,
                channels=tuple(channels),
                static_channels=tuple(statics),
                grid=(ds.sizes["latitude"], ds.sizes["longitude"]),
                **overrides,
            )
        if config.step_hours % dt:
            raise DataInputError(
                f"model step {config.step_hours} h is not a multiple of the store's {dt} h time step", source=store
            )
        self.config = config
        self.index_per_step = config.step_hours // dt
        stats = read_statistics(store)
        self.statistics = channel_statistics(stats, config.channels, store)
        self.static_statistics = (
            channel_statistics(stats, config.static_channels, store) if config.static_channels else None
        )
        if model is not None:
            self.model = model  # trained weights and statistics, kept as they are
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # weights depend on the seed only, not on earlier random draws
                self.model = self.architecture.build(config)
            s = self.static_statistics
            self.model.set_statistics(
                self.statistics["mean"],
                self.statistics["std"],
                self.statistics["diff_std"],
                None if s is None else s["mean"],
                None if s is None else s["std"],
            )
        self.feedback_points = self.model.feedback_points()
        self.feedback_output, self.feedback_error = self.model.feedback_error()  # the ViT: per-token DFA error
        self.feedback_norm = "norm"  # the final LayerNorm before the head (TrainConfig.feedback_norm)
        self.latitudes = torch.tensor(np.asarray(ds["latitude"].values, dtype=np.float32))
        self.weights = torch.from_numpy(lat_weights(ds["latitude"].values)).float()  # (H,) cell area, mean 1
        self.static_fields = self._read_static(ds)  # (S, H, W) physical, or None

        n_time = ds.sizes["time"]
        self.n_val = max(1, int(round(n_time * val_fraction)))
        self.val_start = n_time - self.n_val
        # Window offsets (time indices): the state, the leads, then the earlier states of the history.
        self.lead_offsets = tuple(k * self.index_per_step for k in sorted(set(config.train_lead_steps)))
        self.past_offsets = tuple(-j * self.index_per_step for j in range(1, config.history))
        self.offsets = (0,) + self.lead_offsets + self.past_offsets
        self.sampler_options = dict(group_chunks=group_chunks, prefetch=prefetch)
        self.val_samples = val_samples
        self._val_batch: dict[str, torch.Tensor] | None = None
        self._sampler: ZarrWindowSampler | None = None

    def _read_static(self, ds) -> torch.Tensor | None:
        if not self.config.static_channels:
            return None
        fields = [
            np.asarray(ds[n].transpose("latitude", "longitude").values, dtype=np.float32)
            for n in self.config.static_channels
        ]
        return torch.from_numpy(np.stack(fields))  # (S, H, W)

    def sampler(self, seed: int, shard: tuple[int, int] = (0, 1)) -> ZarrWindowSampler:
        starts = np.arange(-min(self.offsets), self.val_start - max(self.offsets))
        return ZarrWindowSampler(
            self.store,
            self.config.channels,
            starts=starts,
            offsets=self.offsets,
            seed=seed,
            shard=shard,
            **self.sampler_options,
        )

    # -- TrainTask -------------------------------------------------------------------------------
    def batches(
        self, rng: np.random.Generator, batch_size: int, start_step: int = 0, shard: tuple[int, int] = (0, 1)
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Normalised inputs ``x`` (B, C * history, H, W), targets ``y``, leads ``lead`` (B,) hours, ``static``.

        ``shard=(rank, world)``: this rank's share of a global batch of ``world * batch_size``.
        """
        seed = int(rng.integers(2**31))
        sampler = self._sampler = self.sampler(seed, shard)
        leads = np.asarray(sorted(set(self.config.train_lead_steps)))
        mean, std = self.statistics["mean"][:, None, None], self.statistics["std"][:, None, None]
        diff_std = self.statistics["diff_std"][:, None, None]
        n_lead = len(self.lead_offsets)
        static = None if self.static_fields is None else self.model.normalise_static(self.static_fields[None])[0]
        step = start_step
        for raw in sampler.batches(batch_size, start_step):
            fields = raw["fields"]  # (B, O, C, H, W)
            draw = np.random.default_rng([seed, step, 7]).integers(
                0, self.leads_drawn(step, leads.size), size=batch_size * sampler.world
            )
            choice = draw[sampler.own(batch_size)]  # (B,)
            future = fields[np.arange(batch_size), 1 + choice]  # (B, C, H, W)
            k = leads[choice].astype(np.float32)[:, None, None, None]
            states = np.concatenate(
                [fields[:, :1], fields[:, 1 + n_lead :]], axis=1
            )  # (B, history, C, H, W), newest first
            changes = (states[:, :-1] - states[:, 1:]) / diff_std  # (B, history - 1, C, H, W)
            batch = {
                "x": torch.from_numpy(
                    np.concatenate(
                        [(fields[:, 0] - mean) / std, changes.reshape(batch_size, -1, *changes.shape[-2:])], axis=1
                    )
                ),
                "y": torch.from_numpy((future - fields[:, 0]) / (diff_std * np.sqrt(k))),
                "lead": torch.from_numpy(leads[choice].astype(np.float32) * self.config.step_hours),
            }
            if static is not None:
                batch["static"] = static.expand(batch_size, *static.shape)
            yield batch
            step += 1

    def leads_drawn(self, step: int, n_leads: int) -> int:
        """How many of the (sorted) training leads the batch of ``step`` draws from: all of them."""
        return n_leads

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        pred = model(batch["x"], batch["lead"], batch.get("static"))  # (B, C, H, W)
        return lat_weighted_mse(pred, batch["y"], self.weights.to(pred.device))

    def validation_batch(self) -> dict[str, torch.Tensor]:
        """Held-out (state, next state, earlier states) one model step apart, physical units."""
        if self._val_batch is None:
            ips, back = self.index_per_step, (self.config.history - 1) * self.index_per_step
            starts = np.arange(max(self.val_start, back), self.ds.sizes["time"] - ips)
            if starts.size == 0:
                raise DataInputError(
                    "validation split too short for one model step; raise val_fraction", source=self.store
                )
            starts = starts[np.linspace(0, starts.size - 1, min(self.val_samples, starts.size)).round().astype(int)]
            sampler = ZarrWindowSampler(
                self.store, self.config.channels, starts=starts, offsets=(-back, ips), group_chunks=1
            )
            picks = [back + ips] + [back - j * ips for j in range(self.config.history)]  # future, state, earlier states
            fields = np.stack(
                [sampler.read_times(t - back, t + ips + 1)[picks] for t in starts]
            )  # (V, 1 + history, C, H, W)
            self._val_batch = {
                "future": torch.from_numpy(fields[:, 0]),
                "state": torch.from_numpy(fields[:, 1]),
                "previous": torch.from_numpy(fields[:, 2:]),
            }
        return self._val_batch

    def validate(self, model: torch.nn.Module) -> dict[str, float]:
        """Lat-weighted loss and RMSE (physical units) at one step, with persistence for scale."""
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in self.validation_batch().items()}
        state, future = batch["state"], batch["future"]
        static = (
            None
            if self.static_fields is None
            else self.static_fields[None].expand(state.shape[0], -1, -1, -1).to(device)
        )
        lead = torch.full((state.shape[0],), float(self.config.step_hours), device=device)
        pred = model(
            model.inputs(state, batch["previous"]), lead, model.normalise_static(static)
        ).float()  # (V, C, H, W)
        weights = self.weights.to(device)
        scores = {"loss": float(lat_weighted_mse(pred, model.target(state, future, lead), weights))}
        forecast = state + pred * model.tendency_scale(lead)
        if VALIDATION_CHANNEL in self.config.channels:
            c = self.config.channels.index(VALIDATION_CHANNEL)
            lead_h = self.config.step_hours
            scores[f"rmse_z500_{lead_h}h"] = float(lat_weighted_mse(forecast[:, c], future[:, c], weights).sqrt())
            scores[f"persistence_rmse_z500_{lead_h}h"] = float(
                lat_weighted_mse(state[:, c], future[:, c], weights).sqrt()
            )
        return scores

    def checkpoint_extra(self) -> dict[str, Any]:
        to_t = lambda d: {k: torch.from_numpy(np.asarray(v)) for k, v in d.items()}  # noqa: E731
        return {
            "kind": "forecast",
            "architecture": self.architecture.name,
            "model_config": self.config.to_dict(),
            "statistics": to_t(self.statistics),
            "static_statistics": to_t(self.static_statistics) if self.static_statistics else {},
            "data": {
                "store": str(self.store),
                "source_dataset": str(self.ds.attrs.get("source_dataset", self.store)),
                "time_step_hours": int(self.config.step_hours // self.index_per_step),
                "val_start_time": str(self.ds["time"].values[self.val_start]),
            },
        }
