"""A model registry: a directory of versioned forecaster checkpoints and a ``current`` pointer.

Layout of a registry directory::

    versions/v0001/checkpoint.pt   the trained checkpoint, copied in (never edited afterwards)
    versions/v0001/model.json      version, created, sha256 of checkpoint.pt, training configuration
                                   (train_config, model_config), provenance, validation skill, data period
    current.json                   {"version": "v0003", "history": ["v0001", "v0002"], "switched": ..., "reason": ...}
                                   the model in use; ``history`` lists the formerly current versions (newest
                                   last) that ``rollback`` returns to. Replaced atomically (temp file + os.replace).
    runs/<UTC time>/               working directories of the retraining flow (data, forecasts, scores)

A version directory appears whole (written beside, then renamed into place). Changes to the
pointer and to the set of versions hold the registry's lock (``.current.json.lock``), so two
processes never interleave a promotion with a prune. Nothing here imports Prefect or torch at
import time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from climate_optics.errors import UsageInputError
from climate_optics.provenance import file_sha256
from data_catalog import locks
from data_catalog.faults import pause_point
from data_catalog.redact import redact

POINTER = "current.json"
VERSIONS = "versions"
RUNS = "runs"
CHECKPOINT = "checkpoint.pt"
RECORD = "model.json"
DEFAULT_KEEP = 5  # versions kept by prune (besides the current one and the one rollback returns to)
_VERSION = re.compile(r"^v(\d{4,})$")


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


@dataclass
class ModelRegistry:
    """One registry directory (see the module docstring for its layout)."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | os.PathLike, *, create: bool = False) -> "ModelRegistry":
        """The registry at ``root``; ``create`` makes an empty one where there is none."""
        path = Path(root)
        if create:
            if path.exists() and not path.is_dir():
                raise UsageInputError(f"--registry {path}: exists and is not a directory")
            if path.is_dir() and any(path.iterdir()) and not (path / VERSIONS).is_dir():
                raise UsageInputError(
                    f"--registry {path}: a non-empty directory that is not a model registry "
                    f"(no {VERSIONS}/); choose an empty or new directory"
                )
            (path / VERSIONS).mkdir(parents=True, exist_ok=True)
        elif not (path / VERSIONS).is_dir():
            raise UsageInputError(
                f"--registry {path}: not a model registry (no {VERSIONS}/ directory); "
                "a retraining run or `climate-optics models register` creates one"
            )
        return cls(path)

    # -- reading ----------------------------------------------------------------------------

    def versions(self) -> list[str]:
        """Registered versions, oldest first."""
        names = [p.name for p in (self.root / VERSIONS).iterdir() if _VERSION.match(p.name) and (p / RECORD).is_file()]
        return sorted(names, key=lambda name: int(name[1:]))

    def record(self, version: str) -> dict[str, Any]:
        """The ``model.json`` of ``version``."""
        path = self.root / VERSIONS / str(version) / RECORD
        if not _VERSION.match(str(version)) or not path.is_file():
            known = ", ".join(self.versions()) or "none yet"
            raise UsageInputError(f"--registry {self.root}: no version {version!r} (registered: {known})")
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise UsageInputError(f"{path}: not valid JSON ({exc})") from None

    def checkpoint(self, version: str) -> Path:
        self.record(version)  # names the valid versions when unknown
        return self.root / VERSIONS / version / CHECKPOINT

    def pointer(self) -> dict[str, Any]:
        """The content of ``current.json`` (an empty pointer before the first promotion)."""
        path = self.root / POINTER
        if not path.is_file():
            return {"version": None, "history": []}
        try:
            pointer = json.loads(path.read_text())
        except ValueError as exc:
            raise UsageInputError(f"{path}: not valid JSON ({exc}); restore it or promote a version anew") from None
        if not isinstance(pointer, dict) or "version" not in pointer:
            raise UsageInputError(f"{path}: not a registry pointer (no 'version')")
        pointer.setdefault("history", [])
        return pointer

    def current(self) -> str | None:
        """The current version (None before the first promotion)."""
        version = self.pointer()["version"]
        if version is not None:
            self.record(version)  # a pointer to a missing version is an error, not "no model"
        return version

    def verify(self, version: str) -> None:
        """Refuse a version whose checkpoint no longer matches its recorded sha256."""
        expected = self.record(version).get("sha256")
        path = self.checkpoint(version)
        if not path.is_file():
            raise UsageInputError(f"{path}: checkpoint of {version} is missing")
        actual = file_sha256(path)
        if actual != expected:
            raise UsageInputError(
                f"{path}: sha256 {actual[:12]}... differs from the recorded {str(expected)[:12]}... "
                f"({version} was altered or damaged)"
            )

    # -- changing ---------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's lock (waiting for another process's short change to finish)."""
        target = self.root / POINTER
        acquired = locks.acquire(target, wait=True)
        try:
            yield
        finally:
            if acquired:
                locks.release(target)

    def register(
        self,
        checkpoint: str | os.PathLike,
        *,
        validation: dict[str, Any] | None = None,
        data_period: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> str:
        """Copy a forecaster checkpoint in as a new version (not promoted); returns its name."""
        from climate_optics.io.checkpoints import load_checkpoint

        state = load_checkpoint(checkpoint)  # refuses a damaged or foreign file before anything is copied
        task = state.get("task", {})
        training = {
            "train_config": state.get("train_config", {}),
            "model_config": task.get("model_config", {}),
            "step": int(state.get("step", 0)),
            "engine": state.get("engine", {}),
        }
        data = task.get("data", {})
        with self.locked():
            numbers = [int(name[1:]) for name in self.versions()]
            version = f"v{(max(numbers) + 1 if numbers else 1):04d}"
            target = self.root / VERSIONS / version
            temporary = locks.temporary_path(target)
            temporary.mkdir(parents=True)
            try:
                shutil.copy2(checkpoint, temporary / CHECKPOINT)
                record = {
                    "version": version,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "checkpoint": CHECKPOINT,
                    "sha256": file_sha256(temporary / CHECKPOINT),
                    "training": _plain(training),
                    "provenance": redact(
                        {
                            "source_checkpoint": str(Path(checkpoint).resolve()),
                            "data_store": data.get("store", ""),
                            "source_dataset": data.get("source_dataset", ""),
                            **_package(),
                            **(provenance or {}),
                        }
                    ),
                    "validation": validation or {},
                    "data_period": data_period or {},
                }
                (temporary / RECORD).write_text(json.dumps(_plain(record), indent=2, sort_keys=True) + "\n")
                os.replace(temporary, target)
            except BaseException:
                shutil.rmtree(temporary, ignore_errors=True)
                raise
        return version

    def promote(self, version: str, *, reason: str = "", expected_current: str | None | object = ...) -> bool:
        """Make ``version`` current; False (nothing changed) when ``expected_current`` is given and the
        current version changed meanwhile (another retraining promoted first)."""
        with self.locked():
            self.verify(version)
            pointer = self.pointer()
            if expected_current is not ... and pointer["version"] != expected_current:
                return False
            if pointer["version"] == version:
                return True
            history = [v for v in pointer["history"] if v != version]
            if pointer["version"] is not None:
                history.append(pointer["version"])
            self._write_pointer({"version": version, "history": history, "reason": reason or "promoted"})
        return True

    def rollback(self) -> str:
        """Return to the version that was current before this one; returns it."""
        with self.locked():
            pointer = self.pointer()
            history = [v for v in pointer["history"] if (self.root / VERSIONS / v / RECORD).is_file()]
            if not history:
                raise UsageInputError(
                    f"--registry {self.root}: nothing to roll back to "
                    f"(current {pointer['version'] or 'unset'}, no earlier current version kept)"
                )
            previous = history.pop()
            self.verify(previous)
            self._write_pointer(
                {"version": previous, "history": history, "reason": f"rollback from {pointer['version']}"}
            )
        return previous

    def prune(self, keep: int = DEFAULT_KEEP) -> list[str]:
        """Remove all but the newest ``keep`` versions (never the current one, nor the one ``rollback``
        returns to), and the working directories of runs beyond the newest ``keep``; returns the versions removed."""
        if keep < 1:
            raise UsageInputError(f"--keep must be at least 1, got {keep}")
        removed: list[str] = []
        with self.locked():
            pointer = self.pointer()
            versions = self.versions()
            kept = set(versions[-keep:]) | {pointer["version"]} | set(pointer["history"][-1:])
            for version in versions:
                if version not in kept:
                    _remove_dir(self.root / VERSIONS / version)
                    removed.append(version)
            if removed and any(v in removed for v in pointer["history"]):
                pointer["history"] = [v for v in pointer["history"] if v not in removed]
                self._write_pointer(pointer)
            runs = sorted(p for p in (self.root / RUNS).glob("*") if p.is_dir()) if (self.root / RUNS).is_dir() else []
            for run in runs[:-keep]:
                shutil.rmtree(run, ignore_errors=True)
        return removed

    def new_run_dir(self) -> Path:
        """A fresh working directory ``runs/<UTC time>`` for one retraining."""
        base = self.root / RUNS / utc_stamp()
        path, n = base, 1
        while True:
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                n += 1
                path = base.with_name(f"{base.name}-{n}")

    def _write_pointer(self, pointer: dict[str, Any]) -> None:
        """Replace ``current.json`` atomically: a temporary sibling, fsynced, then ``os.replace``."""
        pointer = {**pointer, "switched": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        target = self.root / POINTER
        temporary = locks.temporary_path(target)
        try:
            with open(temporary, "w") as handle:
                handle.write(json.dumps(pointer, indent=2) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            pause_point("before-rename", target)  # kill tests stop a promotion here
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)


def _remove_dir(path: Path) -> None:
    """Rename away first, so that a half-removed version is never listed."""
    doomed = locks.temporary_path(path, kind="old")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _package() -> dict[str, Any]:
    import platform

    from climate_optics import __version__

    return {"climate_optics_version": __version__, "python_version": platform.python_version()}


def _plain(value: Any) -> Any:
    """JSON-ready copy: tensors and numpy values to lists and numbers, paths to strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
