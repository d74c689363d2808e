"""The memory-lean DFA mode: keep no activations in the forward pass, replay block by block.

Back-propagation keeps every activation of the forward pass until the backward pass; a DFA
update of a block needs only the block's input and its feedback signal (Wang et al. 2024,
arXiv 2409.12965, "memory wall"). ``DFA(..., memory="lean")`` trains like this:

1. The user's forward pass runs *without* autograd up to the last feedback point, so no
   block keeps its activations; only the part after the last point (the head) builds a
   graph. The model inputs, the random-number state and the autocast state are remembered.
2. ``dfa.backward(loss)`` takes the error at the output, back-propagates the true gradient
   through the head, makes the single projection and keeps the per-point signals (in
   ``signal_dtype``, bfloat16 by default: half the memory of the block inputs that
   activation checkpointing would keep).
3. The forward pass is replayed with autograd on and the same random state. Each time a
   feedback point produces its output, its segment's local backward runs at once with its
   signal, and the segment's activations and signal are freed; the replay stops after the
   last point, so the head is not recomputed.

For deterministic blocks the update equals the standard mode's (tested with
``signal_dtype=torch.float32``); with bfloat16 signals it differs by their rounding
(relative 2^-8). Dropout masks are reproduced by restoring the random state. Buffers such
as batch-norm running statistics are restored after the replay so they move once per step.
The cost is one extra forward pass, as with activation checkpointing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from optical_backend.feedback import first_tensor


class ReplayDone(Exception):
    """Raised by the last feedback point during a replay: nothing after it needs recomputing."""


@dataclass
class ReplayState:
    """Signals waiting to be injected while the forward pass is replayed."""

    pending: dict[str, torch.Tensor]

    def on_point(self, name: str, output: object) -> torch.Tensor:
        y = first_tensor(output, f"feedback point {name!r}")
        signal = self.pending.pop(name)
        if y.requires_grad:
            torch.autograd.backward(y, signal.to(dtype=y.dtype))  # local update of this segment only
        del signal
        if not self.pending:
            raise ReplayDone
        return y.detach()


@dataclass
class ForwardContext:
    """What a replay needs to reproduce the user's forward pass exactly."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    cpu_rng: torch.Tensor
    cuda_rng: dict[int, torch.Tensor] = field(default_factory=dict)
    autocast: dict[str, torch.dtype] = field(default_factory=dict)  # enabled device types -> dtype

    @classmethod
    def capture(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> "ForwardContext":
        devices = {t.device.index or 0 for t in _tensors(args, kwargs) if t.is_cuda}
        cuda_rng = {d: torch.cuda.get_rng_state(d) for d in devices}
        autocast = {}
        for device_type in ("cpu", "cuda"):
            if torch.is_autocast_enabled(device_type):
                autocast[device_type] = torch.get_autocast_dtype(device_type)
        return cls(args, kwargs, torch.get_rng_state(), cuda_rng, autocast)

    @contextlib.contextmanager
    def restored(self):
        """Random state and autocast as they were in the original forward; grad enabled."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.random.fork_rng(devices=sorted(self.cuda_rng)))
            torch.set_rng_state(self.cpu_rng)
            for device, state in self.cuda_rng.items():
                torch.cuda.set_rng_state(state, device)
            for device_type, dtype in self.autocast.items():
                stack.enter_context(torch.autocast(device_type=device_type, dtype=dtype))
            stack.enter_context(torch.enable_grad())
            yield


def _tensors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    items = list(args) + list(kwargs.values())
    return [t for t in items if isinstance(t, torch.Tensor)]


@contextlib.contextmanager
def buffers_preserved(model: nn.Module):
    """Restore every buffer (e.g. batch-norm running statistics) on exit."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, copy in saved:
                buffer.copy_(copy)


def replay_backward(model: nn.Module, context: ForwardContext, signals: dict[str, torch.Tensor], replay_slot) -> None:
    """Re-run ``model`` on the remembered inputs, back-propagating each segment as it completes.

    ``replay_slot`` is a callable taking the :class:`ReplayState` (or None) that the DFA
    hooks consult while the replay runs.
    """
    state = ReplayState(pending=dict(signals))
    signals.clear()  # the replay state now owns the only references, freed point by point
    replay_slot(state)
    try:
        with buffers_preserved(model), context.restored():
            try:
                model(*context.args, **context.kwargs)
            except ReplayDone:
                pass
    finally:
        replay_slot(None)
    if state.pending:
        missing = ", ".join(sorted(state.pending))
        raise RuntimeError(
            f"lean DFA replay did not reach feedback points {missing}; is the forward pass deterministic?"
        )
