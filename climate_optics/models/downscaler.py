"""Residual diffusion downscaler in the line of CorrDiff (Mardani et al. 2023, arXiv:2309.15214).

Two networks share one backbone design, chosen by ``DownscalerConfig.backbone``: a small
UNet (``models.unet``, the default, as in CorrDiff) or a ViT built from the Transformer blocks
shared with the forecaster (``FieldViT``). Why the UNet is the default, measured on the
embedded synthetic reanalysis (2.8125 deg truth, factor 2, channels 2m_temperature,
geopotential@500, mean_sea_level_pressure, u_component_of_wind@850; tiny preset, 300 steps
per stage, batch 8, back-propagation, 4 members, 4 held-out times): regression validation MSE
0.00076 (UNet) vs 0.0026 (ViT) vs 0.0049 (interpolation); ensemble CRPS lower by a factor
1.6-2.5 on every channel (2m_temperature 0.26 vs 0.41 K, bilinear MAE 0.63 K); spectrum
error above the coarse Nyquist wavenumber 0.09 vs 0.53 (bilinear 1.59) on 2m_temperature.
Convolutions see sub-patch structure from the first step; the ViT's 2x2 patch tokens must
learn it. Both train in every mode; their blocks are the DFA feedback points.

1. ``regression``: the conditional mean. Input ``cond`` (B, K, H, W) = the coarse fields
   interpolated to the fine grid (C channels, normalised), the static fields (land-sea mask,
   surface geopotential) and sin/cos of latitude and longitude; output the fine fields
   (B, C, H, W), predicted as a correction to the interpolated coarse fields, in units of each
   channel's interpolation error (``correction_std``).

Why the ``conservative`` interpolation and the per-channel correction scale, measured the way
``tests/climate_optics/test_downscaling_skill.py`` trains (140-day synthetic reanalysis, 100
back-propagation steps per stage, 2 held-out times, 4 members, 8 sampler steps; the spectrum
error is ``climate_optics.evaluation.downscale_skill``'s, over zonal wavenumbers 33-41 for Z500, 33-64 for
T2m). With bilinear conditioning and an unscaled correction, the geopotential@500 ensemble put
30-3600x the truth's energy at wavenumbers 33-41 (spectrum error 2.31, bilinear 0.74): the
regression mean already carried bilinear's spectral images and its own artefacts there, since a
correction of Z500 (interpolation error 0.5 % of its std) weighed nothing in the MSE, and the
residual it left (std 53 m2 s-2, mostly large-scale) scaled the denoiser's near-white error.
With both changes: CRPS / bilinear MAE 0.30 (was 0.47) for 2m_temperature and 0.14 (was 0.51)
for Z500; Z500 residual std 16 m2 s-2, mean's spectrum error 1.06 (now too little energy, not
too much), ensemble 1.21 with 8 sampler steps and 0.77 with 18, against bilinear's 0.74;
2m_temperature 0.09 / 0.08 (bilinear 1.60). Reconstructing meridians along great circles
(``great_circles``, ``interpolation.great_circle_matrices``) instead of linearly removed the
meridional grid-scale artefact the mean and the residual had carried: Z500 CRPS / bilinear MAE
0.13 -> 0.055, spectrum error 0.36-0.60 over three seeds (100 regression + 600 diffusion steps,
18 sampler steps; linear meridians 0.57-0.85), docs/results.md "Downscaling skill".
2. ``denoiser``: an EDM denoiser (Karras et al. 2022, ``models.edm``) of the *residual*
   ``r = (truth - mean) / residual_std`` (unit variance per channel, hence ``sigma_data=1``),
   conditioned on ``cond`` and on the regression mean.

A sample is ``mean + residual_std * r`` with ``r`` drawn by the Heun sampler; an ensemble of
M members draws M residuals for the same mean. The backbone works on any grid whose sides are
multiples of its patch size, so training uses random regional patches and inference tiles
the globe (``inference.tiling``).

Shapes: B batch, C fine-field channels, K = C + 6 conditioning channels, H x W grid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from climate_optics.errors import UsageInputError
from climate_optics.models.blocks import Block, PatchHead, ScalarEmbedding, pad_to_multiple, sincos_pos_embed_2d
from climate_optics.models.edm import EDMLossConfig, EDMPrecond, SamplerConfig
from climate_optics.models.unet import FieldUNet

STATIC_CHANNELS = ("land_sea_mask", "geopotential_at_surface")
GEO_CHANNELS = ("sin_latitude", "cos_latitude", "sin_longitude", "cos_longitude")
WINDOWS = ("cosine", "linear")
BACKBONES = ("vit", "unet")
INTERPOLATIONS = ("linear", "cubic", "conservative")


@dataclass
class DownscalerConfig:
    """Everything that defines a downscaler; saved in every checkpoint and output store."""

    channels: tuple[str, ...] = ()  # fine-field channels, "name" or "name@level" (filled from the store)
    factor: int = 2  # fine cells per coarse cell along each axis
    interpolation: str = (
        "conservative"  # coarse -> fine interpolation of the conditioning: conservative | linear | cubic
    )
    great_circles: bool = True  # conservative on a global grid: meridians band-limited along great circles (interpolation.great_circle_matrices)
    tile: int = 32  # side of training patches and inference tiles, in fine cells
    overlap: int = 8  # tile overlap at inference, in fine cells
    margin: int = 2  # cells at a tile's inner edges that get zero blending weight
    window: str = "cosine"  # blending ramp across the overlap: cosine | linear
    backbone: str = "unet"  # network of both stages: unet (models.unet) | vit (the shared Transformer blocks)
    unet_width: int = 32  # UNet channels at full resolution (2x at half resolution)
    patch: int = 2  # ViT patch size (fine cells per token side)
    dim: int = 64  # token width
    depth: int = 3  # Transformer blocks per network
    heads: int = 4  # attention heads
    mlp_ratio: float = 2.0  # MLP hidden width / token width
    sigma_data: float = 1.0  # EDM data std; residuals are normalised to unit variance
    p_mean: float = -1.2  # EDM training: ln(sigma) ~ N(p_mean, p_std^2)
    p_std: float = 1.2
    sampler_steps: int = 18  # Heun sampler noise levels at inference
    s_churn: float = 0.0  # sampler stochasticity (0 = deterministic ODE)
    sigma_max: float = 80.0
    sigma_min: float = 0.002

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        checks = [
            (self.factor >= 1, f"factor must be >= 1, got {self.factor}"),
            (
                self.interpolation in INTERPOLATIONS,
                f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}",
            ),
            (
                self.patch >= 1 and self.tile % self.patch == 0,
                f"tile ({self.tile}) must be a multiple of patch ({self.patch})",
            ),
            (
                0 <= 2 * self.margin < self.overlap < self.tile,
                f"need 0 <= 2*margin < overlap < tile, got margin={self.margin}, overlap={self.overlap}, tile={self.tile}",
            ),
            (self.backbone in BACKBONES, f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}"),
            (
                self.backbone != "unet" or (self.tile % 2 == 0 and self.unet_width % 4 == 0),
                "the unet backbone needs an even tile and a width divisible by 4",
            ),
            (self.window in WINDOWS, f"window must be one of {', '.join(WINDOWS)}, got {self.window!r}"),
            (
                self.dim % 4 == 0 and self.dim % self.heads == 0,
                f"dim ({self.dim}) must be divisible by 4 and by heads ({self.heads})",
            ),
            (self.depth >= 1, f"depth must be >= 1, got {self.depth}"),
            (self.sigma_data > 0, f"sigma_data must be positive, got {self.sigma_data}"),
            (self.sampler_steps >= 1, f"sampler_steps must be >= 1, got {self.sampler_steps}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageInputError(f"downscaler config: {message}")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "DownscalerConfig":
        """``tiny`` (CI, CPU, ~0.6M parameters) or ``base`` (~37M parameters with the UNet, ~96M with the ViT; GPU)."""
        if name not in PRESETS:
            raise UsageInputError(f"unknown downscaler preset {name!r}; choose one of {', '.join(PRESETS)}")
        return replace(PRESETS[name], **overrides)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def n_cond(self) -> int:
        return len(self.channels) + len(STATIC_CHANNELS) + len(GEO_CHANNELS)

    def sampler(self, **overrides: Any) -> SamplerConfig:
        values = dict(
            steps=self.sampler_steps, s_churn=self.s_churn, sigma_max=self.sigma_max, sigma_min=self.sigma_min
        )
        values.update(overrides)
        return SamplerConfig(**values)

    def loss_config(self) -> EDMLossConfig:
        return EDMLossConfig(p_mean=self.p_mean, p_std=self.p_std)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["channels"] = list(self.channels)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DownscalerConfig":
        known = {f.name for f in fields(cls)}
        values = {
            "great_circles": False,
            **values,
        }  # checkpoints from before great circles interpolated meridians linearly
        return cls(**{k: v for k, v in values.items() if k in known})


PRESETS: dict[str, DownscalerConfig] = {
    "tiny": DownscalerConfig(),
    "base": DownscalerConfig(
        tile=128, overlap=32, margin=4, unet_width=256, patch=4, dim=512, depth=12, heads=8, mlp_ratio=4.0
    ),
}


class FieldViT(nn.Module):
    """Fields to fields with a ViT: (B, C_in, H, W) -> (B, C_out, H, W).

    A linear patch embedding of all input channels together, fixed 2D sin-cos positions of
    the patch grid, ``depth`` Transformer blocks, and a per-token head back to the grid.
    (The forecaster's per-variable ``VariablePatchEmbed`` attends over the C_in channel tokens
    of every patch; with the denoiser's 2C + 6 inputs that cross-attention cost 8x the
    Transformer blocks on CPU, while the input set here is fixed, so one linear map fits.) With
    ``noise_conditioned`` the blocks are modulated by an embedding of the EDM noise label
    (adaLN-Zero); the blocks are the DFA feedback points (``blocks.0`` ...).
    """

    def __init__(
        self, in_channels: int, out_channels: int, config: DownscalerConfig, *, noise_conditioned: bool = False
    ):
        super().__init__()
        self.patch, self.dim = config.patch, config.dim
        self.embed = nn.Conv2d(in_channels, config.dim, kernel_size=config.patch, stride=config.patch)
        self.noise_embed = ScalarEmbedding(config.dim) if noise_conditioned else None
        cond_dim = config.dim if noise_conditioned else None
        self.blocks = nn.ModuleList(
            Block(config.dim, config.heads, config.mlp_ratio, cond_dim=cond_dim) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim)
        self.head = PatchHead(config.dim, out_channels, config.patch)
        nn.init.zeros_(self.head.mlp[-1].weight)  # start as "no correction" (DiT zero-inits its final layer too)
        nn.init.zeros_(self.head.mlp[-1].bias)

    def forward(self, x: torch.Tensor, noise_label: torch.Tensor | None = None) -> torch.Tensor:
        x, (height, width) = pad_to_multiple(x, self.patch)  # (B, C_in, H', W')
        h, w = x.shape[-2] // self.patch, x.shape[-1] // self.patch
        tokens = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        tokens = tokens + sincos_pos_embed_2d(self.dim, h, w).to(tokens)[None]  # (B, N, D)
        cond = None if self.noise_embed is None else self.noise_embed(noise_label)  # (B, D)
        for block in self.blocks:
            tokens = block(tokens) if cond is None else block(tokens, cond)  # (B, N, D)
        out = self.head(self.norm(tokens), h, w)  # (B, C_out, H', W')
        return out[..., :height, :width]  # (B, C_out, H, W)


def backbone(
    in_channels: int, out_channels: int, config: DownscalerConfig, *, noise_conditioned: bool = False
) -> nn.Module:
    """The configured fields-to-fields network; ``forward(x, noise_label=None)``."""
    if config.backbone == "unet":
        return FieldUNet(in_channels, out_channels, config.unet_width, noise_conditioned=noise_conditioned)
    return FieldViT(in_channels, out_channels, config, noise_conditioned=noise_conditioned)


class ResidualDenoiserNet(nn.Module):
    """The raw EDM network ``F(c_in * r, c_noise, cond)``: concatenates the conditioning channels."""

    def __init__(self, config: DownscalerConfig):
        super().__init__()
        c = config.n_channels
        self.body = backbone(c + config.n_cond + c, c, config, noise_conditioned=True)

    def forward(self, x: torch.Tensor, noise_label: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([x, cond], dim=1), noise_label)  # (B, C + K + C, H, W) -> (B, C, H, W)


class Downscaler(nn.Module):
    """Regression mean + EDM residual denoiser.

    ``stage`` selects what ``forward`` computes, so that the training loop (and DFA, which sees
    the module's output) trains one network at a time:

    - ``"regression"``: ``forward(cond)`` -> mean (B, C, H, W), normalised fine fields.
    - ``"diffusion"``: ``forward(r_noisy, sigma, cond_full)`` -> denoised residual (B, C, H, W),
      with ``cond_full = cat([cond, mean])`` (B, K + C, H, W); the regression is frozen.
    """

    def __init__(self, config: DownscalerConfig):
        super().__init__()
        if not config.channels:
            raise UsageInputError("downscaler config: no channels (build it from a store or list them)")
        self.config = config
        self.regression = backbone(config.n_cond, config.n_channels, config)
        self.denoiser = EDMPrecond(ResidualDenoiserNet(config), sigma_data=config.sigma_data)
        # Per-channel std of the normalised truth - interpolation, set before the regression stage.
        self.register_buffer("correction_std", torch.ones(config.n_channels))
        # Per-channel std of the normalised residual truth - mean, set before the diffusion stage.
        self.register_buffer("residual_std", torch.ones(config.n_channels))
        self.stage = "regression"
        self._register_load_state_dict_pre_hook(self._unit_correction_std)

    def _unit_correction_std(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """Checkpoints from before ``correction_std`` existed meant an unscaled correction."""
        state_dict.setdefault(prefix + "correction_std", torch.ones_like(self.correction_std))

    def set_stage(self, stage: str) -> "Downscaler":
        if stage not in ("regression", "diffusion"):
            raise UsageInputError(f"downscaler stage must be regression or diffusion, got {stage!r}")
        self.stage = stage
        self.regression.requires_grad_(stage == "regression")
        self.denoiser.requires_grad_(stage == "diffusion")
        return self

    def feedback_points(self) -> list[str]:
        """DFA feedback points of the network the current stage trains: its Transformer (or UNet) blocks."""
        net = self.regression if self.stage == "regression" else self.denoiser.net.body
        prefix = "regression" if self.stage == "regression" else "denoiser.net.body"
        return [f"{prefix}.blocks.{i}" for i in range(len(net.blocks))]

    def feedback_error(self) -> tuple[str | None, str]:
        """Where DFA reads the error and its granularity: the place-local choice of each backbone.

        UNet: the error of every pixel of the output, projected to the blocks at their own places
        (``error="pixel"``). ViT: the head's per-token output, one patch's error per token
        (``error="token"``). A per-sample error mixes every place into every signal (see
        ``optical_backend.dfa``).
        """
        if self.config.backbone == "unet":
            return None, "pixel"
        prefix = "regression" if self.stage == "regression" else "denoiser.net.body"
        return f"{prefix}.head.mlp", "token"

    def feedback_norm(self) -> str:
        """The final normalisation of the trained network, before its output layer (UNet: the
        GroupNorm before the output convolution; ViT: the LayerNorm before the head): DFA passes
        the signals back through it (``optical_backend.signal_shaping``)."""
        prefix = "regression" if self.stage == "regression" else "denoiser.net.body"
        return f"{prefix}.out_norm" if self.config.backbone == "unet" else f"{prefix}.norm"

    def regress(self, cond: torch.Tensor) -> torch.Tensor:
        """Conditional mean: interpolated coarse fields + a learned correction. (B, K, H, W) -> (B, C, H, W).

        The network's output is in units of ``correction_std``, so every channel's correction is
        learnt at unit scale however small its interpolation error.
        """
        return cond[:, : self.config.n_channels] + self.correction_std.reshape(1, -1, 1, 1) * self.regression(cond)

    def denoise(self, r: torch.Tensor, sigma: torch.Tensor, cond_full: torch.Tensor) -> torch.Tensor:
        """EDM denoiser of the unit-variance residual: (B, C, H, W), (B,), (B, K + C, H, W) -> (B, C, H, W)."""
        return self.denoiser(r, sigma, cond_full)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.regress(*args) if self.stage == "regression" else self.denoise(*args)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def geo_channels(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """sin/cos of latitude and longitude on the grid: (4, H, W) float32."""
    la, lo = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")  # (H, W)
    return np.stack([np.sin(la), np.cos(la), np.sin(lo), np.cos(lo)]).astype(np.float32)
