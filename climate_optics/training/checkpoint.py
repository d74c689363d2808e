"""Checkpoints: written atomically, loaded with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors and primitive containers (no pickled objects):
``model``, ``optimizer``, ``scheduler`` state dicts, ``rng`` (torch, CUDA, numpy, python),
``step``, ``engine`` (DFA projector seed/config), ``train_config`` and ``task`` (model config
and data statistics, from ``TrainTask.checkpoint_extra``).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from climate_optics.errors import UsageInputError
from data_catalog.store import atomic_store

LATEST = "checkpoint.pt"


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (temporary sibling, then rename)."""
    with atomic_store(path, overwrite=True) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); a missing or foreign file is a usage error."""
    path = Path(path)
    if path.is_dir():
        path = path / LATEST
    if not path.is_file():
        raise UsageInputError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise UsageInputError(f"{path}: not a readable climate-optics checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or "model" not in state or "task" not in state:
        raise UsageInputError(f"{path}: not a climate-optics checkpoint (missing 'model' or 'task')")
    return state


def rng_state() -> dict[str, Any]:
    """Global RNG states of torch, CUDA, numpy and python as tensors and primitives."""
    np_state = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved."""
    torch.set_rng_state(state["torch"].cpu())
    npy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": npy["bit_generator"],
            "state": {"key": npy["key"].numpy().astype(np.uint32), "pos": npy["pos"]},
            "has_gauss": npy["has_gauss"],
            "gauss": npy["gauss"],
        }
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
