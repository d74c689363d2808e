"""Autoregressive fine-tuning of a trained forecaster: the k-th step of its own rollout is trained.

``RolloutForecastTask`` draws, per sample, a rollout depth k in 1..``rollout_steps``, runs the
model k - 1 model steps from the analysis without gradients (its own forecasts become the input,
as at forecast time), then trains the k-th step against the analysis k steps ahead (the
"pushforward" scheme: the gradient does not flow through the earlier steps). Each training step
is then one forward pass with gradients, so DFA (and optical DFA) take their per-token error at
the rollout step being trained, exactly as in one-step training.

With ``one_step_until=S`` the same task first trains one-step (depth 1) until step S and on
rollouts after it: a "rollout tail" inside one run, with one optimiser and one schedule.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from climate_optics.errors import UsageInputError
from climate_optics.models.forecaster import Forecaster, lat_weighted_mse
from climate_optics.training.forecast_task import ForecastTask
from climate_optics.training.rollout_defaults import ROLLOUT_DEPTH, ROLLOUT_TAIL


def with_rollout_tail(
    task: ForecastTask, steps: int, depth: int = ROLLOUT_DEPTH, tail: float = ROLLOUT_TAIL, *, seed: int = 0
) -> ForecastTask:
    """``task``'s model trained one-step for the first ``1 - tail`` of ``steps``, then on rollouts of
    depth 1..``depth`` (``task`` itself when ``depth`` is 1 or ``tail`` 0)."""
    if depth < 1 or not 0 <= tail <= 1:
        raise UsageInputError(f"rollout depth must be >= 1 and its tail in [0, 1], got {depth} and {tail}")
    if depth == 1 or tail == 0:
        return task
    if tuple(task.config.train_lead_steps) != (1,):
        raise UsageInputError("a rollout trains 6-hour steps of the model's rollout; it cannot train other leads")
    return RolloutForecastTask(
        task.store,
        task.model,
        depth,
        one_step_until=round(steps * (1 - tail)),
        seed=seed,
        architecture=task.architecture.name,
    )


class RolloutForecastTask(ForecastTask):
    """A ``TrainTask`` that fine-tunes ``model`` on rollouts of up to ``rollout_steps`` model steps."""

    def __init__(
        self, store: str | Path, model: Forecaster, rollout_steps: int, *, one_step_until: int = 0, **options: Any
    ):
        if rollout_steps < 1:
            raise ValueError(f"rollout_steps must be >= 1, got {rollout_steps}")
        config = dataclasses.replace(model.config, train_lead_steps=tuple(range(1, rollout_steps + 1)))
        super().__init__(store, config, model=model, **options)  # the windows reach rollout_steps steps ahead
        self.rollout_steps = rollout_steps
        self.one_step_until = one_step_until  # batches before this step are one-step (a rollout tail after it)

    def objective(self, step: int) -> str:
        """What the loop's (1-based) ``step`` trains, for its log: ``one-step`` or ``rollout``."""
        return "rollout" if step - 1 >= self.one_step_until else "one-step"

    def leads_drawn(self, step: int, n_leads: int) -> int:
        """Depth 1 only before ``one_step_until``, then every depth 1..``rollout_steps``."""
        return 1 if step < self.one_step_until else n_leads

    def checkpoint_extra(self) -> dict[str, Any]:
        extra = super().checkpoint_extra()
        extra["model_config"] = self.model.config.to_dict()  # the model's own config, not the fine-tuning windows'
        extra["rollout"] = {"depth": self.rollout_steps, "one_step_until": self.one_step_until}
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
