"""Measurements of DFA vs back-propagation on the same ViT, shared by ``dfa_cases.py`` and
``gpu/run_gpu_checks.py``. Needs only ``optical_backend``, torch and numpy; results are dicts.

- ``step_times``: median seconds of one training step (zero_grad, forward, loss, backward;
  the optimizer step is the same for every method and left out), the methods interleaved
  round by round on one model so that machine noise hits them alike.
- ``peak_step_memory``: the peak memory a first training step adds above what the model, its
  inputs and the gradient buffers already hold (activations, signals, workspaces). On CUDA
  ``torch.cuda.max_memory_allocated``; on CPU each case runs in a fresh subprocess whose peak
  RSS (VmHWM, reset just before the step) is read from /proc, with glibc's mmap threshold
  fixed so that freed blocks go back to the system.
- ``learning_curves``: per-step losses of back-propagation, standard and lean DFA.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from optical_backend import DFA
from optical_backend.toy_models import TinyViT, ViTBlock

NAME = "dfa"
TIME_TARGETS = {"dfa-structured": "ratio <= 1.05", "dfa-optical": "ratio <= 1.15"}
METHODS = {  # name -> DFA keyword arguments (None: plain back-propagation, no engine)
    "backprop": None,
    "backprop+checkpoint": None,
    "dfa-structured": {"mode": "dfa", "projector": "structured", "error": "token"},
    "dfa-optical": {"mode": "optical", "error": "token"},
    "dfa-structured-sample-split": {"mode": "dfa", "projector": "structured", "error": "sample", "feedback": "split"},
    "dfa-lean": {"mode": "dfa", "projector": "structured", "error": "token", "memory": "lean"},
}


def vit_sizes(depth: int, size: str) -> dict[str, Any]:
    """Model and batch sizes: ``tiny`` (dry runs), ``cpu`` (2-core machines), ``gpu``."""
    table = {
        "tiny": dict(image=8, patch=2, c_in=2, c_out=2, dim=16, heads=2, batch=4),
        "cpu": dict(image=32, patch=4, c_in=4, c_out=4, dim=128, heads=4, batch=16),
        "gpu": dict(image=64, patch=4, c_in=8, c_out=8, dim=512, heads=8, batch=32),
    }
    return {**table[size], "depth": depth}


def build(sizes: dict[str, Any], device: str, checkpoint_blocks: bool = False, seed: int = 0):
    """The ViT, one batch of inputs and targets in token layout."""
    torch.manual_seed(seed)
    s = dict(sizes)
    batch = s.pop("batch")
    model = TinyViT(**s, checkpoint_blocks=checkpoint_blocks).to(device)
    torch.nn.init.normal_(model.head.weight, std=0.02)  # a trained-looking head: signals everywhere
    x = torch.randn(batch, s["c_in"], s["image"], s["image"], device=device)
    n_tokens = (s["image"] // s["patch"]) ** 2
    y = torch.randn(batch, n_tokens, s["c_out"] * s["patch"] ** 2, device=device)
    return model, x, y


def _engine(model, method: str):
    kwargs = METHODS[method]
    return None if kwargs is None else DFA(model, [ViTBlock], **kwargs)


def _step(model, engine, x, y) -> None:
    model.zero_grad(set_to_none=False)
    loss = F.mse_loss(model(x), y)
    if engine is None:
        loss.backward()
    else:
        engine.backward(loss)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_times(sizes: dict[str, Any], methods: list[str], device: str, rounds: int = 5) -> dict[str, float]:
    """Median step seconds per method on one model (engines attached one at a time)."""
    model, x, y = build(sizes, device)
    engines = {}
    for method in methods:
        engines[method] = _engine(model, method)
        if engines[method] is not None:
            engines[method].remove_hooks()
    samples: dict[str, list[float]] = {m: [] for m in methods}
    for r in range(rounds + 1):  # round 0 warms up (projector construction, kernels)
        for method in methods:
            engine = engines[method]
            model.checkpoint_blocks = method == "backprop+checkpoint"
            if engine is not None:
                engine.attach()
            _sync(device)
            start = time.perf_counter()
            _step(model, engine, x, y)
            _sync(device)
            if r:
                samples[method].append(time.perf_counter() - start)
            if engine is not None:
                engine.remove_hooks()
    return {m: statistics.median(v) for m, v in samples.items()}


def _cuda_peak(sizes: dict[str, Any], method: str, device: str) -> float:
    model, x, y = build(sizes, device, checkpoint_blocks=method == "backprop+checkpoint")
    engine = _engine(model, method)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # gradient buffers count as held, like the weights
    _step(model, engine, x[:1], y[:1])  # one-sample warm-up: kernels, caches, projector, engine state
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    _step(model, engine, x, y)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del model, engine, x, y
    torch.cuda.empty_cache()
    return peak / 2**20


_CPU_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import dfa_measure as m
m.torch.set_num_threads(1)  # thread pools allocate per thread: every case alike
print(json.dumps(m.cpu_peak_in_this_process(json.loads(sys.argv[2]), sys.argv[3])))
"""


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def cpu_peak_in_this_process(sizes: dict[str, Any], method: str) -> float:
    """Child side of the CPU memory measurement: MiB added by one first training step."""
    model, x, y = build(sizes, "cpu", checkpoint_blocks=method == "backprop+checkpoint")
    engine = _engine(model, method)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    _step(model, engine, x[:1], y[:1])  # one-sample warm-up: kernels, caches, projector, engine state
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _status_kb("VmRSS")
    _step(model, engine, x, y)
    return (_status_kb("VmHWM") - base) / 1024


def peak_step_memory(sizes: dict[str, Any], method: str, device: str, fresh_process: bool = True) -> float:
    """MiB that one training step adds at its peak (see the module docstring).

    ``fresh_process=False`` measures on CPU in this process (only to check the plumbing: the
    figures then depend on what the process allocated before).
    """
    if device.startswith("cuda"):
        return _cuda_peak(sizes, method, device)
    if not fresh_process:
        return cpu_peak_in_this_process(sizes, method)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS="1")
    here = str(Path(__file__).resolve().parent)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-c", _CPU_CHILD, here, json.dumps(sizes), method]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"memory case {method} failed: {done.stderr.strip()[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def learning_curves(sizes: dict[str, Any], steps: int, device: str, lr: float = 2e-3) -> dict[str, list[float]]:
    """Per-step training losses of back-propagation, standard DFA and lean DFA on one task."""
    from optical_backend.toy_models import teacher_regression

    s = {**sizes, "batch": None}
    x_all, y_all = teacher_regression(256, kind="image", image=s["image"], channels=s["c_in"], seed=0)
    curves = {}
    for method in ("backprop", "dfa-structured", "dfa-lean"):
        torch.manual_seed(0)
        model = TinyViT(
            image=s["image"], patch=2, c_in=s["c_in"], c_out=s["c_in"], dim=s["dim"], depth=s["depth"], heads=s["heads"]
        ).to(device)
        engine = _engine(model, method)
        opt = torch.optim.AdamW(model.parameters(), lr=lr)
        order = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(steps):
            idx = torch.randint(0, 256, (32,), generator=order)
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(x_all[idx].to(device)), y_all[idx].to(device))
            engine.backward(loss) if engine is not None else loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        curves[method] = losses
    return curves


def plot_curves(curves: dict[str, list[float]], path: Path) -> Path | None:
    """A PNG of the learning curves (None when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, losses in curves.items():
        ax.plot(losses, label=name, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (MSE)")
    ax.set_title("TinyViT regression: lean vs standard DFA vs back-propagation")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _ratio(ours: float, reference: float) -> float | None:
    return ours / reference if reference > 0 else None


# -- result records (plain dicts in the benchmarks/results row layout, minus machine/date) --
def time_records(depth: int, size: str, rounds: int, device: str = "cpu") -> list[dict]:
    methods = ["backprop", "dfa-structured", "dfa-optical", "dfa-structured-sample-split", "dfa-lean"]
    times = step_times(vit_sizes(depth, size), methods, device, rounds=rounds)
    base = times["backprop"]
    return [
        dict(
            benchmark=NAME,
            case=f"step time depth {depth}: {m} vs backprop",
            ours=times[m],
            reference=base,
            unit="s/step",
            ratio=_ratio(times[m], base),
            target=TIME_TARGETS.get(m),
        )
        for m in methods[1:]
    ]


def memory_records(depth: int, size: str, device: str = "cpu", fresh_process: bool = True) -> list[dict]:
    peaks = {
        m: peak_step_memory(vit_sizes(depth, size), m, device, fresh_process)
        for m in ("backprop", "backprop+checkpoint", "dfa-structured", "dfa-lean")
    }
    bp, ckpt, lean = peaks["backprop"], peaks["backprop+checkpoint"], peaks["dfa-lean"]
    return [
        dict(
            benchmark=NAME,
            case=f"peak step memory depth {depth}: dfa standard vs backprop",
            ours=peaks["dfa-structured"],
            reference=bp,
            unit="MiB",
            ratio=_ratio(peaks["dfa-structured"], bp),
        ),
        dict(
            benchmark=NAME,
            case=f"peak step memory depth {depth}: dfa lean vs backprop",
            ours=lean,
            reference=bp,
            unit="MiB",
            ratio=_ratio(lean, bp),
            target="ratio <= 0.3" if depth == 24 else None,
        ),
        dict(
            benchmark=NAME,
            case=f"peak step memory depth {depth}: dfa lean vs backprop+checkpoint",
            ours=lean,
            reference=ckpt,
            unit="MiB",
            ratio=_ratio(lean, ckpt),
            target="ratio < 1" if depth == 24 else None,
        ),
    ]
