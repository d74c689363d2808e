"""Speed and realism of the embedded synthetic reanalysis, measured in one run.

1. One simulated year at 2.8125deg, Zarr output and the 5.625deg conservative coarsening
   (written to its own store) included; measured over ``days`` simulated days and scaled
   to 365. Reference: the issue's budget of 300 s per simulated year on 2 cores (a fixed
   budget, not a measurement); ratio = budget / ours, target >= 1.
2. Batching: 4 members integrated as one batch against 4 single-member runs measured in
   the same process (model only); ratio = separate / batched, target >= 1.3.
3. Seconds per simulated day at 1.40625deg (T85), output included (no reference).
4. Realism of the measured 2.8125deg record (default configuration, seed 0): Z500
   persistence / climatology RMSE at 24 h and 72 h on the 5.625deg view (seasonal
   climatology: mean + annual harmonics fitted per point, see validation.py), corr(u, u_g) at
   500 hPa in 30-70 degrees, zonal kinetic-energy spectrum slope (k = 8..30).

    python benchmarks/bench_generator.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr
from benchkit import Row, Timer, write_results

from data_catalog.regrid import coarsen_conservative
from data_catalog.synthetic import SyntheticConfig, generate
from data_catalog.synthetic.model import EquivalentBarotropicModel
from data_catalog.synthetic.validation import geostrophic_correlation, persistence_ratio, zonal_spectrum_slope

NAME = "generator"
BUDGET_S_PER_YEAR = 300.0


def year_at_native(days: float, spinup: float, work: Path) -> tuple[float, xr.Dataset, xr.Dataset]:
    config = SyntheticConfig(days=days, spinup_days=spinup, seed=0)
    with Timer() as t:
        native = generate(config, work / "native.zarr", progress=False)
        coarse = coarsen_conservative(xr.open_zarr(native, consolidated=False), 2)
        coarse.to_zarr(work / "coarse.zarr", zarr_format=3, consolidated=False)
    return (
        t.seconds * 365.0 / (days + spinup),
        xr.open_zarr(native, consolidated=False),
        xr.open_zarr(work / "coarse.zarr", consolidated=False),
    )


def model_seconds(members: int, steps: int) -> float:
    model = EquivalentBarotropicModel(SyntheticConfig(members=members), np.random.default_rng(0))
    time = np.datetime64("2000-01-01T00:00", "s")
    model.initialise(time)
    model.step(time)  # warm-up
    with Timer() as t:
        for _ in range(steps):
            model.step(time)
    return t.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 simulated days instead of 365")
    args = parser.parse_args()
    days, spinup = (30.0, 0.0) if args.quick else (305.0, 60.0)
    rows = []
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    with tempfile.TemporaryDirectory() as tmp:
        per_year, native, coarse = year_at_native(days, spinup, Path(tmp))
        rows.append(
            Row(
                NAME,
                f"s per simulated year, 2.8125deg + 5.625deg output (budget 300 s; OMP_NUM_THREADS={threads})",
                per_year,
                BUDGET_S_PER_YEAR,
                "s",
                BUDGET_S_PER_YEAR / per_year,
                "ratio >= 1",
            )
        )
        z500 = coarse.geopotential.sel(level=500).load()
        for lead in (24, 72):
            rows.append(
                Row(
                    NAME,
                    f"Z500 persistence/seasonal-climatology RMSE at {lead} h (5.625deg, {days:.0f} d)",
                    persistence_ratio(z500, lead),
                    None,
                    "1",
                )
            )
        sel = coarse.sel(level=500)
        rows.append(
            Row(
                NAME,
                "corr(u, u_geostrophic) 30-70 deg, 500 hPa",
                geostrophic_correlation(sel.geopotential, sel.u_component_of_wind),
                None,
                "1",
            )
        )
        fine = native.sel(level=500).isel(time=slice(None, None, 4))
        rows.append(
            Row(
                NAME,
                "KE spectrum slope in zonal wavenumber 8-30 (2.8125deg)",
                zonal_spectrum_slope(fine.u_component_of_wind, fine.v_component_of_wind),
                None,
                "1",
            )
        )
        steps = 24 if args.quick else 96
        batched = model_seconds(4, steps)
        separate = 4 * model_seconds(1, steps)
        rows.append(
            Row(
                NAME,
                f"4 members batched vs 4 single runs ({steps} steps)",
                batched,
                separate,
                "s",
                separate / batched,
                "ratio >= 1.3",
            )
        )
        hires_days = 0.5 if args.quick else 2.0
        with Timer() as t:
            generate(
                SyntheticConfig.for_grid("1.40625deg", days=hires_days, spinup_days=0.0),
                Path(tmp) / "hires.zarr",
                progress=False,
            )
        rows.append(
            Row(NAME, "s per simulated day at 1.40625deg (T85), output included", t.seconds / hires_days, None, "s")
        )
    write_results(NAME, rows)


if __name__ == "__main__":
    main()
