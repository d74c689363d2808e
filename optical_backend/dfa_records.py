"""What the DFA engine keeps between a forward pass and ``dfa.backward``, its counters, and its finite check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from optical_backend.errors import NonFiniteError
from optical_backend.lean import ForwardContext
from optical_backend.projector import ProjectorStats


@dataclass
class DFAStats:
    """Counters of a DFA engine; ``projector`` holds the live projector counters."""

    backward_calls: int = 0  # dfa.backward calls (micro-batches)
    samples: int = 0  # samples whose error was projected
    forward_wall_s: float = 0.0  # measured time in training forward passes (grad enabled)
    backward_wall_s: float = 0.0  # measured time in dfa.backward, projection included
    projector: ProjectorStats = field(default_factory=ProjectorStats)

    def as_dict(self) -> dict[str, float]:
        out = {k: v for k, v in asdict(self).items() if k != "projector"}
        out.update({f"projector_{k}": v for k, v in self.projector.as_dict().items()})
        return out


@dataclass
class ForwardRecord:
    """What one training forward pass leaves for ``dfa.backward``."""

    shapes: dict[str, tuple[torch.Size, torch.dtype]] = field(default_factory=dict)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # standard mode: attached outputs
    y_hat: torch.Tensor | None = None
    context: ForwardContext | None = None  # lean mode: how to replay
    grad_was_enabled: bool = True
    grad_restored: bool = True
    started: float = 0.0


def check_finite(values: torch.Tensor, what: str) -> None:
    """Raise :class:`NonFiniteError` unless every value is finite (before any gradient is written)."""
    if not bool(torch.isfinite(values).all()):
        raise NonFiniteError(
            f"DFA: non-finite {what}; no gradient was written (lower the learning rate or check the data)"
        )
