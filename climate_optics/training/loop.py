"""The generic training loop: any ``TrainTask``, in back-propagation, DFA or optical-DFA mode.

One straight loop (nanoGPT style): AdamW with linear warm-up and cosine decay, global-norm
gradient clipping, bf16 autocast on GPU, data parallel under ``torchrun`` (see
``climate_optics.training.distributed``), validation every ``val_every`` steps,
``metrics.jsonl`` and atomic checkpoints every ``checkpoint_every`` steps.
``optical_backend.DFA(...).backward(loss)`` replaces ``loss.backward()`` in all modes.

Under ``torchrun`` each of the ``world`` ranks trains on its own ``batch_size`` samples of a
global batch of ``world * batch_size`` (tasks that accept ``shard`` split one stream; others get
an independent stream per rank), gradients are averaged after each backward, and rank 0 alone
validates and writes metrics and checkpoints. Before every checkpoint the ranks compare a sha256
of their weights and stop with an error if any rank has diverged.

Resume is exact: the checkpoint holds model, optimiser, scheduler, RNG states and the step,
and the task's batch stream restarts at that step, so a killed run resumed with
``resume=True`` ends with the same weights as an uninterrupted one (CPU, deterministic), also
under ``torchrun`` with the same number of ranks.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from climate_optics.errors import UsageInputError
from climate_optics.io.checkpoints import LATEST, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from climate_optics.training import distributed
from climate_optics.training.engines import align_head, aligns_head, engine_stats, head_layer, make_engine, param_groups
from climate_optics.training.task import TrainConfig, TrainTask
from data_catalog import locks

METRICS_FILE = "metrics.jsonl"
# Settings that must match for a resumed run to continue the same run.
RESUME_KEYS = (
    "steps",
    "batch_size",
    "lr",
    "seed",
    "mode",
    "projector",
    "warmup",
    "min_lr_ratio",
    "weight_decay",
    "error",
    "feedback",
    "feedback_scale",
    "opu_config",
    "head_lr_scale",
    "whiten_feedback",
    "feedback_norm",
)


@dataclass
class TrainResult:
    """Outcome of ``train``."""

    steps: int  # optimiser steps completed (including those before a resume)
    final_loss: float  # mean training loss (over all ranks) over the last logging window
    val: dict[str, float]  # last validation scores (empty on ranks other than 0)
    wall_time_s: float  # time spent in this call
    samples_per_s: float  # training throughput in this call, all ranks together
    checkpoint: Path | None  # the latest checkpoint written
    engine_stats: dict[str, Any] = field(default_factory=dict)  # projector counters (simulated optical time/energy)
    stopped_early: bool = False  # True when ``stop_after`` interrupted the run
    rank: int = 0  # data parallel rank of this process (only rank 0 validates and writes)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_lr_ratio`` at ``config.steps``."""
    if config.warmup and step < config.warmup:
        return (step + 1) / config.warmup
    span = max(1, config.steps - config.warmup)
    progress = min(1.0, (step - config.warmup) / span)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def pick_device(config: TrainConfig, local_rank: int = 0) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UsageInputError("device 'cuda' requested but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def batch_stream(
    task: TrainTask, config: TrainConfig, start_step: int, world: distributed.World = distributed.World()
) -> Iterator[dict[str, torch.Tensor]]:
    """This rank's batches from ``start_step`` on: natively when supported, else by skipping.

    A task that accepts ``shard`` gets the same seed on every rank and yields its rank's share of
    each global batch; any other task gets an independent stream per rank.
    """
    params = inspect.signature(task.batches).parameters
    kwargs: dict[str, Any] = {}
    if "shard" in params:
        rng = np.random.default_rng([config.seed, 0])
        kwargs["shard"] = (world.rank, world.size)
    else:
        rng = np.random.default_rng([config.seed, world.rank])
    if "start_step" in params:
        return iter(task.batches(rng, config.batch_size, start_step=start_step, **kwargs))
    stream = iter(task.batches(rng, config.batch_size, **kwargs))
    for _ in range(start_step):
        next(stream)
    return stream


class Progress:
    """A rich progress bar (loss, samples/s, ETA) on a terminal; plain lines otherwise."""

    def __init__(self, total: int, start: int, enabled: bool, every: int):
        self.total, self.every, self.enabled = total, every, enabled
        self.bar = None
        if enabled and sys.stdout.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4g}"),
                TextColumn("{task.fields[rate]:.1f} samples/s"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self.bar.start()
            self.task_id = self.bar.add_task("train", total=total, completed=start, loss=float("nan"), rate=0.0)

    def update(self, step: int, loss: float, rate: float, eta_s: float, objective: str | None = None) -> None:
        if self.bar is not None:
            self.bar.update(self.task_id, completed=step, loss=loss, rate=rate)
        elif self.enabled and (step % self.every == 0 or step == self.total):
            eta = time.strftime("%H:%M:%S", time.gmtime(max(0.0, eta_s)))
            which = f" ({objective})" if objective else ""
            print(f"step {step}/{self.total}  loss {loss:.4g}{which}  {rate:.1f} samples/s  ETA {eta}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")


def _start_log_afresh(path: Path) -> None:
    """A new run's log starts empty: the lines of a run killed before its first checkpoint are dropped
    (they would mix with the new run's); a file this tool did not write is refused, not replaced."""
    if not path.exists():
        return
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        ours = all(isinstance(record, dict) and "step" in record for record in records)
    except ValueError:  # not JSON lines (UnicodeDecodeError is a ValueError too)
        ours = False
    if not ours:
        raise UsageInputError(
            f"{path}: is not a training log this tool wrote; it will not be replaced (choose another --out)"
        )
    path.unlink()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint a run resumes from."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept))


def holding_run_dir(out: Path) -> contextlib.AbstractContextManager:
    """The run directory's lock (``data_catalog.locks``), taken by rank 0, which writes it; other ranks take none."""
    return locks.holding(out) if distributed.world_from_env().main else contextlib.nullcontext()


def train(
    task: TrainTask,
    config: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``task.model`` for ``config.steps`` steps; checkpoints and logs go to ``out_dir``.

    ``resume=True`` continues from ``out_dir/checkpoint.pt``. ``stop_after`` stops after that
    step without writing anything more (it simulates a killed run, for tests).
    """
    out = Path(out_dir)
    ckpt_path = out / LATEST
    world = distributed.world_from_env()
    with holding_run_dir(out):  # one writer per run directory, for the whole run
        if ckpt_path.exists() and not resume:
            raise UsageInputError(
                f"{out} already holds a training run; pass --resume to continue it or choose another --out"
            )
        if resume and not ckpt_path.exists():
            raise UsageInputError(f"--resume: no checkpoint in {out}")
        if not resume and world.main:
            _start_log_afresh(out / METRICS_FILE)
        out.mkdir(parents=True, exist_ok=True)
        device = pick_device(config, world.local_rank)
        world = distributed.join(world, device)
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
        try:
            return _run(task, config, out, resume=resume, stop_after=stop_after, world=world, device=device)
        finally:
            torch.use_deterministic_algorithms(was_deterministic)


def _run(
    task: TrainTask,
    config: TrainConfig,
    out: Path,
    *,
    resume: bool,
    stop_after: int | None,
    world: distributed.World,
    device: torch.device,
) -> TrainResult:
    ckpt_path = out / LATEST
    seed_everything(config.seed)

    model = task.model.to(device)
    engine = make_engine(
        model,
        task.feedback_points,
        config,
        output=getattr(task, "feedback_output", None),
        error=getattr(task, "feedback_error", "sample"),
        norm=getattr(task, "feedback_norm", None),
    )
    if not resume and aligns_head(config, engine, model):
        align_head(engine, model, getattr(task, "feedback_output", None))
    if world.size > 1:  # every rank starts from rank 0's weights (its head, where ranks have their own media)
        distributed.broadcast_module(model)
    optimizer = torch.optim.AdamW(
        param_groups(model, config, head_layer(model, task, engine)), lr=config.lr, betas=config.betas
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, config))

    start = 0
    metrics_path = out / METRICS_FILE
    if resume:
        state = load_checkpoint(ckpt_path, map_location=device)
        saved = state.get("train_config", {})
        changed = [k for k in RESUME_KEYS if k in saved and saved[k] != config.to_dict()[k]]
        if changed:
            raise UsageInputError(
                f"--resume: {', '.join(changed)} differ from the run in {out}; keep the original settings"
            )
        if int(state.get("world_size", 1)) != world.size:
            raise UsageInputError(
                f"--resume: the run in {out} used {state.get('world_size', 1)} process(es), this launch has {world.size}; "
                "resume with the same number of processes"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if hasattr(engine, "load_state_dict") and state.get("engine"):
            engine.load_state_dict(state["engine"])
        set_rng_state(state["rng"])
        start = int(state["step"])
        if world.main:
            _truncate_metrics(metrics_path, start)

    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )
    stream = batch_stream(task, config, start, world)
    progress = Progress(config.steps, start, config.progress and world.main, config.log_every)
    t0 = time.perf_counter()
    window_loss, window_n, samples, last_ckpt, val = 0.0, 0, 0, None, {}
    last_loss = float("nan")
    step = start
    try:
        for step in range(start + 1, config.steps + 1):
            model.train()
            batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in next(stream).items()}
            with autocast:
                loss = task.loss(model, batch)
            losses = distributed.gather_losses(loss, world)  # (world,) a collective: every rank stops together
            if not torch.isfinite(losses).all():
                bad = ", ".join(f"{v:g} on rank {r}" for r, v in enumerate(losses.tolist()) if not math.isfinite(v))
                raise FloatingPointError(f"training loss became {bad} at step {step}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            engine.backward(loss)
            if world.size > 1:
                distributed.average_gradients(model.parameters(), world)
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()

            mean_loss = float(losses.mean())
            window_loss += mean_loss
            window_n += 1
            samples += config.batch_size * world.size
            elapsed = time.perf_counter() - t0
            rate = samples / max(elapsed, 1e-9)
            objective = task.objective(step) if hasattr(task, "objective") else None  # e.g. one-step | rollout
            progress.update(
                step,
                mean_loss,
                rate,
                (config.steps - step) * config.batch_size * world.size / max(rate, 1e-9),
                objective,
            )
            if world.main and (step % config.log_every == 0 or step == config.steps):
                last_loss = window_loss / window_n
                _append_jsonl(
                    metrics_path,
                    {
                        "step": step,
                        "kind": "train",
                        "loss": last_loss,
                        "lr": scheduler.get_last_lr()[0],
                        "samples_per_s": rate,
                        "wall_s": elapsed,
                        **_feedback_costs(engine),
                        **({"objective": objective} if objective else {}),
                    },
                )
                window_loss, window_n = 0.0, 0
            if world.main and ((config.val_every and step % config.val_every == 0) or step == config.steps):
                val = _validate(task, model, autocast)
                _append_jsonl(metrics_path, {"step": step, "kind": "val", **val})
                cosines = _alignment(task, model, engine, batch, autocast)
                if cosines:
                    _append_jsonl(metrics_path, {"step": step, "kind": "alignment", **cosines})
            if step % config.checkpoint_every == 0 or step == config.steps:
                distributed.check_same_weights(model, world, step)
            if world.main and (step % config.checkpoint_every == 0 or step == config.steps):
                last_ckpt = save_checkpoint(
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": rng_state(),
                        "step": step,
                        "world_size": world.size,
                        "engine": engine.state_dict() if hasattr(engine, "state_dict") else {},
                        "engine_stats": engine_stats(engine),
                        "train_config": config.to_dict(),
                        "task": task.checkpoint_extra(),
                    },
                    ckpt_path,
                )
            if stop_after is not None and step >= stop_after:
                break
        distributed.barrier(world)  # the last checkpoint is on disk before any rank returns
    finally:
        progress.close()
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    wall = time.perf_counter() - t0
    if window_n:
        last_loss = window_loss / window_n
    return TrainResult(
        steps=step,
        final_loss=last_loss,
        val=val,
        wall_time_s=wall,
        samples_per_s=samples / max(wall, 1e-9),
        checkpoint=last_ckpt,
        engine_stats=engine_stats(engine),
        stopped_early=step < config.steps,
        rank=world.rank,
    )


def _feedback_costs(engine: Any) -> dict[str, Any]:
    """DFA modes: the error granularity and the feedback projections' cumulative simulated device
    time and energy (zero for a digital projector), logged beside the digital wall time."""
    if getattr(engine, "mode", "backprop") == "backprop" or not hasattr(engine, "stats"):
        return {}
    projector = engine.stats.projector
    return {"error": engine.error, "device_time_s": projector.device_time_s, "energy_j": projector.energy_j}


def _alignment(
    task: TrainTask, model: torch.nn.Module, engine: Any, batch: dict[str, Any], autocast: Any
) -> dict[str, float]:
    """Per feedback point, cosine of the DFA and back-propagation gradients on ``batch`` (DFA modes only).

    Logged beside each validation so that a user sees whether DFA is learning: cosines well above
    0 mean the blocks' updates descend the loss. Nothing of the run's state changes.
    """
    if getattr(engine, "mode", "backprop") == "backprop" or not hasattr(engine, "alignment_of"):
        return {}
    model.train()
    with autocast:
        cosines = engine.alignment_of(lambda: task.loss(model, batch))
    return {name: round(value, 5) for name, value in cosines.items()}


def _validate(task: TrainTask, model: torch.nn.Module, autocast: Any) -> dict[str, float]:
    model.eval()
    with torch.no_grad(), autocast:
        scores = task.validate(model)
    return {k: float(v) for k, v in scores.items()}
