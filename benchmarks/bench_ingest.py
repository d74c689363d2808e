"""Ingest vs a plain ``xr.open_mfdataset(files).to_zarr(store)`` of the same NetCDF files.

Both run in fresh subprocesses (so ``ru_maxrss`` is each one's own peak resident memory) on
30-day NetCDF files (zlib-compressed, like the CDS and PSL distribute them) in the canonical
layout, for a record and one 4x longer. Our ingest includes the statistics and the
climatology. Rows: throughput ratio (ours / plain, target >= 0.8) for each record, the same
per CPU second (user + system time of each process: less sensitive to other jobs on a shared
machine), peak memory of each, and our peak memory growth when the record is 4x longer
(target <= 1.2).

    python benchmarks/bench_ingest.py [--quick] [--breakdown]

``--breakdown`` measures where our CPU time goes instead: the shorter record ingested whole,
without the statistics, without the climatology (a component switched off in the child
process, so that store is incomplete), and the plain copy, best of interleaved runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

VARIABLES = [
    "geopotential",
    "temperature",
    "u_component_of_wind",
    "v_component_of_wind",
    "2m_temperature",
    "mean_sea_level_pressure",
]
LEVELS = (50, 250, 500, 700, 850, 925, 1000)


def write_record(directory: Path, months: int, n_lat: int, n_lon: int) -> tuple[str, int]:
    """6-hourly NetCDF files of 30 days each (equal, so the plain copy's chunks are uniform);
    returns (glob, uncompressed bytes of data)."""
    from data_catalog import testing

    directory.mkdir(parents=True)
    total = 0
    for month, start in enumerate(pd.date_range("2000-01-01", periods=months, freq="30D")):
        ds = testing.canonical_dataset(
            n_time=4 * 30,
            n_lat=n_lat,
            n_lon=n_lon,
            levels=LEVELS,
            variables=VARIABLES,
            seed=month,
            start=str(start.date()),
        )
        encoding = {name: {"zlib": True, "complevel": 1, "shuffle": True} for name in ds.data_vars}
        ds.to_netcdf(directory / f"{start:%Y-%m-%d}.nc", encoding=encoding)
        total += sum(da.nbytes for da in ds.data_vars.values())
    return str(directory / "*.nc"), total


def child(kind: str, source: str, out: str) -> None:
    """Run one copy and print {seconds, cpu_seconds, peak_mb} as JSON (in a fresh process)."""
    import xarray as xr

    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    if kind.startswith("ours"):
        from data_catalog import ingest as ingest_module

        switch_off(kind.removeprefix("ours").removeprefix("-without-"), ingest_module)
        ingest_module.ingest(source, out)
    else:
        xr.open_mfdataset(sorted(Path(source).parent.glob("*.nc"))).to_zarr(out, zarr_format=3, consolidated=False)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = usage.ru_utime + usage.ru_stime - cpu_start
    peak_mb = usage.ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb": peak_mb}))


PARTS = ("statistics", "climatology")  # what --breakdown switches off, one at a time


def switch_off(part: str, ingest_module) -> None:
    """For --breakdown only: our ingest without one of its parts (the store it writes is then incomplete)."""
    if part == "statistics":
        from data_catalog.stats import StatisticsAccumulator

        StatisticsAccumulator.add = lambda *args, **kwargs: None
        StatisticsAccumulator.add_differences = lambda *args, **kwargs: None
    elif part == "climatology":  # daily sums, smoothing and writing
        from data_catalog.climatology import Climatology

        Climatology.add = lambda *args, **kwargs: None
        ingest_module._write_climatology = lambda *args, **kwargs: None
    elif part:
        raise ValueError(f"unknown part {part!r}; expected one of {PARTS}")


def breakdown(source: str, label: str, work: Path, repeats: int) -> list:
    """CPU seconds (user + system) of our ingest with each part switched off, beside the whole and the plain copy."""
    from benchkit import Row

    kinds = ["ours", *(f"ours-without-{part}" for part in PARTS), "plain"]
    runs: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(repeats):  # interleaved, so machine load hits every variant alike
        for kind in kinds:
            runs[kind].append(measure(kind, source, work / "part.zarr")["cpu_seconds"])
    cpu = {kind: min(values) for kind, values in runs.items()}
    rows = [
        Row(
            "ingest",
            f"CPU seconds, {label}: ours without the {part}",
            cpu[f"ours-without-{part}"],
            cpu["ours"],
            "s",
            ratio=cpu[f"ours-without-{part}"] / cpu["ours"],
        )
        for part in PARTS
    ]
    rows.append(
        Row(
            "ingest",
            f"CPU seconds, {label}: plain copy vs ours",
            cpu["plain"],
            cpu["ours"],
            "s",
            ratio=cpu["plain"] / cpu["ours"],
        )
    )
    return rows


def measure(kind: str, source: str, out: Path) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, __file__, "--child", kind, source, str(out)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{kind} copy failed:\n{done.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3-month and 12-month records instead of 12 and 48")
    parser.add_argument("--repeats", type=int, default=None, help="runs per measurement (best time, max memory)")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="where our CPU time goes on the shorter record: ours without the statistics, without the "
        "climatology, and the plain copy (results/ingest-breakdown.json)",
    )
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from benchkit import Row, write_results

    months = (3, 12) if args.quick else (12, 48)
    repeats = args.repeats or (1 if args.quick else 2)
    n_lat, n_lon = 32, 64
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    rows: list[Row] = []
    if args.breakdown:
        try:
            source, n_bytes = write_record(work / "record", months[0], n_lat, n_lon)
            label = f"{months[0]}-month record, {n_bytes / 2**20:.0f} MiB"
            write_results("ingest-breakdown", breakdown(source, label, work, max(repeats, 2)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        peaks: dict[int, float] = {}
        for n_months in months:
            source, n_bytes = write_record(work / f"m{n_months}", n_months, n_lat, n_lon)
            runs: dict[str, list[dict[str, float]]] = {"plain": [], "ours": []}
            for _ in range(repeats):  # interleaved, so machine load hits both alike
                for kind in runs:
                    runs[kind].append(measure(kind, source, work / f"{kind}.zarr"))
            best = {k: min(r["seconds"] for r in v) for k, v in runs.items()}
            cpu = {k: min(r["cpu_seconds"] for r in v) for k, v in runs.items()}
            peak = {k: max(r["peak_mb"] for r in v) for k, v in runs.items()}
            mb = n_bytes / 2**20
            label = f"{n_months}-month record, {mb:.0f} MiB, {n_lat}x{n_lon}x{len(LEVELS)} levels"
            ours_tp, plain_tp = mb / best["ours"], mb / best["plain"]
            rows.append(
                Row(
                    "ingest",
                    f"throughput, {label} (ours incl. statistics + climatology)",
                    ours_tp,
                    plain_tp,
                    "MiB/s",
                    ratio=ours_tp / plain_tp,
                    target="ratio >= 0.8",
                )
            )
            ours_cpu, plain_cpu = mb / cpu["ours"], mb / cpu["plain"]
            rows.append(
                Row(
                    "ingest",
                    f"throughput per CPU second (user + system), {label}",
                    ours_cpu,
                    plain_cpu,
                    "MiB/s",
                    ratio=ours_cpu / plain_cpu,
                )
            )
            rows.append(
                Row(
                    "ingest",
                    f"peak memory, {label}",
                    peak["ours"],
                    peak["plain"],
                    "MiB",
                    ratio=peak["ours"] / peak["plain"],
                )
            )
            peaks[n_months] = peak["ours"]
            shutil.rmtree(work / f"m{n_months}", ignore_errors=True)
        short, long = months
        rows.append(
            Row(
                "ingest",
                f"our peak memory, {long}-month vs {short}-month record",
                peaks[long],
                peaks[short],
                "MiB",
                ratio=peaks[long] / peaks[short],
                target="ratio <= 1.2",
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results("ingest", rows)


if __name__ == "__main__":
    main()
