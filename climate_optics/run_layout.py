"""A pipeline run: its settings (``PipelineConfig``) and its directory layout (``RunLayout``).

A run directory holds ``data.zarr``, one training run per mode, ``forecast-<mode>.zarr``, the
downscaler's run and stores, ``scores.zarr`` with its table ``scores.md`` and figures ``figures/scores/``
beside it, the report with its figures in ``figures/`` and ``timings.json``.
``training_config`` turns the settings into a ``TrainConfig`` for unattended runs; it imports
the training package (and torch) only when called, so that commands reading the settings
(``climate-optics serve`` checking its server first) start in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from climate_optics.errors import UsageInputError
from climate_optics.training.rollout_defaults import ROLLOUT_DEPTH, ROLLOUT_TAIL
from optical_backend.kinds import FEEDBACK_NORMS, REGRESSION_MODES, TRAINING_ERRORS  # without torch

DEMO_SOURCE = "synthetic-reanalysis"
# 90 days of the embedded reanalysis on the 5.625 degree forecasting grid (one minute or so to generate).
DEMO_OPTIONS: dict[str, Any] = {"grid": "5.625deg", "days": 90, "seed": 0}
DEMO_MODES = ("backprop", "optical")  # trained side by side unless a mode (or list of modes) is chosen
TIMINGS_FILE = "timings.json"  # wall seconds per pipeline stage, in the run directory


@dataclass
class RunLayout:
    """Where the pipeline puts each output inside one run directory."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def data(self) -> Path:  # the ingested canonical store
        return self.root / "data.zarr"

    @property
    def train(self) -> Path:  # a single forecaster run directory (scheduled retraining)
        return self.root / "train"

    @property
    def forecast(self) -> Path:  # a single forecast store (scheduled retraining)
        return self.root / "forecast.zarr"

    def train_run(self, mode: str) -> Path:  # forecaster run directory of one mode (checkpoint.pt, metrics.jsonl)
        return self.root / f"train-{mode}"

    def forecast_of(self, mode: str) -> Path:  # forecast store of one mode over the held-out period
        return self.root / f"forecast-{mode}.zarr"

    def downscale_run(self, mode: str) -> Path:  # downscaler run directory of one mode (regression/, diffusion/)
        return self.root / f"downscale-{mode}"

    def downscaled_of(self, mode: str) -> Path:  # that mode's forecast downscaled into an ensemble on the fine grid
        return self.root / f"downscaled-{mode}.zarr"

    @property
    def scores(self) -> Path:  # scores store of every mode's forecast and the baselines
        return self.root / "scores.zarr"

    @property
    def scores_table(self) -> Path:  # its Markdown tables, beside it (``scores_store.companion_paths``)
        return self.root / "scores.md"

    @property
    def scores_figures(self) -> Path:  # its skill-vs-lead PNGs, under the run's figures/
        return self.root / "figures" / "scores"

    @property
    def hires(self) -> Path:  # the fine-grid store the downscaler learns from
        return self.root / "hires.zarr"

    @property
    def bilinear(self) -> Path:  # the forecast interpolated bilinearly to the fine grid (the baseline)
        return self.root / "bilinear.zarr"

    @property
    def downscaled_scores(self) -> Path:  # scores of both against the fine truth
        return self.root / "downscaled_scores.zarr"

    @property
    def timings(self) -> Path:  # wall seconds per stage
        return self.root / TIMINGS_FILE


@dataclass
class PipelineConfig:
    """Settings of one end-to-end run; saved as ``pipeline.json`` in the run directory."""

    source: str = DEMO_SOURCE  # catalog entry or path of the data to ingest
    options: dict[str, Any] | None = None  # driver options (synthetic default: DEMO_OPTIONS)
    variables: list[str] | None = None  # canonical names to keep (None: all)
    levels: list[float] | None = None  # pressure levels to keep (None: all)
    modes: list[str] | None = None  # training modes trained side by side (None: [mode] if set, else DEMO_MODES)
    mode: str | None = None  # a single training mode (backprop | dfa | optical): shorthand for modes=[mode]
    projector: str = "structured"  # digital DFA projector (dense | structured)
    opu_config: dict[str, Any] | None = None  # OPUConfig fields of the optical mode's device (None: the default)
    error: str = "auto"  # DFA error granularity: auto (each model's choice) | sample | token
    feedback_norm: str = "auto"  # DFA signals through the model's final norm: auto | on | off | vjp | last
    rollout: int = ROLLOUT_DEPTH  # forecaster: the last rollout_tail of the steps train rollouts of depth 1..rollout
    rollout_tail: float = ROLLOUT_TAIL  # (climate_optics.training.rollout_task; rollout 1: one-step training only)
    preset: str = "tiny"  # forecaster size preset
    architecture: str | None = (
        None  # forecaster from the model registry (climate_optics.models.architectures; None: vit)
    )
    model: dict[str, Any] = field(default_factory=dict)  # ForecasterConfig overrides (e.g. dim, depth)
    steps: int = 200  # optimiser steps
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    lead_hours: tuple[int, ...] = (6, 24, 72)  # forecast lead times scored
    climatology_period: Any = None  # [start, end] (or "START/END") of the climatology; None: before the held-out part
    max_inits: int = 24  # forecasts started from at most this many held-out times
    metrics: list[str] | None = None  # None: rmse, bias, mae, acc (with the store's climatology)
    regions: list[str] | None = None  # None: the default regions
    downscale: bool | None = None  # also train a downscaler on the fine grid (None: for the synthetic source only)
    downscale_mode: str | None = (
        None  # mode of the downscaler and of the forecast it downscales (None: the last of modes)
    )
    downscale_max_inits: int | None = 2  # downscale the forecasts from the first N init times only (None: all)
    downscale_steps: int = (
        100  # steps of the downscaler's regression stage (and of its diffusion stage unless set below)
    )
    downscale_diffusion_steps: int | None = None  # steps of the diffusion stage (None: downscale_steps)
    downscale_regression_mode: str = (
        "auto"  # mode of the regression stage (auto: backprop under DFA; see regression_config)
    )
    downscale_members: int = 4  # ensemble members of the downscaled forecast
    downscale_sampler_steps: int | None = None  # Heun sampler steps (None: the model's)

    def __post_init__(self) -> None:
        if self.options is None and self.source == DEMO_SOURCE:
            self.options = dict(DEMO_OPTIONS)
        if self.modes is None:
            self.modes = [self.mode] if self.mode else list(DEMO_MODES)
        self.modes = [str(m) for m in ([self.modes] if isinstance(self.modes, str) else self.modes)]
        if not self.modes or len(set(self.modes)) != len(self.modes):
            raise UsageInputError(f"pipeline: modes must be distinct training modes, got {self.modes}")
        if self.mode is not None and self.modes != [self.mode]:
            raise UsageInputError(f"pipeline: mode {self.mode!r} and modes {self.modes} disagree; set one of them")
        if self.downscale is None:
            self.downscale = self.source == DEMO_SOURCE
        if self.downscale_mode is None:
            self.downscale_mode = self.modes[-1]
        if self.downscale_mode not in self.modes:
            raise UsageInputError(
                f"pipeline: downscale_mode {self.downscale_mode!r} is not one of the modes {self.modes}"
            )
        self.lead_hours = tuple(int(h) for h in self.lead_hours)
        if not self.lead_hours or min(self.lead_hours) <= 0:
            raise UsageInputError(f"pipeline: lead times must be positive hours, got {self.lead_hours}")
        if self.max_inits < 1:
            raise UsageInputError(f"pipeline: max_inits must be >= 1, got {self.max_inits}")
        counts = {
            "downscale_steps": self.downscale_steps,
            "downscale_diffusion_steps": self.downscale_diffusion_steps,
            "downscale_members": self.downscale_members,
            "downscale_sampler_steps": self.downscale_sampler_steps,
            "downscale_max_inits": self.downscale_max_inits,
        }
        for name, value in counts.items():
            if value is not None and value < 1:
                raise UsageInputError(f"pipeline: {name} must be >= 1, got {value}")
        if self.error not in TRAINING_ERRORS:
            raise UsageInputError(f"pipeline: error must be one of {', '.join(TRAINING_ERRORS)}, got {self.error!r}")
        if self.downscale_regression_mode not in REGRESSION_MODES:
            raise UsageInputError(
                f"pipeline: downscale_regression_mode must be one of {', '.join(REGRESSION_MODES)}, "
                f"got {self.downscale_regression_mode!r}"
            )
        if self.feedback_norm not in FEEDBACK_NORMS:
            raise UsageInputError(
                f"pipeline: feedback_norm must be one of {', '.join(FEEDBACK_NORMS)}, got {self.feedback_norm!r}"
            )
        tail = self.rollout_tail
        if not (
            isinstance(self.rollout, int)
            and self.rollout >= 1
            and isinstance(tail, (int, float))
            and not isinstance(tail, bool)
            and 0 <= tail <= 1
        ):
            raise UsageInputError(
                f"pipeline: rollout must be an integer >= 1 and rollout_tail in [0, 1], "
                f"got {self.rollout!r} and {self.rollout_tail!r}"
            )
        self.opu_config = checked_opu_config(self.opu_config)
        for mode in self.modes:
            self.train_config(mode)  # validates mode, steps, batch size, lr, error

    def dfa_options(self, mode: str) -> dict[str, Any]:
        """The DFA settings of one mode's runs: the error granularity, the feedback norm, and the device for the optical mode."""
        return dict(
            error=self.error,
            feedback_norm=self.feedback_norm,
            opu_config=self.opu_config if mode == "optical" else None,
        )

    def train_config(self, mode: str, **changes: Any):
        return training_config(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            mode=mode,
            projector=self.projector,
            **(self.dfa_options(mode) | changes),
        )

    def train_options(self, mode: str) -> dict[str, Any]:
        """Keyword arguments of ``train_forecaster`` (and of the flow's task) for one mode."""
        return dict(
            mode=mode,
            projector=self.projector,
            preset=self.preset,
            architecture=self.architecture,
            model=self.model,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            rollout=self.rollout,
            rollout_tail=self.rollout_tail,
            **self.dfa_options(mode),
        )

    def downscale_options(self) -> dict[str, Any]:
        """Keyword arguments of ``train_downscaler`` (and of the flow's task) for ``downscale_mode``."""
        mode = self.downscale_mode
        return dict(
            mode=mode,
            projector=self.projector,
            preset=self.preset,
            steps=self.downscale_steps,
            diffusion_steps=self.downscale_diffusion_steps,
            regression_mode=self.downscale_regression_mode,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            **self.dfa_options(mode),
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lead_hours"] = list(self.lead_hours)
        return out


def checked_opu_config(values: Any) -> dict[str, Any] | None:
    """``opu_config`` validated by ``OPUConfig.from_dict`` and stored complete; a bad field is refused naming it."""
    if values is None:
        return None
    from optical_backend.errors import OpticalConfigError
    from optical_backend.opu import OPUConfig

    try:
        return OPUConfig.from_dict(values).to_dict()
    except OpticalConfigError as exc:
        raise UsageInputError(f"pipeline: opu_config: {exc}") from None


def training_config(*, steps: int, **values: Any):
    """A TrainConfig for unattended runs (``TrainConfig.for_steps``), deterministic, without a progress bar."""

    from climate_optics.training.task import TrainConfig  # torch: see the module docstring

    return TrainConfig.for_steps(steps, **({"progress": False, "deterministic": True} | values))
