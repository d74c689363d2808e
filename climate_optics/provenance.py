"""Provenance attributes carried by every store the pipeline writes."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from climate_optics import __version__
from data_catalog.redact import redact


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def provenance_attrs(
    *,
    source_dataset: str | None = None,
    model_config: dict[str, Any] | None = None,
    training_backend: str | None = None,
    opu_config: dict[str, Any] | None = None,
    checkpoint: str | Path | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Attributes for a store: source, model config, backend, OPU config, checkpoint sha256, version, time.

    Nested values are JSON-encoded strings so that any Zarr/NetCDF reader can carry them.
    """

    attrs: dict[str, Any] = {
        "source_dataset": source_dataset or "",
        "model_config": json.dumps(model_config or {}, sort_keys=True, default=str),
        "training_backend": training_backend or "",
        "opu_config": json.dumps(opu_config or {}, sort_keys=True, default=str),
        "checkpoint_sha256": file_sha256(checkpoint) if checkpoint else "",
        "climate_optics_version": __version__,
        "python_version": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for key, value in (extra or {}).items():
        attrs[key] = (
            value if isinstance(value, (str, int, float, bool)) else json.dumps(value, sort_keys=True, default=str)
        )
    return redact(attrs)  # a source URL may carry a password
