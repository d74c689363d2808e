"""The ViT forecaster: a state of the atmosphere in, its normalised tendency out.

In the line of ClimaX (Nguyen et al. 2023, arXiv:2301.10343): each input variable is
patch-embedded separately, the variable tokens of each patch are aggregated into one token by
cross-attention, a fixed 2D sine-cosine position embedding and a lead-time embedding are added,
a stack of pre-norm Transformer blocks mixes the tokens and a linear head maps them back to
fields on the input grid.

The network predicts the normalised tendency over a lead of ``k`` steps of ``step_hours``:
``(x(t + k step) - x(t)) / (diff_std * sqrt(k))`` where ``diff_std`` is the standard deviation
of 6-hour differences from the store's statistics (for ``k = 1`` exactly the 6-hour normalised
tendency; the ``sqrt(k)`` keeps longer direct leads at unit scale under a random-walk model).
Inputs are standardised with the per-channel mean and std. With ``history = n > 1`` the model
also sees the ``n - 1`` previous 6-hour changes ``(x(t - j step + step) - x(t - j step)) / diff_std``
as extra input channels: the velocity of the features, which an advective flow needs (on the
embedded synthetic reanalysis it cuts the 24-hour Z500 error of the tiny model by 40%). The statistics live
in the model's buffers, so a checkpoint alone turns physical fields into physical forecasts.

Shapes: B batch, C prognostic channels, S static channels, H x W grid, N tokens, D width.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from climate_optics.errors import UsageInputError
from climate_optics.models.blocks import (
    Block,
    PatchHead,
    ScalarEmbedding,
    VariablePatchEmbed,
    pad_to_multiple,
    sincos_pos_embed_2d,
)

# Channel names are "variable" or "variable@level" (level in hPa).
DEFAULT_CHANNELS = (
    "geopotential@500",
    "temperature@850",
    "u_component_of_wind@850",
    "v_component_of_wind@850",
    "2m_temperature",
    "mean_sea_level_pressure",
)

PRESETS: dict[str, dict[str, Any]] = {
    # Every preset takes history=2 (the last 6-hour change as input): on the synthetic reanalysis it
    # cuts the tiny model's 24-hour Z500 error by 40% (0.98x -> 0.60x persistence, bench_skill.py);
    # it only widens the patch embedding, so base and 1b keep the same input contract
    # (their skill with it is not measured on CPU; pass history=1 to compare).
    # CI and laptops: well under 1M parameters, trains in a minute on a CPU core.
    "tiny": dict(dim=96, depth=3, heads=4, mlp_ratio=2.0, patch=4, history=2),
    # about 100M parameters: a ClimaX-base-like model for one GPU.
    "base": dict(dim=768, depth=14, heads=12, mlp_ratio=4.0, patch=2, history=2),
    # at least 1.0e9 parameters: the scale of the optical-DFA paper's largest Transformers.
    "1b": dict(dim=2048, depth=20, heads=16, mlp_ratio=4.0, patch=2, history=2),
}


@dataclass
class ForecasterConfig:
    """Architecture and data layout of a forecaster; saved in checkpoints and forecast stores."""

    channels: tuple[str, ...] = DEFAULT_CHANNELS  # prognostic channels, "variable" or "variable@level"
    static_channels: tuple[str, ...] = ()  # static input-only fields (e.g. "land_sea_mask")
    grid: tuple[int, int] = (32, 64)  # (latitude, longitude) points of the input fields
    patch: int = 4  # patch side in grid points; the grid is padded to a multiple of it
    dim: int = 96  # token width D
    depth: int = 3  # Transformer blocks
    heads: int = 4  # attention heads (dim must be divisible by 4 * heads for the embeddings)
    mlp_ratio: float = 2.0  # MLP hidden width / dim
    head_depth: int = 1  # layers of the per-token output MLP (1: linear; docs/dfa_training.md, every mode)
    step_hours: int = 6  # the model step: autoregressive rollouts move by this lead
    train_lead_steps: tuple[int, ...] = (1,)  # leads (in steps) seen in training, for direct conditioning
    history: int = 1  # input states: the current one and history - 1 earlier ones, one step apart
    pixel_skip: bool = False  # add a per-grid-point linear map of the inputs to the tendency (see Forecaster)
    preset: str = "custom"  # name of the preset this config came from

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        self.static_channels = tuple(self.static_channels)
        self.grid = tuple(int(g) for g in self.grid)  # type: ignore[assignment]
        self.train_lead_steps = tuple(int(k) for k in self.train_lead_steps)
        checks = [
            (len(self.channels) >= 1, "channels must name at least one prognostic channel"),
            (
                len(set(self.channels + self.static_channels)) == len(self.channels) + len(self.static_channels),
                "channel names must be unique",
            ),
            (len(self.grid) == 2 and min(self.grid) >= 1, f"grid must be two positive sizes, got {self.grid}"),
            (self.patch >= 1, f"patch must be >= 1, got {self.patch}"),
            (self.depth >= 1 and self.heads >= 1, "depth and heads must be >= 1"),
            (
                self.dim % 4 == 0 and self.dim % self.heads == 0,
                f"dim ({self.dim}) must be divisible by 4 and by heads ({self.heads})",
            ),
            (self.mlp_ratio > 0 and self.head_depth >= 1, "mlp_ratio must be positive and head_depth >= 1"),
            (self.step_hours >= 1, f"step_hours must be >= 1, got {self.step_hours}"),
            (
                len(self.train_lead_steps) >= 1 and min(self.train_lead_steps) >= 1,
                "train_lead_steps must be positive step counts",
            ),
            (self.history >= 1, f"history must be >= 1, got {self.history}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageInputError(f"forecaster config: {message}")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "ForecasterConfig":
        """A preset (``tiny``, ``base``, ``1b``) with data-dependent fields overridden."""
        if name not in PRESETS:
            raise UsageInputError(f"unknown forecaster preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], "preset": name, **overrides})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("channels", "static_channels", "grid", "train_lead_steps"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ForecasterConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def lat_weighted_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over (B, C, H, W) of the squared error weighted by ``weights`` (H,) along latitude.

    ``weights``: ``climate_optics.evaluation.weights.lat_weights`` of the grid (cell area, mean 1),
    the weighting every metric uses."""
    return ((pred.float() - target.float()) ** 2 * weights.view(-1, 1)).mean()


class Forecaster(nn.Module):
    """ViT forecaster. ``forward(x, lead_hours, static)`` -> normalised tendency."""

    def __init__(self, config: ForecasterConfig):
        super().__init__()
        self.config = config
        c, s = len(config.channels), len(config.static_channels)
        height, width = config.grid
        self.h = math.ceil(height / config.patch)
        self.w = math.ceil(width / config.patch)
        self.embed = VariablePatchEmbed(c * config.history + s, config.patch, config.dim, config.heads)
        self.register_buffer(
            "pos_embed", sincos_pos_embed_2d(config.dim, self.h, self.w)[None], persistent=False
        )  # (1, N, D)
        self.lead_embed = ScalarEmbedding(config.dim, scale=1.0 / config.step_hours)
        self.blocks = nn.ModuleList(Block(config.dim, config.heads, config.mlp_ratio) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.dim)
        self.head = PatchHead(config.dim, c, config.patch, depth=config.head_depth)
        # pixel_skip: a 1x1 convolution from every input channel to the tendency, started at zero. A
        # 6-hour step of a diurnal cycle is linear at each grid point (the state and its last change
        # give its phase), which a patch head reaches only through the tokens; after the last
        # feedback point, DFA trains it by its true gradient (docs/dfa_training.md).
        self.skip = nn.Conv2d(c * config.history + s, c, 1) if config.pixel_skip else None
        if self.skip is not None:
            nn.init.zeros_(self.skip.weight)
            nn.init.zeros_(self.skip.bias)
        # Normalisation statistics (set with set_statistics; identity until then).
        self.register_buffer("mean", torch.zeros(c))
        self.register_buffer("std", torch.ones(c))
        self.register_buffer("diff_std", torch.ones(c))
        self.register_buffer("static_mean", torch.zeros(s))
        self.register_buffer("static_std", torch.ones(s))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def set_statistics(self, mean, std, diff_std, static_mean=None, static_std=None) -> None:
        """Per-channel statistics in physical units (sequences or tensors of length C / S)."""
        for name, value in (
            ("mean", mean),
            ("std", std),
            ("diff_std", diff_std),
            ("static_mean", static_mean),
            ("static_std", static_std),
        ):
            if value is not None:
                getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float32))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- the network ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, lead_hours: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised input (B, C * history, H, W) (see ``inputs``), lead (B,) hours, normalised statics (B, S, H, W) -> (B, C, H, W)."""
        if static is not None and static.shape[1]:
            x = torch.cat([x, static.to(x.dtype)], dim=1)  # (B, C+S, H, W)
        local = self.skip(x) if self.skip is not None else 0.0  # (B, C, H, W)
        x, (height, width) = pad_to_multiple(x, self.config.patch)  # (B, C+S, h*p, w*p)
        tokens = self.embed(x) + self.pos_embed  # (B, N, D)
        tokens = tokens + self.lead_embed(lead_hours)[:, None, :]  # (B, N, D)
        for block in self.blocks:
            tokens = block(tokens)  # (B, N, D)
        fields_ = self.head(self.norm(tokens), self.h, self.w)  # (B, C, h*p, w*p)
        return fields_[..., :height, :width] + local  # (B, C, H, W)

    # -- physical units ------------------------------------------------------------------------
    def tendency_scale(self, lead_hours: torch.Tensor) -> torch.Tensor:
        """diff_std * sqrt(lead / step): (B,) -> (B, C, 1, 1)."""
        k = lead_hours.float().reshape(-1, 1, 1, 1) / self.config.step_hours
        return self.diff_std.view(1, -1, 1, 1) * torch.sqrt(k)

    def normalise(self, state: torch.Tensor) -> torch.Tensor:
        return (state - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)  # (B, C, H, W)

    def inputs(self, state: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """The network input from physical fields: the normalised state, then the normalised past changes.

        ``state`` (B, C, H, W) at time t; ``previous`` (B, history - 1, C, H, W) at t - step,
        t - 2 step, ... (most recent first; a (B, C, H, W) tensor is accepted for history 2).
        Returns (B, C * history, H, W): ``normalise(state)``, then for j = 1 .. history - 1 the
        change ``(x(t - (j - 1) step) - x(t - j step)) / diff_std``.
        """
        need = self.config.history - 1
        x = self.normalise(state)  # (B, C, H, W)
        if need == 0:
            return x
        if previous is None:
            raise UsageInputError(
                f"this forecaster needs the {need} previous state(s), {self.config.step_hours} h apart, besides the current one"
            )
        if previous.dim() == state.dim():
            previous = previous[:, None]  # (B, 1, C, H, W)
        if previous.shape[1] < need:
            raise UsageInputError(f"this forecaster needs {need} previous state(s), got {previous.shape[1]}")
        states = torch.cat([state[:, None], previous[:, :need].to(state.dtype)], dim=1)  # (B, history, C, H, W)
        changes = (states[:, :-1] - states[:, 1:]) / self.diff_std.view(1, 1, -1, 1, 1)  # (B, history - 1, C, H, W)
        return torch.cat([x, changes.flatten(1, 2)], dim=1)  # (B, C * history, H, W)

    def normalise_static(self, static: torch.Tensor | None) -> torch.Tensor | None:
        if static is None:
            return None
        return (static - self.static_mean.view(1, -1, 1, 1)) / self.static_std.view(1, -1, 1, 1)  # (B, S, H, W)

    def target(self, state: torch.Tensor, future: torch.Tensor, lead_hours: torch.Tensor) -> torch.Tensor:
        """The training target: normalised tendency of physical (B, C, H, W) fields."""
        return (future - state) / self.tendency_scale(lead_hours)

    @torch.no_grad()
    def predict(
        self,
        state: torch.Tensor,
        lead_hours: float | torch.Tensor,
        static: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Physical state (B, C, H, W) -> physical state ``lead_hours`` later, in one direct step.

        ``previous``: the earlier states the model's ``history`` needs (see ``inputs``).
        """
        lead = torch.as_tensor(lead_hours, dtype=torch.float32, device=state.device).expand(state.shape[0])  # (B,)
        tendency = self(self.inputs(state, previous), lead, self.normalise_static(static))  # (B, C, H, W)
        return state + tendency.float() * self.tendency_scale(lead)

    def feedback_points(self) -> list[str]:
        """DFA feedback points: every Transformer block (``feedback_points``)."""
        return feedback_points(self)

    def feedback_error(self) -> tuple[str | None, str]:
        """Where DFA reads the error and its granularity (``FEEDBACK_OUTPUT``, ``FEEDBACK_ERROR``)."""
        return FEEDBACK_OUTPUT, FEEDBACK_ERROR

    @torch.no_grad()
    def rollout(
        self,
        state: torch.Tensor,
        lead_hours: list[int],
        static: torch.Tensor | None = None,
        *,
        direct: bool = False,
        previous: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Forecasts at each lead in ``lead_hours`` (multiples of ``step_hours``), physical units.

        Autoregressive by default (repeated ``step_hours`` steps, the last ``history`` states
        carried forward); ``direct=True`` predicts each lead in one step with lead-time conditioning.
        """
        step = self.config.step_hours
        bad = [h for h in lead_hours if h <= 0 or h % step]
        if bad:
            raise UsageInputError(f"lead times must be positive multiples of the model step ({step} h), got {bad[0]} h")
        self.inputs(state[:1], None if previous is None else previous[:1])  # fail early without the needed history
        if direct:
            return [self.predict(state, float(h), static, previous) for h in lead_hours]
        need = self.config.history - 1
        past = None
        if need:
            past = (
                previous[:, None] if previous.dim() == state.dim() else previous[:, :need]
            )  # (B, history - 1, C, H, W)
        out, current, done = [], state, 0
        for hours in sorted(lead_hours):
            while done < hours:
                nxt = self.predict(current, float(step), static, past)
                if need:
                    past = torch.cat([current[:, None], past[:, : need - 1]], dim=1)  # (B, history - 1, C, H, W)
                current, done = nxt, done + step
            out.append(current)
        order = sorted(range(len(lead_hours)), key=lambda i: lead_hours[i])
        result: list[torch.Tensor] = [torch.empty(0)] * len(lead_hours)
        for position, index in enumerate(order):
            result[index] = out[position]
        return result


def earlier_states(span: np.ndarray, local: np.ndarray, history: int, index_per_step: int) -> torch.Tensor | None:
    """The ``previous`` argument of ``Forecaster.predict`` from consecutive store times.

    ``span`` (T, C, H, W) physical fields, ``local`` (B,) indices of the current states in it;
    returns (B, history - 1, C, H, W) at 1, 2, ... model steps earlier, or None for history 1.
    """
    if history <= 1:
        return None
    return torch.from_numpy(np.stack([span[local - j * index_per_step] for j in range(1, history)], axis=1))


def feedback_points(model: Forecaster) -> list[str]:
    """DFA feedback points: every Transformer block."""
    return [f"blocks.{i}" for i in range(len(model.blocks))]


# Where DFA reads the error: the head's per-token output (B, N, p*p*C), before ``unpatchify``, so
# that the error of each patch is projected to the signal of its own token (``error="token"``).
# A per-sample error (B, C*H*W) mixes every location into every token's signal; a token of this
# local architecture cannot follow such a signal, and under the command line's defaults (6-hour
# lead, all channels) DFA then left the forecaster at persistence (loss 1.08 -> 1.076 in 100 steps,
# against 0.89 per token and 0.79 by back-propagation; docs/dfa_training.md).
FEEDBACK_OUTPUT = "head.mlp"
FEEDBACK_ERROR = "token"


def count_parameters(config: ForecasterConfig) -> int:
    """Parameters of a forecaster, counted on the meta device (no memory allocated)."""
    with torch.device("meta"):
        return Forecaster(config).num_parameters()


__all__ = [
    "ForecasterConfig",
    "Forecaster",
    "PRESETS",
    "feedback_points",
    "FEEDBACK_OUTPUT",
    "FEEDBACK_ERROR",
    "count_parameters",
    "earlier_states",
    "lat_weighted_mse",
]
