"""Choosing the feedback points of a model: by module name, glob pattern, module type or instance.

A feedback point is a sub-module whose output receives a projected error during DFA training.
Its output is detached from what follows, so back-propagation stays local to the *segment*
that ends at it (the point itself plus any glue code between it and the previous point).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from optical_backend.errors import OpticalConfigError

FeedbackSpec = str | type | nn.Module


@dataclass(frozen=True)
class FeedbackPoint:
    """One resolved feedback point: its qualified name in the model and the module."""

    name: str
    module: nn.Module


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel (or DataParallel) wrapper; else the model."""
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    return model.module if isinstance(model, wrappers) else model


def _matches(spec: FeedbackSpec, name: str, module: nn.Module) -> bool:
    if isinstance(spec, type):
        return isinstance(module, spec)
    if isinstance(spec, nn.Module):
        return module is spec
    return name == spec or _glob_regex(spec).fullmatch(name) is not None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` stay within one dotted name segment; ``**`` spans segments."""
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    table = {"**": ".*", "*": "[^.]*", "?": "[^.]"}
    return re.compile("".join(table.get(part, re.escape(part)) for part in parts))


def resolve_feedback_points(
    model: nn.Module, specs: list[FeedbackSpec] | tuple[FeedbackSpec, ...]
) -> list[FeedbackPoint]:
    """Resolve names, globs (``"blocks.*"``; ``*`` stays within a dotted segment, ``**`` spans
    segments), classes or module instances to feedback points.

    Points are returned in the order of ``model.named_modules()``, which fixes how the single
    projection is split between them. Raises :class:`OpticalConfigError` when a spec matches
    nothing, when no point is given, when the root module is chosen, or when points nest.
    """
    if isinstance(specs, (str, type, nn.Module)):
        specs = [specs]
    if not specs:
        raise OpticalConfigError("DFA needs at least one feedback point (a module name, glob pattern or module type)")
    named = [(name, module) for name, module in model.named_modules() if name]
    chosen: dict[str, nn.Module] = {}
    for spec in specs:
        if not isinstance(spec, (str, type, nn.Module)):
            raise OpticalConfigError(
                f"feedback point {spec!r}: expected a module name, glob pattern, module type or module"
            )
        hits = [(name, module) for name, module in named if _matches(spec, name, module)]
        if not hits:
            sample = ", ".join(name for name, _ in named[:12])
            label = (
                spec.__name__
                if isinstance(spec, type)
                else repr(spec)
                if isinstance(spec, str)
                else type(spec).__name__
            )
            raise OpticalConfigError(
                f"feedback point {label} matches no sub-module of {type(model).__name__}; module names include: {sample}"
            )
        chosen.update(hits)
    points = [FeedbackPoint(name, module) for name, module in named if name in chosen]
    for outer in points:
        for inner in points:
            if inner.name.startswith(outer.name + "."):
                raise OpticalConfigError(
                    f"feedback points must not nest: {inner.name!r} lies inside {outer.name!r}; choose one of them"
                )
    return points


def first_tensor(output: object, where: str) -> torch.Tensor:
    """The output of a feedback point or of the model must be a tensor."""
    if isinstance(output, torch.Tensor):
        return output
    raise OpticalConfigError(
        f"{where} returns {type(output).__name__}, not a tensor; choose a module whose output is one tensor "
        "(for the model output pass output='name of the sub-module producing the prediction')"
    )
