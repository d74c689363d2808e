"""Skill-score speed and memory, side by side in one run on the same arrays.

1. CRPS of an ensemble: ``climate_optics.metrics.crps(fair=False)`` vs ``xskillscore.crps_ensemble``
   (target: ours >= 3x faster than its numba path, the one users get with numba installed; >= 10x
   against its pure-Python path without numba), results checked equal first.
2. Latitude-weighted RMSE: ``climate_optics.metrics.rmse`` vs ``xskillscore.rmse`` with area
   weights (target >= 3x), results checked equal first.
3. Peak memory of ``climate_optics.evaluate`` on a dask-backed forecast 4x larger than a memory
   cap, measured in a subprocess (peak RSS of the whole process, Linux VmHWM): ratio = forecast size / peak
   RSS, so ``ratio >= 4`` means the process stayed under the cap.
4. ``climate-optics evaluate`` on a demo-sized run (24 inits x 3 leads x 10 fields at 32x64, its
   (1, 1, ...) chunks; alone, then with a second forecast as reference) vs a fresh process that only
   loads the same stores: ratio = evaluate / load, target <= 2 (best of three runs each, alternated).
5. Scoring throughput (MB of forecast per second) of a WeatherBench 2-sized year at 64x32 (730 inits
   x 40 leads x 6 variables, generated in memory): a report, no reference.

    python benchmarks/bench_metrics.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from benchkit import Row, Timer, write_results

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
        fc = xr.DataArray(
            rng.normal(size=(n_time, n_lat, n_lon, members)), dims=(*truth.dims, "realization"), coords=coords
        )
    return fc, truth


def area_weights(truth):
    from climate_optics.evaluation.metrics import lat_weights

    return (lat_weights(truth) * (0 * truth.longitude + 1)).transpose(*SPACE)


def bench_crps(quick: bool) -> Row:
    import xskillscore as xs

    from climate_optics.evaluation import metrics

    n_time, n_lat, n_lon, members = (2, 32, 64, 20) if quick else (2, 32, 64, 50)
    fc, truth = arrays(n_time, n_lat, n_lon, members)
    w = area_weights(truth)
    ours = lambda: metrics.crps(fc, truth, fair=False)  # noqa: E731
    ref = lambda: xs.crps_ensemble(truth, fc, member_dim="realization", dim=SPACE, weights=w)  # noqa: E731
    np.testing.assert_allclose(ours().values, ref().values, rtol=1e-6)
    t_ours, t_ref = best_time(ours, 9), best_time(ref, 9)  # best of 9 each: the machine may be shared
    # properscoring (under xskillscore) compiles its CRPS with numba when numba is installed, as users have it
    numba = importlib.util.find_spec("numba") is not None
    return Row(
        NAME,
        f"crps_ensemble {n_time}x{n_lat}x{n_lon}, {members} members, xskillscore "
        f"{'with numba' if numba else 'without numba (slow path)'}",
        t_ours,
        t_ref,
        "s",
        ratio=t_ref / t_ours,
        target="ratio >= 3" if numba else "ratio >= 10",
    )


def bench_rmse(quick: bool) -> Row:
    import xskillscore as xs

    from climate_optics.evaluation import metrics

    n_time, n_lat, n_lon = (16, 64, 128) if quick else (64, 128, 256)
    fc, truth = arrays(n_time, n_lat, n_lon, None)
    w = area_weights(truth)
    ours = lambda: metrics.rmse(fc, truth)  # noqa: E731
    ref = lambda: xs.rmse(fc, truth, dim=SPACE, weights=w)  # noqa: E731
    np.testing.assert_allclose(ours().values, ref().values, rtol=1e-6)
    t_ours, t_ref = best_time(ours, 7), best_time(ref, 7)
    return Row(
        NAME,
        f"lat-weighted rmse {n_time}x{n_lat}x{n_lon}",
        t_ours,
        t_ref,
        "s",
        ratio=t_ref / t_ours,
        target="ratio >= 3",
    )


# Runs in a fresh interpreter so that its peak RSS is the evaluation's alone.
MEMORY_CHILD = textwrap.dedent(
    """
    import json, sys
    import dask, dask.array as da, numpy as np, pandas as pd, xarray as xr
    from benchkit import peak_rss_mib
    from climate_optics.evaluation.evaluate_datasets import evaluate

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
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,  # the child imports benchkit from here
        )
    if out.returncode:
        raise RuntimeError(f"memory child failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    peak_mib = result["peak_kib"] / 1024
    size_mib = result["forecast_bytes"] / 2**20
    print(
        f"memory: forecast {size_mib:.0f} MiB ({n_init} inits x {n_lead} leads x {n_level}x{n_lat}x{n_lon}), "
        f"cap {cap_mib} MiB, peak RSS {peak_mib:.0f} MiB (after imports {result['before_kib'] / 1024:.0f} MiB), {t.seconds:.0f} s"
    )
    return Row(
        NAME,
        f"peak RSS scoring a {size_mib:.0f} MiB dask forecast (cap {cap_mib} MiB = 1/4)",
        peak_mib,
        size_mib,
        "MiB",
        ratio=size_mib / peak_mib,
        target="ratio >= 4",
    )


DEMO_VARIABLES = [
    "geopotential",
    "temperature",
    "u_component_of_wind",
    "v_component_of_wind",
    "2m_temperature",
    "mean_sea_level_pressure",
    "land_sea_mask",
]


def demo_sized_stores(directory, n_init: int = 24, leads_h=(6, 24, 72)):
    """An ingested 90-day truth store (with climatology) and two forecast stores written as ours are."""
    import xarray as xr

    from data_catalog import testing
    from data_catalog.ingest import ingest

    source = testing.canonical_dataset(n_time=360, n_lat=32, n_lon=64, levels=(500, 850), variables=DEMO_VARIABLES)
    source.to_netcdf(directory / "source.nc")
    truth = xr.open_zarr(ingest(directory / "source.nc", directory / "data.zarr"))
    inits = truth["time"].values[-n_init - 16 : -16]
    leads = np.array(leads_h, dtype="timedelta64[h]").astype("timedelta64[ns]")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        fields = {}
        for var, da in truth.data_vars.items():
            if "time" in da.dims:
                values = np.stack([da.sel(time=inits + lead).values for lead in leads], axis=1)
                fields[var] = (
                    ("time", "prediction_timedelta", *da.dims[1:]),
                    (values + rng.normal(scale=float(da.std()) * 0.1, size=values.shape)).astype("float32"),
                    da.attrs,
                )
        ds = xr.Dataset(
            fields,
            coords={
                "time": inits,
                "prediction_timedelta": leads,
                **{d: truth[d] for d in ("level", "latitude", "longitude")},
            },
            attrs={"model_name": f"vit-{name}"},
        )
        ds.to_zarr(
            directory / f"forecast-{name}.zarr",
            consolidated=False,
            encoding={v: {"chunks": (1, 1, *ds[v].shape[2:])} for v in ds.data_vars},
        )
    return directory


def bench_evaluate_vs_load(quick: bool) -> list[Row]:
    """Two cases: one forecast (its two stores), and one with a second forecast as reference (three stores)."""
    import shutil
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = demo_sized_stores(Path(tmp))
        cli = str(Path(sys.executable).with_name("climate-optics"))
        for stores, extra in (
            ([d / "forecast-a.zarr", d / "data.zarr"], []),
            (
                [d / "forecast-a.zarr", d / "forecast-b.zarr", d / "data.zarr"],
                ["--reference", f"b={d / 'forecast-b.zarr'}"],
            ),
        ):
            load = [
                sys.executable,
                "-W",
                "ignore",
                "-c",
                "import sys, xarray as xr\nfor p in sys.argv[1:]: xr.open_zarr(p).load()",
                *map(str, stores),
            ]
            evaluate = [
                cli,
                "evaluate",
                str(d / "forecast-a.zarr"),
                "--truth",
                str(d / "data.zarr"),
                "--out",
                str(d / "s.zarr"),
                "--allow-in-sample-climatology",
                *extra,
            ]
            t_load, t_eval = float("inf"), float("inf")
            for _ in range(1 if quick else 3):  # alternated, so that load on a shared machine hits both alike
                with Timer() as t:
                    subprocess.run(load, check=True, capture_output=True)
                t_load = min(t_load, t.seconds)
                shutil.rmtree(d / "s.zarr", ignore_errors=True)
                with Timer() as t:
                    subprocess.run(evaluate, check=True, capture_output=True)
                t_eval = min(t_eval, t.seconds)
            what = "one forecast" if not extra else "with a reference forecast"
            print(f"evaluate ({what}): {t_eval:.1f} s, loading its {len(stores)} stores: {t_load:.1f} s")
            rows.append(
                Row(
                    NAME,
                    f"climate-optics evaluate, demo size, {what}, vs loading its {len(stores)} stores "
                    "(fresh processes, best of 3)",
                    t_eval,
                    t_load,
                    "s",
                    ratio=t_eval / t_load,
                    target="ratio <= 2",
                )
            )
    return rows


def wb2_year(n_init: int, n_lead: int = 40, n_lat: int = 32, n_lon: int = 64):
    """A generated forecast in memory (n_init x n_lead x 6 surface variables, 6-hourly inits every 12 h) and its truth."""
    import pandas as pd
    import xarray as xr

    lat, lon = grid(n_lat, n_lon)
    names = [
        "2m_temperature",
        "mean_sea_level_pressure",
        "10m_u_component_of_wind",
        "10m_v_component_of_wind",
        "total_precipitation_6hr",
        "temperature",
    ]
    times = pd.date_range("2020-01-01", periods=n_init * 2 + n_lead, freq="6h").values
    leads = (np.arange(1, n_lead + 1) * 6).astype("timedelta64[h]").astype("timedelta64[ns]")
    base = (250 + 20 * np.cos(np.deg2rad(lat))[:, None] + np.zeros((1, n_lon))).astype("float32")
    rng = np.random.default_rng(0)
    offsets = rng.normal(size=(n_init, n_lead, 1, 1)).astype("float32")
    dims = ("time", "prediction_timedelta", "latitude", "longitude")
    forecast = xr.Dataset(
        {n: (dims, base + offsets * (k + 1)) for k, n in enumerate(names)},
        coords={"time": times[: 2 * n_init : 2], "prediction_timedelta": leads, "latitude": lat, "longitude": lon},
    )
    truth = xr.Dataset(
        {
            n: (("time", "latitude", "longitude"), base + rng.normal(size=(times.size, 1, 1)).astype("float32"))
            for n in names
        },
        coords={"time": times, "latitude": lat, "longitude": lon},
    )
    return forecast, truth


def bench_throughput(quick: bool) -> Row:
    from climate_optics.evaluation.evaluate_datasets import evaluate

    n_init = 73 if quick else 730
    forecast, truth = wb2_year(n_init)
    size_mb = forecast.nbytes / 1e6
    with Timer() as t:
        scores = evaluate(forecast, truth, metrics=["rmse", "bias", "mae"])
    assert np.isfinite(scores["2m_temperature"].sel(model="persistence", metric="rmse").values).all()
    print(f"throughput: {size_mb:.0f} MB scored in {t.seconds:.1f} s ({size_mb / t.seconds:.1f} MB/s)")
    return Row(
        NAME,
        f"scoring throughput (report), {n_init} inits x 40 leads x 6 variables at 64x32 in memory "
        "(rmse, bias, mae; default regions; persistence)",
        size_mb / t.seconds,
        None,
        "MB/s",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller arrays, for a smoke run")
    args = parser.parse_args(argv)
    rows = [
        bench_crps(args.quick),
        bench_rmse(args.quick),
        bench_memory(args.quick),
        *bench_evaluate_vs_load(args.quick),
        bench_throughput(args.quick),
    ]
    write_results(NAME, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
