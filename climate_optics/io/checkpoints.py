"""Checkpoints: written atomically with a recorded sha256, loaded with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors and primitive containers (no pickled objects):
``model``, ``optimizer``, ``scheduler`` state dicts, ``rng`` (torch, CUDA, numpy, python),
``step``, ``engine`` (DFA projector seed/config), ``train_config`` and ``task`` (model config
and data statistics, from ``TrainTask.checkpoint_extra``), plus ``sha256``: the digest of all the
other entries (``state_digest``), checked before a checkpoint is used. A file that is not a torch
zip archive (a raw pickle, say) is refused before anything in it is read.
"""

from __future__ import annotations

import hashlib
import os
import random
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from climate_optics.errors import UsageInputError
from data_catalog.store import atomic_store

LATEST = "checkpoint.pt"
DIGEST_KEY = "sha256"
_known: dict[str, tuple[int, int]] = {}  # checkpoints this process wrote or verified -> (size, mtime_ns)


def state_digest(state: dict[str, Any]) -> str:
    """sha256 of a checkpoint's entries (all but DIGEST_KEY): names, types, dtypes, shapes, raw bytes."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in state.items() if k != DIGEST_KEY})
    return digest.hexdigest()


def _feed(digest: "hashlib._Hash", value: Any) -> None:
    if isinstance(value, dict):
        digest.update(b"{%d" % len(value))
        for key, item in sorted(value.items(), key=lambda kv: (type(kv[0]).__name__, str(kv[0]))):
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(b"[%d" % len(value) if isinstance(value, list) else b"(%d" % len(value))
        for item in value:
            _feed(digest, item)
    elif isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{flat.dtype}{tuple(value.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def _stamp(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` and its digest to ``path`` atomically; an existing file must be our checkpoint."""
    path = Path(path)
    if path.is_file() and _known.get(str(path.absolute())) != _stamp(path):
        try:
            load_checkpoint(path)
        except UsageInputError as exc:
            raise UsageInputError(
                f"{path}: exists and is not a checkpoint this tool wrote; it will not be replaced ({exc})"
            ) from None
    with atomic_store(path, overwrite=True, kind="file") as tmp:
        torch.save({**state, DIGEST_KEY: state_digest(state)}, tmp)
    _known[str(path.absolute())] = _stamp(path)
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely and verify its digest; a missing, foreign or altered file is a usage error."""
    path = Path(path)
    if path.is_dir():
        path = path / LATEST
    if not path.is_file():
        raise UsageInputError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise UsageInputError(
            f"{path}: not a climate-optics checkpoint (not a torch zip archive: truncated, or another"
            " format such as a raw pickle, which is never loaded)"
        )
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols would add lines to the one-line error
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise UsageInputError(f"{path}: not a readable climate-optics checkpoint ({_reason(exc)})") from None
    if not isinstance(state, dict) or "model" not in state or "task" not in state:
        raise UsageInputError(f"{path}: not a climate-optics checkpoint (missing 'model' or 'task')")
    recorded = state.get(DIGEST_KEY)
    if not isinstance(recorded, str):
        raise UsageInputError(
            f"{path}: checkpoint has no recorded sha256 (not written by this version of climate-optics)"
        )
    if recorded != state_digest(state):
        raise UsageInputError(f"{path}: checkpoint contents do not match their recorded sha256 (corrupted or altered)")
    _known[str(path.absolute())] = _stamp(path)
    return state


def _reason(exc: Exception) -> str:
    """Why torch could not read a file, without torch's advice to retry with weights_only=False."""
    import pickle

    if isinstance(exc, pickle.UnpicklingError):
        return "it holds Python objects other than tensors and plain containers, which are never loaded"
    first = str(exc).split(". ")[0].splitlines()[0] if str(exc) else type(exc).__name__
    return "unreadable or truncated file" if "weights_only" in first else f"unreadable or truncated file: {first}"


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
