"""Training throughput, side by side in one run on the same store.

1. Samples/s of the tiny forecaster in each mode (backprop, dfa, optical); DFA and optical rows
   report their ratio to back-propagation.
2. The Zarr window sampler's throughput against the model's consumption (back-propagation
   samples/s): target >= 3x, so the loader never starves the model.
3. The sampler against xbatcher (``BatchGenerator`` over the same store, same samples per
   batch, fields loaded to numpy): target >= 2x.
4. Peak resident memory of the process (Linux VmHWM), reported.

    python benchmarks/bench_training.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from benchkit import Row, peak_rss_mib, write_results

from optical_backend.kinds import TRAINING_MODES

NAME = "training"


def build_store(directory: Path, n_time: int) -> Path:
    from data_catalog.ingest import write_store
    from data_catalog.testing import canonical_dataset

    ds = canonical_dataset(
        n_time=n_time,
        n_lat=32,
        n_lon=64,
        levels=(500, 850),
        variables=["geopotential", "temperature", "u_component_of_wind", "v_component_of_wind", "2m_temperature"],
    )
    return write_store(ds, directory / "bench.zarr", source="bench-training", time_chunk=16)


def model_rates(store: Path, steps: int, batch: int) -> dict[str, float]:
    from climate_optics.training.forecast_task import ForecastTask
    from climate_optics.training.loop import train
    from climate_optics.training.task import TrainConfig

    rates = {}
    for mode in TRAINING_MODES:
        task = ForecastTask(store, preset="tiny")
        with tempfile.TemporaryDirectory() as out:
            config = TrainConfig(
                steps=steps,
                batch_size=batch,
                warmup=1,
                val_every=0,
                checkpoint_every=steps,
                mode=mode,
                device="cpu",
                progress=False,
            )
            rates[mode] = train(task, config, out).samples_per_s
    return rates


def sampler_rate(store: Path, channels: list[str], n_batches: int, batch: int) -> float:
    from climate_optics.io.windows import ZarrWindowSampler, open_store

    n_time = open_store(store).sizes["time"]
    sampler = ZarrWindowSampler(store, channels, starts=np.arange(n_time - 1), offsets=(0,), seed=0)
    stream = sampler.batches(batch)
    start = time.perf_counter()
    for _ in range(n_batches):
        next(stream)
    elapsed = time.perf_counter() - start
    stream.close()
    return n_batches * batch / elapsed


def xbatcher_rate(store: Path, variables: list[str], n_batches: int, batch: int) -> float:
    import xarray as xr
    import xbatcher

    ds = xr.open_zarr(store)[variables]
    gen = xbatcher.BatchGenerator(
        ds, input_dims={"time": batch, "latitude": ds.sizes["latitude"], "longitude": ds.sizes["longitude"]}
    )
    start = time.perf_counter()
    for i, b in enumerate(gen):
        [b[v].values for v in variables]  # the fields, in memory
        if i + 1 == n_batches:
            break
    return n_batches * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    steps, batch, n_batches, n_time = (10, 8, 30, 160) if args.quick else (40, 16, 60, 480)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp), n_time)
        from climate_optics.io.channels import store_channels
        from climate_optics.io.windows import open_store

        channels = store_channels(open_store(store))
        variables = sorted({c.split("@")[0] for c in channels})
        rates = model_rates(store, steps, batch)
        for mode, rate in rates.items():
            ref = None if mode == "backprop" else rates["backprop"]
            rows.append(
                Row(
                    NAME,
                    f"tiny forecaster samples/s, {mode}",
                    rate,
                    ref,
                    "samples/s",
                    None if ref is None else rate / ref,
                )
            )
        ours = sampler_rate(store, channels, n_batches, batch)
        rows.append(
            Row(
                NAME,
                "sampler vs model consumption (backprop)",
                ours,
                rates["backprop"],
                "samples/s",
                ours / rates["backprop"],
                "ratio >= 3",
            )
        )
        theirs = xbatcher_rate(store, variables, n_batches, batch)
        rows.append(
            Row(
                NAME,
                "sampler (shuffled, chunk-aligned) vs xbatcher (sequential)",
                ours,
                theirs,
                "samples/s",
                ours / theirs,
                "ratio >= 2",
            )
        )
    rows.append(Row(NAME, "peak resident memory of this benchmark", peak_rss_mib() * 1024 / 1e6, None, "GB"))
    write_results(NAME, rows)


if __name__ == "__main__":
    main()
