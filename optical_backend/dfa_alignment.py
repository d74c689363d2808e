"""How well DFA's updates align with back-propagation's: the diagnostic behind ``DFA.alignment``."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Callable

import torch

from optical_backend.lean import buffers_preserved
from optical_backend.signal_shaping import shaped_signals

if TYPE_CHECKING:
    from optical_backend.dfa import DFA


def gradient_alignment(dfa: "DFA", compute_loss: Callable[[], torch.Tensor]) -> dict[str, float]:
    """Per feedback point, the cosine between the DFA and the back-propagation gradient (``DFA.alignment``)."""
    params = [p for p in dfa.inner.parameters() if p.requires_grad]
    saved_grads = [p.grad for p in params]
    saved_counts = None if dfa._projector is None else dfa._projector.stats.as_dict()
    saved_stats = {k: v for k, v in asdict(dfa.stats).items() if k != "projector"}
    mode, memory = dfa.mode, dfa.memory
    devices = sorted({p.device.index or 0 for p in params if p.is_cuda})
    result: dict[str, float] = {}
    try:
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            rng = torch.get_rng_state()
            for p in params:
                p.grad = None
            dfa.mode = "backprop"
            with buffers_preserved(dfa.inner):
                dfa.backward(compute_loss())
            true_grads = {id(p): p.grad for p in params}
            torch.set_rng_state(rng)
            dfa.mode, dfa.memory = ("optical" if mode == "optical" else "dfa"), "standard"
            with buffers_preserved(dfa.inner):  # restored after the gradients: the graph may use them
                loss = compute_loss()
                record, dfa._record = dfa._record, None
                (error,) = torch.autograd.grad(loss, record.y_hat, retain_graph=True)
                signals = shaped_signals(dfa, dfa._signals(error.detach(), record.shapes), record.outputs)
                for point in dfa.points:
                    y_point = record.outputs.get(point.name)
                    if y_point is None:
                        result[point.name] = float("nan")
                        continue
                    grads = torch.autograd.grad(
                        y_point, params, signals[point.name], retain_graph=True, allow_unused=True
                    )
                    pairs = [(g, true_grads[id(p)]) for g, p in zip(grads, params) if g is not None]
                    result[point.name] = _cosine([a for a, _ in pairs], [b for _, b in pairs])
    finally:
        dfa.mode, dfa.memory = mode, memory
        for p, g in zip(params, saved_grads):
            p.grad = g
        for key, value in saved_stats.items():
            setattr(dfa.stats, key, value)
        if saved_counts is not None and dfa._projector is not None:
            for key, value in saved_counts.items():
                setattr(dfa._projector.stats, key, value)
    return result


def _cosine(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> float:
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if not pairs:
        return float("nan")
    va = torch.cat([x.detach().reshape(-1).double() for x, _ in pairs])
    vb = torch.cat([y.detach().reshape(-1).double() for _, y in pairs])
    denom = va.norm() * vb.norm()
    return float(va @ vb / denom) if denom > 0 else float("nan")
