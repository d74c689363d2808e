"""Skill-score speed and memory, side by side in one run on the same arrays.

1. CRPS of an ensemble: ``climate_optics.metrics.crps(fair=False)`` vs ``xskillscore.crps_ensemble``
   (target: ours >= 10x faster), results checked equal first.
2. Latitude-weighted RMSE: ``climate_optics.metrics.rmse`` vs ``xskillscore.rmse`` with area
   weights (target >= 3x), results checked equal first.
3. Peak memory of ``climate_optics.evaluate`` on a dask-backed forecast 4x larger than a memory
   cap, measured in a subprocess (peak RSS of the whole process, Linux VmHWM): ratio = forecast size / peak
   RSS, so ``ratio >= 4`` means the process stayed under the cap.

    python benchmarks/bench_metrics.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

import numpy as np

from climate_optics.benchkit import Row, Timer, write_results

NAME = "metrics"
SPACE = ["latitude", "longitude"]


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        with Timer() as t:
            fn()
        best = min(best, t.seconds)
    return best


def grid(n_lat: int, n_lon: int):
    step = 180.0 / n_lat
    return np.linspace(-90 + step / 2, 90 - step / 2, n_lat), np.arange(n_lon) * (360.0 / n_lon)


def arrays(n_time: int, n_lat: int, n_lon: int, members: int | None, seed: int = 0):
    import xarray as xr

    rng = np.random.default_rng(seed)
    lat, lon = grid(n_lat, n_lon)
    coords = {"time": np.arange(n_time), "latitude": lat, "longitude": lon}
    truth = xr.DataArray(rng.normal(size=(n_time, n_lat, n_lon)), dims=("time", *SPACE), coords=coords)
    if members is None:
        fc = xr.DataArray(rng.normal(size=truth.shape), dims=truth.dims, coords=coords)
    else:
        fc = xr.DataArray(rng.normal(size=(n_time, n_lat, n_lon, members)), dims=(*truth.dims, "realization"), coords=coords)
    return fc, truth


def area_weights(truth):
    from climate_optics.metrics import lat_weights

    return (lat_weights(truth) * (0 * truth.longitude + 1)).transpose(*SPACE)


def bench_crps(quick: bool) -> Row:
    import xskillscore as xs

    from climate_optics import metrics

    n_time, n_lat, n_lon, members = (2, 32, 64, 20) if quick else (2, 32, 64, 50)
    fc, truth = arrays(n_time, n_lat, n_lon, members)
    w = area_weights(truth)
    ours = lambda: metrics.crps(fc, truth, fair=False)  # noqa: E731
    ref = lambda: xs.crps_ensemble(truth, fc, member_dim="realization", dim=SPACE, weights=w)  # noqa: E731
    np.testing.assert_allclose(ours().values, ref().values, rtol=1e-6)
    t_ours, t_ref = best_time(ours, 5), best_time(ref, 3)
    return Row(NAME, f"crps_ensemble {n_time}x{n_lat}x{n_lon}, {members} members", t_ours, t_ref, "s",
               ratio=t_ref / t_ours, target="ratio >= 10")


def bench_rmse(quick: bool) -> Row:
    import xskillscore as xs

    from climate_optics import metrics

    n_time, n_lat, n_lon = (16, 64, 128) if quick else (64, 128, 256)
    fc, truth = arrays(n_time, n_lat, n_lon, None)
    w = area_weights(truth)
    ours = lambda: metrics.rmse(fc, truth)  # noqa: E731
    ref = lambda: xs.rmse(fc, truth, dim=SPACE, weights=w)  # noqa: E731
    np.testing.assert_allclose(ours().values, ref().values, rtol=1e-6)
    t_ours, t_ref = best_time(ours, 7), best_time(ref, 7)
    return Row(NAME, f"lat-weighted rmse {n_time}x{n_lat}x{n_lon}", t_ours, t_ref, "s", ratio=t_ref / t_ours, target="ratio >= 3")


# Runs in a fresh interpreter so that its peak RSS is the evaluation's alone.
MEMORY_CHILD = textwrap.dedent(
    """
    import json, sys
    import dask, dask.array as da, numpy as np, pandas as pd, xarray as xr
    from climate_optics.benchkit import peak_rss_mib
    from climate_optics.evaluation import evaluate

    n_init, n_lead, n_level, n_lat, n_lon = json.loads(sys.argv[1])
    step = 180.0 / n_lat
    lat = np.linspace(-90 + step / 2, 90 - step / 2, n_lat)
    lon = np.arange(n_lon) * (360.0 / n_lon)
    levels = np.linspace(50, 1000, n_level).round()
    base = (250 + 20 * np.cos(np.deg2rad(lat))[None, :, None] + np.zeros((n_level, 1, n_lon))).astype("float32")

    def fields(block_info=None):  # one (init, lead) field, cheap to make, different per block
        loc = block_info[None]["chunk-location"]
        return base[None, None] + np.float32(0.01 * (loc[0] + 7 * loc[1]))

    fc = da.map_blocks(fields, dtype="float32", chunks=((1,) * n_init, (1,) * n_lead, (n_level,), (n_lat,), (n_lon,)))
    times = pd.date_range("2020-01-01", periods=n_init + n_lead, freq="6h").values
    leads = (np.arange(n_lead) * 6).astype("timedelta64[h]").astype("timedelta64[ns]")
    coords = dict(level=levels, latitude=lat, longitude=lon)
    forecast = xr.Dataset({"temperature": (("time", "prediction_timedelta", "level", "latitude", "longitude"), fc)},
                          coords=dict(time=times[:n_init], prediction_timedelta=leads, **coords))
    truth_data = da.map_blocks(lambda block_info=None: base[None] + np.float32(0.02 * block_info[None]["chunk-location"][0]),
                               dtype="float32", chunks=((1,) * times.size, (n_level,), (n_lat,), (n_lon,)))
    truth = xr.Dataset({"temperature": (("time", "level", "latitude", "longitude"), truth_data)}, coords=dict(time=times, **coords))

    before = peak_rss_mib() * 1024
    scores = evaluate(forecast, truth, metrics=["rmse", "bias", "mae"], regions=["global", "tropics", "europe"])
    assert np.isfinite(scores["temperature"].sel(model="persistence", metric="rmse").values[..., 1:, :]).all()
    peak = peak_rss_mib() * 1024
    print(json.dumps({"forecast_bytes": int(forecast.temperature.nbytes), "peak_kib": peak, "before_kib": before}))
    """
)


def bench_memory(quick: bool) -> Row:
    cap_mib = 512 if quick else 1024
    n_level, n_lat, n_lon = (13, 128, 256) if quick else (13, 256, 512)
    field_bytes = n_level * n_lat * n_lon * 4
    n_lead = 8 if quick else 16
    n_init = int(np.ceil(4 * cap_mib * 2**20 / (field_bytes * n_lead)))
    with Timer() as t:
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, json.dumps([n_init, n_lead, n_level, n_lat, n_lon])],
            capture_output=True, text=True,
        )
    if out.returncode:
        raise RuntimeError(f"memory child failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    peak_mib = result["peak_kib"] / 1024
    size_mib = result["forecast_bytes"] / 2**20
    print(f"memory: forecast {size_mib:.0f} MiB ({n_init} inits x {n_lead} leads x {n_level}x{n_lat}x{n_lon}), "
          f"cap {cap_mib} MiB, peak RSS {peak_mib:.0f} MiB (after imports {result['before_kib'] / 1024:.0f} MiB), {t.seconds:.0f} s")
    return Row(NAME, f"peak RSS scoring a {size_mib:.0f} MiB dask forecast (cap {cap_mib} MiB = 1/4)", peak_mib, size_mib, "MiB",
               ratio=size_mib / peak_mib, target="ratio >= 4")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller arrays, for a smoke run")
    args = parser.parse_args(argv)
    rows = [bench_crps(args.quick), bench_rmse(args.quick), bench_memory(args.quick)]
    write_results(NAME, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
