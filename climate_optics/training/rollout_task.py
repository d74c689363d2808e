"""Autoregressive fine-tuning of a trained forecaster: the k-th step of its own rollout is trained.

``RolloutForecastTask`` draws, per sample, a rollout depth k in 1..``rollout_steps``, runs the
model k - 1 model steps from the analysis without gradients (its own forecasts become the input,
as at forecast time), then trains the k-th step against the analysis k steps ahead (the
"pushforward" scheme: the gradient does not flow through the earlier steps). Each training step
is then one forward pass with gradients, so DFA (and optical DFA) take their per-token error at
the rollout step being trained, exactly as in one-step training.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from climate_optics.models.forecaster import Forecaster, lat_weighted_mse
from climate_optics.training.forecast_task import ForecastTask


class RolloutForecastTask(ForecastTask):
    """A ``TrainTask`` that fine-tunes ``model`` on rollouts of up to ``rollout_steps`` model steps."""

    def __init__(self, store: str | Path, model: Forecaster, rollout_steps: int, **options: Any):
        if rollout_steps < 1:
            raise ValueError(f"rollout_steps must be >= 1, got {rollout_steps}")
        config = dataclasses.replace(model.config, train_lead_steps=tuple(range(1, rollout_steps + 1)))
        super().__init__(store, config, **options)  # the windows reach rollout_steps model steps ahead
        self.model = model
        self.rollout_steps = rollout_steps

    def checkpoint_extra(self) -> dict[str, Any]:
        extra = super().checkpoint_extra()
        extra["model_config"] = self.model.config.to_dict()  # the model's own config, not the fine-tuning windows'
        return extra

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, y, lead = batch["x"], batch["y"], batch["lead"]  # (B, C * history, H, W), (B, C, H, W), (B,) hours
        cfg = model.config
        c, hist = len(cfg.channels), cfg.history
        mean, std, dstd = (t.view(1, -1, 1, 1) for t in (model.mean, model.std, model.diff_std))
        k = torch.round(lead / cfg.step_hours).long()  # (B,) rollout depth of each sample
        state = x[:, :c] * std + mean  # (B, C, H, W) physical analysis at t
        earlier = [state]
        for j in range(1, hist):  # x holds (s_{j-1} - s_j) / diff_std for j = 1 .. history - 1
            earlier.append(earlier[-1] - x[:, j * c : (j + 1) * c] * dstd)
        past = torch.stack(earlier[1:], dim=1) if hist > 1 else None  # (B, history - 1, C, H, W)
        future = state + y * dstd * torch.sqrt(k.float()).view(-1, 1, 1, 1)  # (B, C, H, W) analysis at t + k steps
        static = batch.get("static")
        step = torch.full_like(lead, float(cfg.step_hours))  # (B,)
        current = state
        with torch.no_grad():
            for i in range(1, int(k.max())):
                nxt = current + model(model.inputs(current, past), step, static).float() * model.tendency_scale(step)
                rolling = (k > i).view(-1, 1, 1, 1)  # samples whose rollout goes on
                if past is not None:
                    shifted = torch.cat([current[:, None], past[:, :-1]], dim=1)  # (B, history - 1, C, H, W)
                    past = torch.where(rolling[:, None], shifted, past)
                current = torch.where(rolling, nxt, current)
        pred = model(model.inputs(current, past), step, static)  # (B, C, H, W): the trained step
        return lat_weighted_mse(pred, model.target(current, future, step), self.weights.to(pred.device))
