"""The engine of a training run: what computes the weight gradients in each mode, and how a DFA run starts.

``make_engine`` builds ``optical_backend.DFA`` for back-propagation, digital DFA or optical DFA from
a ``TrainConfig``; ``aligns_head`` / ``align_head`` start the output layer as the feedback map;
``engine_stats`` reads the projector's counters (simulated optical device time and energy).
"""

from __future__ import annotations

from typing import Any

import torch

from climate_optics.errors import UsageInputError
from climate_optics.training.task import TrainConfig
from optical_backend.dfa import DFA
from optical_backend.dfa_init import align_output_conv, align_output_layer, last_conv, last_linear
from optical_backend.errors import OpticalConfigError

# TrainConfig.feedback_norm -> the variant of optical_backend.signal_shaping.through_norm
NORM_VARIANT_OF = {"auto": "direction", "on": "direction", "vjp": "vjp", "last": "last"}


def make_engine(
    model: torch.nn.Module,
    feedback_points: list[str],
    config: TrainConfig,
    *,
    output: str | None = None,
    error: str = "sample",
    norm: str | None = None,
) -> Any:
    """The object whose ``backward(loss)`` computes the weight gradients for ``config.mode``.

    ``config.backprop_blocks = N`` makes a hybrid: the last N feedback points are left out, so they
    train by back-propagation with the output layer and DFA trains the blocks below them (the
    signals then skip the final norm, which the back-propagated blocks stand before).

    ``output`` and ``error`` are the task's feedback output and error granularity (see
    ``TrainTask``); ``config.error`` overrides the granularity unless it is ``"auto"``. ``norm``:
    the task's final normalisation (``feedback_norm``). ``config.feedback_norm``: ``auto`` (the
    default: ``on`` where the task names a norm, in standard memory), ``on`` (each signal passed
    back through the norm at its point's output, then, through a LayerNorm, rescaled per token to
    its raw length; a UNet's GroupNorm keeps the exact product), ``vjp`` (never rescaled), ``last``
    (the last point only), ``off``. On
    the forecaster ``on`` takes DFA's Z500 RMSE at 24 h from 0.72 to 0.58 times persistence's
    (docs/dfa_training.md).
    """
    points = list(feedback_points)
    if config.backprop_blocks and config.mode != "backprop":
        if config.backprop_blocks >= len(points):
            raise UsageInputError(
                f"backprop_blocks {config.backprop_blocks}: this model has {len(points)} feedback points; "
                "leave at least one to DFA (or train with mode backprop)"
            )
        if config.feedback_norm not in ("auto", "off"):
            raise UsageInputError(f"feedback_norm {config.feedback_norm} cannot be combined with backprop_blocks")
        if config.head_init == "feedback":
            raise UsageInputError("head_init='feedback' cannot be combined with backprop_blocks")
        points, norm = points[: -config.backprop_blocks], None  # the norm follows the back-propagated blocks
    kwargs: dict[str, Any] = dict(
        feedback_points=points,
        mode=config.mode,
        projector=config.projector,
        seed=config.seed,
        error=error if config.error == "auto" else config.error,
        output=output,
        feedback=config.feedback,
    )
    if config.whiten_feedback:
        kwargs["whiten"] = True
    if config.feedback_norm not in ("auto", "off"):  # asked for by name: refused where it cannot apply
        if norm is None:
            raise UsageInputError(
                f"feedback_norm {config.feedback_norm}: this model names no final normalisation to pass the signals through"
            )
        if config.memory != "standard":
            raise UsageInputError(
                f"feedback_norm {config.feedback_norm} needs memory standard (lean mode replays the blocks)"
            )
    if config.feedback_norm != "off" and norm is not None and config.mode != "backprop" and config.memory == "standard":
        kwargs["norm"] = norm
        kwargs["norm_variant"] = NORM_VARIANT_OF[config.feedback_norm]
    if config.memory != "standard":
        kwargs["memory"] = config.memory
    if config.feedback_scale != "error":
        kwargs["scale_to"] = config.feedback_scale
    if config.mode == "optical":
        kwargs["opu_config"] = config.opu()
    return DFA(model, **kwargs)


def aligns_head(config: TrainConfig, engine: Any, model: torch.nn.Module) -> bool:
    """Whether a new DFA run starts its output layer as the feedback map (``optical_backend.dfa_init``).

    ``head_init="auto"``: yes for a per-token or per-pixel error in the shared layout (the
    forecaster: Z500 RMSE at 24 h 0.72 against 0.82 from a random head of depth 1; the UNet
    downscaler, with the signals through its output norm: T2m CRPS about 1.18x back-propagation's
    against 1.25x; docs/dfa_training.md), unless the model was warm-started from trained weights
    (``warm_started``, set by ``workflow.load_weights``).
    """
    if config.mode == "backprop" or config.head_init == "random":
        return False
    if config.backprop_blocks:  # back-propagated blocks stand between the last DFA point and the output
        return False
    if config.head_init == "feedback":
        return True
    return (
        engine.error in ("token", "pixel") and engine.feedback == "shared" and not getattr(model, "warm_started", False)
    )


def align_head(engine: Any, model: torch.nn.Module, output: str | None) -> None:
    """Start the output layer (``output_layer``) as the DFA feedback map (``optical_backend.dfa_init``)."""
    points = [p.name for p in engine.points]
    layer = output_layer(model, output, points, engine.error)
    try:
        if engine.error == "pixel":
            widths = [conv.out_channels for conv in (last_conv(model.get_submodule(p)) for p in points) if conv]
            if layer is None or len(widths) != len(points):
                raise UsageInputError("head_init='feedback': a per-pixel error needs convolutional feedback points")
            align_output_conv(engine, layer, max(widths))
            return
        if layer is None:
            raise UsageInputError(f"head_init='feedback': {output or 'the model'} has no linear output layer")
        align_output_layer(engine, layer)
    except OpticalConfigError as exc:
        raise UsageInputError(f"head_init='feedback': {exc}") from exc


def output_layer(
    model: torch.nn.Module, output: str | None, points: list[str], error: str
) -> torch.nn.Linear | torch.nn.Conv2d | None:
    """The layer that makes the model's output from the last feedback point's: the last linear layer
    of the feedback ``output`` (a ViT's head), or for a per-pixel error the last convolution of the
    network that holds the points ``PREFIX.blocks.i`` (a UNet's output convolution)."""
    if error == "pixel" and points:
        parts = points[-1].split(".")
        return last_conv(model.get_submodule(".".join(parts[:-2])) if len(parts) > 2 else model)
    return last_linear(model.get_submodule(output) if output else model)


def head_layer(model: torch.nn.Module, task: Any, engine: Any) -> torch.nn.Module | None:
    """``output_layer`` of a task's model, with the engine's error granularity."""
    error = getattr(engine, "error", getattr(task, "feedback_error", "sample"))
    return output_layer(model, getattr(task, "feedback_output", None), list(task.feedback_points), error)


def param_groups(model: torch.nn.Module, config: TrainConfig, head: torch.nn.Module | None) -> list[dict[str, Any]]:
    """AdamW's parameter groups: weight decay on matrices only, and the output layer ``head``
    (``output_layer``) at ``config.head_lr_scale`` times the learning rate when that is not 1."""
    in_head = {id(p) for p in head.parameters()} if head is not None and config.head_lr_scale != 1.0 else set()
    groups = []
    for head_group in (False, True):
        for decays in (True, False):
            params = [
                p
                for p in model.parameters()
                if p.requires_grad and (p.ndim >= 2) == decays and (id(p) in in_head) == head_group
            ]
            if params:
                group = {"params": params, "weight_decay": config.weight_decay if decays else 0.0}
                if head_group:
                    group["lr"] = config.lr * config.head_lr_scale
                groups.append(group)
    return groups


def engine_stats(engine: Any) -> dict[str, Any]:
    """The engine's counters as a plain dict (empty for plain back-propagation)."""
    stats = getattr(engine, "stats", None)
    if stats is None:
        return {}
    if isinstance(stats, dict):
        return dict(stats)
    if hasattr(stats, "as_dict"):
        return stats.as_dict()
    return {k: v for k, v in vars(stats).items() if isinstance(v, (int, float, str, bool))}
