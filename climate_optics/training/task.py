"""The seam between models and the generic training loop: ``TrainTask`` and ``TrainConfig``.

A task owns a model, its data and its loss; the loop (``climate_optics.training.loop.train``)
owns optimisation, the training mode (back-propagation, DFA, optical DFA), checkpoints,
validation and logging. Any object with these attributes and methods is a task.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from climate_optics.errors import UsageInputError
from optical_backend.kinds import (
    DEFAULT_DIGITAL_KIND,
    FEEDBACK_LAYOUTS,
    FEEDBACK_NORMS,
    MEMORY_MODES,
    TRAINING_ERRORS,
    TRAINING_MODES,
    digital_projector_kinds,
)
from optical_backend.opu import OPUConfig

DEVICES = ("auto", "cpu", "cuda")
ERRORS = TRAINING_ERRORS
HEAD_INITS = ("auto", "random", "feedback")  # a DFA run's output layer: as drawn, or the feedback map


@runtime_checkable
class TrainTask(Protocol):
    """What the training loop needs from a model family.

    ``batches`` must be deterministic: the stream it yields is a function of the seed of
    ``rng`` and the position in the stream only (not of timing or prefetching). Tasks may
    accept a keyword ``start_step`` and then yield the stream from batch ``start_step`` on;
    otherwise the loop skips batches on resume, which is exact but slower. Tasks may accept
    ``shard=(rank, world)`` for data parallel training: every rank then gets the same ``rng``
    and yields its ``batch_size`` samples of the step's global batch of ``world * batch_size``
    (see ``ZarrWindowSampler``); otherwise each rank gets its own independent stream.
    """

    model: torch.nn.Module
    feedback_points: list[str]  # module names (in ``model.named_modules()``) where DFA injects feedback
    # Optional: ``feedback_output`` (the sub-module whose output DFA takes the error of; default the
    # model's output) and ``feedback_error`` ("sample" or "token", used when TrainConfig.error is "auto").

    def batches(self, rng: np.random.Generator, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Endless stream of training batches (CPU tensors; the loop moves them to the device)."""
        ...

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar training loss of ``model`` on ``batch``."""
        ...

    def validate(self, model: torch.nn.Module) -> dict[str, float]:
        """Scores on held-out data (the loop calls it in eval mode under ``torch.no_grad``)."""
        ...

    def checkpoint_extra(self) -> dict[str, Any]:
        """Model config, data statistics, ...: JSON-able values and tensors only (weights_only loading)."""
        ...


@dataclass
class TrainConfig:
    """Settings of one training run; saved in every checkpoint."""

    steps: int = 1000  # optimiser steps in the whole run
    batch_size: int = 8  # samples per step (per process under torchrun)
    lr: float = 1e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.05  # AdamW decoupled weight decay
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas
    warmup: int = 50  # linear warm-up steps, then cosine decay to min_lr_ratio * lr
    min_lr_ratio: float = 0.1  # final learning rate as a fraction of lr
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    seed: int = 0  # seeds torch, numpy, python and the data stream
    mode: str = "backprop"  # optical_backend.kinds.TRAINING_MODES: backprop | dfa | optical
    projector: str = DEFAULT_DIGITAL_KIND  # digital DFA feedback projection: dense | structured | a registered kind
    memory: str = "standard"  # standard | lean (DFA memory mode, see optical_backend.DFA)
    error: str = "auto"  # DFA error granularity: auto (the task's feedback_error) | sample | token
    feedback: str = "shared"  # DFA feedback layout: shared (one projection for every point) | split (one slice each)
    feedback_scale: str = (
        "error"  # DFA signal size: error (as large as the error) | output (per block, its output's rms)
    )
    head_init: str = "auto"  # DFA output layer: random | feedback (starts as the feedback map) | auto (see loop)
    whiten_feedback: bool = False  # DFA: an orthogonal feedback map, by a small digital matrix (whitening)
    feedback_norm: str = "auto"  # DFA signals through the final norm: auto | on | off | vjp | last (see engines)
    head_lr_scale: float = 1.0  # learning rate of the feedback output's last linear layer, as a fraction of lr
    backprop_blocks: int = 0  # DFA hybrid: the last N feedback points train by back-propagation, with the output
    opu_config: dict[str, Any] | None = None  # OPUConfig fields for mode="optical" (None: the default device)
    checkpoint_every: int = 100  # steps between checkpoints (the final step is always saved)
    val_every: int = 100  # steps between validations (0: only at the end)
    log_every: int = 10  # steps between metrics.jsonl lines / plain progress lines
    device: str = "auto"  # auto | cpu | cuda
    deterministic: bool = False  # torch.use_deterministic_algorithms (exact resume on CPU)
    progress: bool = True  # show a progress bar (plain lines when not a terminal)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        digital = digital_projector_kinds()
        checks = [
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"lr must be positive, got {self.lr}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.warmup >= 0, f"warmup must be >= 0, got {self.warmup}"),
            (0 <= self.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}"),
            (self.grad_clip >= 0, f"grad_clip must be >= 0, got {self.grad_clip}"),
            (self.mode in TRAINING_MODES, f"mode must be one of {', '.join(TRAINING_MODES)}, got {self.mode!r}"),
            (self.projector in digital, f"projector must be one of {', '.join(digital)}, got {self.projector!r}"),
            (self.memory in MEMORY_MODES, f"memory must be one of {', '.join(MEMORY_MODES)}, got {self.memory!r}"),
            (self.error in ERRORS, f"error must be one of {', '.join(ERRORS)}, got {self.error!r}"),
            (
                self.feedback in FEEDBACK_LAYOUTS,
                f"feedback must be one of {', '.join(FEEDBACK_LAYOUTS)}, got {self.feedback!r}",
            ),
            (
                self.feedback_scale in ("error", "output"),
                f"feedback_scale must be error or output, got {self.feedback_scale!r}",
            ),
            (
                self.head_init in HEAD_INITS,
                f"head_init must be one of {', '.join(HEAD_INITS)}, got {self.head_init!r}",
            ),
            (
                self.feedback_norm in FEEDBACK_NORMS,
                f"feedback_norm must be one of {', '.join(FEEDBACK_NORMS)}, got {self.feedback_norm!r}",
            ),
            (self.head_lr_scale > 0, f"head_lr_scale must be positive, got {self.head_lr_scale}"),
            (self.backprop_blocks >= 0, f"backprop_blocks must be >= 0, got {self.backprop_blocks}"),
            (self.checkpoint_every >= 1, f"checkpoint_every must be >= 1, got {self.checkpoint_every}"),
            (self.val_every >= 0, f"val_every must be >= 0, got {self.val_every}"),
            (self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {self.device!r}"),
            (
                len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
                f"betas must be two numbers in [0, 1), got {self.betas}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageInputError(f"training config: {message}")
        if self.opu_config is not None:
            self.opu_config = self.opu().to_dict()  # validated (the error names the field), stored complete

    @classmethod
    def for_steps(cls, steps: int, **values: Any) -> "TrainConfig":
        """The config of a ``steps``-step run, the one rule for defaults that scale with the run's length:
        warm-up 5 % of the steps, ten checkpoints and validations, about twenty log lines.
        ``values`` override them (``None`` means not given)."""
        defaults = dict(
            warmup=max(1, steps // 20),
            checkpoint_every=max(1, steps // 10),
            val_every=max(1, steps // 10),
            log_every=max(1, min(50, steps // 20)),
        )
        return cls(steps=steps, **(defaults | {k: v for k, v in values.items() if v is not None}))

    def opu(self):
        """The ``OPUConfig`` of the optical mode (the default device when none was given)."""

        return OPUConfig() if self.opu_config is None else OPUConfig.from_dict(dict(self.opu_config))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
