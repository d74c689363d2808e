"""Run the model and write a canonical Zarr store, in time chunks, with a progress bar.

Memory holds one chunk of output (``chunk_days``) at a time, so records longer than memory
work. The random stream depends only on the seed and the configuration (never on the chunk
size), and no time stamps are written, so the same configuration gives a bit-identical store. The cache generates resumably
(``ensure_generated``): a killed generation continues from its last complete segment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from data_catalog import locks
from data_catalog.faults import pause_point
from data_catalog.regrid import equiangular_latitudes, equiangular_longitudes
from data_catalog.schema import LATITUDE, LEVEL, LONGITUDE, REALIZATION, TIME, VARIABLES
from data_catalog.store import atomic_store
from data_catalog.synthetic.config import GENERATOR_VERSION, OUTPUT_STEP_S, SyntheticConfig
from data_catalog.synthetic.diagnostics import LEVELS, Diagnostics
from data_catalog.synthetic.model import EquivalentBarotropicModel

log = logging.getLogger(__name__)

STORE_TIME_CHUNK = 20  # 5 days of 6-hourly fields per Zarr chunk
CITATION = "climate-optics embedded synthetic reanalysis (equivalent-barotropic spectral model), generated locally"


def _coords(config: SyntheticConfig) -> dict[str, np.ndarray]:
    n_lat, n_lon = config.output_shape
    return {LATITUDE: equiangular_latitudes(n_lat), LONGITUDE: equiangular_longitudes(n_lon)}


def _attrs(config: SyntheticConfig) -> dict[str, object]:
    return {
        "title": "Synthetic reanalysis",
        "source": CITATION,
        "generator_version": GENERATOR_VERSION,
        "synthetic_config": json.dumps(config.to_dict(), sort_keys=True),
        "synthetic_config_digest": config.digest(),
        "seed": config.seed,
        "grid": config.grid,
        "Conventions": "CF-1.8",
    }


def _var_attrs(name: str) -> dict[str, str]:
    var = VARIABLES[name]
    attrs = {"units": var.units, "long_name": var.long_name}
    if var.standard_name:
        attrs["standard_name"] = var.standard_name
    return attrs


def _chunk_dataset(
    config: SyntheticConfig, times: np.ndarray, fields: dict[str, np.ndarray], coords: dict[str, np.ndarray]
) -> xr.Dataset:
    """fields: name -> (T, B, [2,] J, I) float32."""
    members = config.members > 1
    data_vars = {}
    for name, values in fields.items():
        dims = [TIME, REALIZATION] + ([LEVEL] if values.ndim == 5 else []) + [LATITUDE, LONGITUDE]
        if not members:
            values = values[:, 0]
            dims.remove(REALIZATION)
        data_vars[name] = xr.Variable(dims, values, _var_attrs(name))
    all_coords = {TIME: times, LEVEL: np.array(LEVELS, dtype=np.int64), **coords}
    if members:
        all_coords[REALIZATION] = np.arange(config.members)
    return xr.Dataset(data_vars, coords=all_coords)


@contextlib.contextmanager
def _progress(enabled: bool, total: int, description: str) -> Iterator:
    if not enabled:
        yield lambda n=1: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True, console=None) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def run_model(
    config: SyntheticConfig, *, chunk_days: float = 30.0, progress: bool | None = None
) -> Iterator[xr.Dataset]:
    """Yield the output record as canonical datasets of at most ``chunk_days`` each (first one with statics)."""
    for ds, _ in _segments(config, chunk_days=chunk_days, progress=progress):
        yield ds


MODEL_STATE = ("q", "temp", "noise", "forcing")  # the model's prognostic and forcing spectra


def _segments(
    config: SyntheticConfig, *, chunk_days: float, progress: bool | None, resume: dict[str, Any] | None = None
) -> Iterator[tuple[xr.Dataset, dict[str, Any]]]:
    """Yield (dataset, state to resume after it) per chunk; ``resume`` continues from such a state."""
    if progress is None:
        progress = sys.stderr.isatty()
    rng = np.random.default_rng(np.random.SeedSequence(config.seed))
    model = EquivalentBarotropicModel(config, rng)
    coords = _coords(config)
    diag = Diagnostics(model, coords[LATITUDE], coords[LONGITUDE])
    step = np.timedelta64(config.dt_seconds, "s")
    start = np.datetime64(config.start, "s")
    n_spin = int(round(config.spinup_days * 86400 / config.dt_seconds))
    per_output = OUTPUT_STEP_S // config.dt_seconds
    n_times = config.n_times
    per_chunk = max(1, int(round(chunk_days * 4)))
    label = f"synthetic {config.grid} seed {config.seed}"
    with _progress(progress, n_spin + n_times * per_output, label) as advance:
        if resume is None:
            time = start - n_spin * step
            model.initialise(time)
            for _ in range(n_spin):
                model.step(time)
                time += step
                advance()
            first_chunk = 0
        else:
            for name in MODEL_STATE:
                setattr(model, name, resume["arrays"][name].copy())
            rng.bit_generator.state = resume["rng"]
            time, first_chunk = np.datetime64(resume["time"], "s"), resume["next"]
            advance(n_spin + first_chunk * per_output)
        for begin in range(first_chunk, n_times, per_chunk):
            count = min(per_chunk, n_times - begin)
            times = start + np.arange(begin, begin + count) * (per_output * step)
            buffers: dict[str, list[np.ndarray]] = {}
            for k in range(count):
                for name, values in diag.fields(model.q, model.temp, time).items():
                    buffers.setdefault(name, []).append(values.astype(np.float32))
                if begin + k < n_times - 1:
                    for _ in range(per_output):
                        model.step(time)
                        time += step
                        advance()
            ds = _chunk_dataset(
                config, times.astype("datetime64[ns]"), {n: np.stack(v) for n, v in buffers.items()}, coords
            )
            if begin == 0:
                for name, values in diag.static().items():
                    ds[name] = xr.Variable((LATITUDE, LONGITUDE), values.astype(np.float32), _var_attrs(name))
            ds.attrs.update(_attrs(config))  # on every segment: an append replaces the root attributes
            state = {
                "next": begin + count,
                "per_chunk": per_chunk,
                "time": str(time),
                "rng": rng.bit_generator.state,
                "arrays": {name: getattr(model, name) for name in MODEL_STATE},
            }
            yield ds, state


def _encoding(ds: xr.Dataset) -> dict[str, dict]:
    enc = {}
    for name, var in ds.data_vars.items():
        enc[name] = {"chunks": tuple(STORE_TIME_CHUNK if d == TIME else ds.sizes[d] for d in var.dims)}
    enc[TIME] = {"units": "hours since 1900-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"}
    return enc


def generate(
    config: SyntheticConfig,
    path: str | Path,
    *,
    overwrite: bool = False,
    chunk_days: float = 30.0,
    progress: bool | None = None,
    resumable: bool = False,
) -> Path:
    """Integrate ``config`` and write the canonical store at ``path`` atomically; returns the path.

    ``resumable``: segments are kept in ``.NAME.partial`` (with the model state after each), so a
    run killed part-way continues from its last segment; the result is bit-identical.
    """
    path = Path(path)
    chunk_days = max(chunk_days, STORE_TIME_CHUNK / 4)
    chunk_days = STORE_TIME_CHUNK / 4 * round(chunk_days / (STORE_TIME_CHUNK / 4))  # whole Zarr chunks per write
    with atomic_store(path, overwrite=overwrite) as tmp:
        work = path.with_name(f".{path.name}.partial") if resumable else tmp
        resume = _load_resume(work, config, per_chunk=int(round(chunk_days * 4))) if resumable else None
        first = resume is None
        for ds, state in _segments(config, chunk_days=chunk_days, progress=progress, resume=resume):
            if first:
                ds.to_zarr(work, mode="w", encoding=_encoding(ds), zarr_format=3, consolidated=False)
                first = False
            else:
                ds.to_zarr(work, append_dim=TIME, zarr_format=3, consolidated=False)
            if resumable:
                _save_resume(work, config, state)
            pause_point("synthetic-segment", path)
        if resumable:
            work.rename(tmp)
            _discard(work)  # its recorded state
    return path


RESUME_JSON, RESUME_ARRAYS = (
    ".json",
    ".npz",
)  # beside a partial store (a Zarr store holds only Zarr), removed when complete


def _beside(work: Path, suffix: str) -> Path:
    return work.with_name(work.name + suffix)


def _save_resume(work: Path, config: SyntheticConfig, state: dict[str, Any]) -> None:
    """Record the state after the segment just appended (arrays first, then the JSON that points to them)."""
    arrays, record = _beside(work, RESUME_ARRAYS), _beside(work, RESUME_JSON)
    with open(arrays.with_name(arrays.name + ".new"), "wb") as handle:
        np.savez(handle, **state["arrays"])
    os.replace(arrays.with_name(arrays.name + ".new"), arrays)
    fields = {k: v for k, v in state.items() if k != "arrays"} | {"digest": config.digest()}
    record.with_name(record.name + ".new").write_text(json.dumps(fields), encoding="utf-8")
    os.replace(record.with_name(record.name + ".new"), record)


def _load_resume(work: Path, config: SyntheticConfig, *, per_chunk: int) -> dict[str, Any] | None:
    """The state a partial store can continue from; None (and the partial removed) when it cannot."""
    if not work.exists():
        _discard(work)
        return None
    try:
        record = json.loads(_beside(work, RESUME_JSON).read_text(encoding="utf-8"))
        with np.load(_beside(work, RESUME_ARRAYS), allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in MODEL_STATE}
        stored = xr.open_zarr(work, consolidated=False).sizes[TIME]
        usable = record["digest"] == config.digest() and record["per_chunk"] == per_chunk and stored == record["next"]
    except (OSError, ValueError, KeyError, TypeError):
        usable = False
    if not usable:
        log.warning("discarding %s: it does not match its recorded state (killed between two writes)", work)
        _discard(work)
        return None
    log.warning(
        "continuing %s from time step %d of %d (a partial run kept by an interrupted generation)",
        work,
        record["next"],
        config.n_times,
    )
    return record | {"arrays": arrays}


def _discard(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
    for suffix in (RESUME_JSON, RESUME_ARRAYS):
        _beside(work, suffix).unlink(missing_ok=True)


def ensure_generated(
    config: SyntheticConfig, path: str | Path, *, progress: bool | None = None, chunk_days: float = 30.0
) -> Path:
    """The store at ``path``, generated (resumably) unless present; concurrent callers wait for one generation."""
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    newly = locks.acquire(path, wait=True)
    try:
        if not path.exists():  # another process may have generated it while this one waited
            generate(config, path, progress=progress, chunk_days=chunk_days, resumable=True)
    finally:
        if newly:
            locks.release(path)
    return path
