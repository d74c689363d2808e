"""Downscaling skill rows for ``bench_skill.py``: back-propagation vs DFA vs optical DFA.

The tiny downscaler (regression + EDM residual, UNet backbone) is trained in each mode with the
same steps, batch size and seed (at lr 3e-3 with a 10-step warm-up: a departure from the command
line's defaults, named in every row) on the embedded synthetic reanalysis at 2.8125 deg (inputs
conservatively coarsened by 2), then scored on held-out times (``climate_optics.evaluation.downscale_skill``):
ensemble CRPS against the MAE of bilinear interpolation, spread-skill ratio (1 = reliable),
zonal-spectrum error above the coarse Nyquist wavenumber against bilinear's, training wall time
and the simulated optical energy of the feedback projections.

With several ``--seeds`` (the training seed: model initialisation, data stream and feedback
matrix; the store and the scoring stay fixed) every score is the mean over the seeds and a
row ``... spread over seeds`` gives their standard deviation; each seed's scores are printed.

    python benchmarks/downscale_cases.py [--quick] [--seeds 0 1 2] [--modes dfa optical]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchkit import Row, write_results

from optical_backend.kinds import FEEDBACK_NORMS, REGRESSION_MODES, TRAINING_MODES

NAME = "skill"
MODES = TRAINING_MODES
# The rows' departure from the command line's defaults (lr 1e-3, 5 % warm-up), named in every row:
# the rate the earlier downscaling studies tuned for all three modes (docs/results.md).
LR, WARMUP = 3e-3, 10
DEPARTURE = "lr 3e-3, warm-up 10"


def hires_store(directory: Path, days: int) -> Path:
    from data_catalog.ingest import ingest

    options = {"days": days, "spinup_days": 30, "seed": 0, "grid": "2.8125deg", "cache_dir": str(directory / "cache")}
    return ingest("synthetic-reanalysis", directory / "hires.zarr", options=options)


def train_and_score(
    store: Path,
    mode: str,
    *,
    steps: int,
    diffusion_steps: int,
    channels: list[str],
    times: list[int],
    members: int,
    seed: int = 0,
    head_init: str = "auto",
    feedback_norm: str = "auto",
    backprop_blocks: int = 0,
    regression_mode: str = "auto",
) -> tuple[dict, float, float]:
    """(scores per channel, training wall time in s, simulated optical energy in J) for one mode."""
    from climate_optics.evaluation.downscale_skill import downscale_skill
    from climate_optics.inference.downscale import load_downscaler
    from climate_optics.training.downscale_task import run_downscale_training
    from climate_optics.training.task import TrainConfig

    config = TrainConfig(
        steps=steps,
        batch_size=8,
        lr=LR,
        warmup=WARMUP,
        val_every=0,
        checkpoint_every=steps,
        mode=mode,
        device="cpu",
        progress=False,
        seed=seed,
        head_init=head_init,
        feedback_norm=feedback_norm,
        backprop_blocks=backprop_blocks,
    )
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        results = run_downscale_training(
            store,
            Path(out) / "run",
            config,
            stage="both",
            channels=channels,
            diffusion_steps=diffusion_steps,
            regression_mode=regression_mode,
        )
        wall = time.perf_counter() - start
        engine, state = load_downscaler(Path(out) / "run")  # the default 18 sampler steps
        scores = downscale_skill(engine, state["task"], store, times=times, members=members, seed=0)
    energy = sum(float(r.engine_stats.get("projector_energy_j", 0.0)) for r in results.values())
    return scores, wall, energy


def _mean(values: list[float]) -> float:
    return statistics.fmean(values)


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def downscale_skill_rows(
    quick: bool,
    seeds: tuple[int, ...] | list[int] = (0,),
    modes: tuple[str, ...] | list[str] = MODES,
    head_init: str = "auto",
    feedback_norm: str = "auto",
    backprop_blocks: int = 0,
    regression_mode: str = "auto",
) -> list[Row]:
    """Rows for every mode with equal budgets (``quick``: 140 days, 150 regression and 600 diffusion steps).

    With several ``seeds`` each score is the mean over them, with a spread (standard deviation)
    row and a worst-seed spectrum row beside it; with back-propagation among ``modes`` each other
    mode's CRPS is also compared with back-propagation's (the issue's 1.2x target).
    """
    import torch
    import xarray as xr

    from climate_optics.training.downscale_task import regression_stage_mode

    torch.set_num_threads(1)  # small convolutions on a shared 2-core machine: one thread is fastest
    days, steps, diffusion_steps, members, n_times = (140, 150, 600, 4, 3) if quick else (365, 1000, 3000, 8, 12)
    channels = (
        ["2m_temperature", "geopotential@500"]
        if quick
        else ["2m_temperature", "geopotential@500", "mean_sea_level_pressure", "u_component_of_wind@850"]
    )
    seeds = list(seeds)
    several = len(seeds) > 1
    rows: list[Row] = []
    crps_backprop: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = hires_store(Path(tmp), days)
        n = xr.open_zarr(store).sizes["time"]
        times = [n - 1 - k * max(1, (n // 10 - 1) // n_times) for k in range(n_times)]  # spread over the held-out 10 %
        for mode in modes:
            runs = []
            for seed in seeds:
                scores, wall, energy = train_and_score(
                    store,
                    mode,
                    steps=steps,
                    diffusion_steps=diffusion_steps,
                    channels=channels,
                    times=times,
                    members=members,
                    seed=seed,
                    head_init=head_init,
                    feedback_norm=feedback_norm,
                    backprop_blocks=backprop_blocks,
                    regression_mode=regression_mode,
                )
                runs.append((scores, wall, energy))
                summary = ", ".join(
                    f"{c} CRPS {s['crps']:.4g} spectrum {s['spectrum_error']:.3f}" for c, s in scores.items()
                )
                print(f"downscale {mode} seed {seed}: {summary}", flush=True)
            hybrid = f", backprop blocks {backprop_blocks}" if backprop_blocks and mode != "backprop" else ""
            regression_by = regression_stage_mode(regression_mode)
            if regression_by != mode:
                hybrid += f", regression stage by {regression_by}"
            tag = f"downscale {mode}{hybrid} [{DEPARTURE}]" + (f" ({len(seeds)} seeds)" if several else "")
            for channel in channels:
                per_seed = [r[0][channel] for r in runs]
                s = {key: _mean([p[key] for p in per_seed]) for key in ("crps", "mae_bilinear", "spread_skill")}
                spectra = [p["spectrum_error"] for p in per_seed]
                bilinear = per_seed[0]["spectrum_error_bilinear"]  # the same store and times for every seed
                band = per_seed[0]["spectrum_band"]
                rows.append(
                    Row(
                        NAME,
                        f"{tag}: {channel} CRPS vs bilinear MAE",
                        s["crps"],
                        s["mae_bilinear"],
                        "phys",
                        s["crps"] / s["mae_bilinear"],
                        "ratio < 1",
                    )
                )
                if mode == "backprop" and regression_by == "backprop":  # the reference: back-propagation alone
                    crps_backprop[channel] = s["crps"]
                elif channel in crps_backprop:
                    rows.append(
                        Row(
                            NAME,
                            f"{tag}: {channel} CRPS vs back-propagation's",
                            s["crps"],
                            crps_backprop[channel],
                            "phys",
                            s["crps"] / crps_backprop[channel],
                            "ratio <= 1.2",
                        )
                    )
                rows.append(
                    Row(
                        NAME,
                        f"{tag}: {channel} spread-skill ratio (1 = reliable)",
                        s["spread_skill"],
                        1.0,
                        "1",
                        s["spread_skill"],
                    )
                )
                # Issue #5's criterion for every channel; geopotential@500 meets it only with longer training (docs/results.md "Downscaling skill").
                rows.append(
                    Row(
                        NAME,
                        f"{tag}: {channel} spectrum error k {band} vs bilinear",
                        _mean(spectra),
                        bilinear,
                        "|log10|",
                        _mean(spectra) / bilinear,
                        "ratio < 1",
                    )
                )
                if several:
                    rows.append(
                        Row(
                            NAME,
                            f"{tag}: {channel} spectrum error, worst seed vs bilinear",
                            max(spectra),
                            bilinear,
                            "|log10|",
                            max(spectra) / bilinear,
                            "ratio < 1",
                        )
                    )
                    rows.append(
                        Row(
                            NAME,
                            f"{tag}: {channel} spectrum error spread over seeds",
                            _spread(spectra),
                            None,
                            "|log10|",
                        )
                    )
                    crps = [p["crps"] for p in per_seed]
                    rows.append(Row(NAME, f"{tag}: {channel} CRPS spread over seeds", _spread(crps), None, "phys"))
            wall = _mean([r[1] for r in runs])
            rows.append(Row(NAME, f"{tag}: training wall time ({steps} + {diffusion_steps} steps)", wall, None, "s"))
            if mode != "backprop":
                rows.append(Row(NAME, f"{tag}: simulated optical energy", _mean([r[2] for r in runs]), None, "J"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (scores: mean and spread)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), help=f"training modes among {', '.join(MODES)}")
    parser.add_argument(
        "--head-init",
        default="auto",
        choices=("auto", "random", "feedback"),
        help="DFA output layer at the start (TrainConfig.head_init; the study's departure from the default)",
    )
    parser.add_argument(
        "--feedback-norm",
        default="auto",
        choices=FEEDBACK_NORMS,
        help="DFA signals through the output norm (TrainConfig.feedback_norm; the study's departure from the default)",
    )
    parser.add_argument(
        "--backprop-blocks",
        type=int,
        default=0,
        help="DFA hybrid: the last N UNet blocks by back-propagation (TrainConfig.backprop_blocks; a departure)",
    )
    parser.add_argument(
        "--regression-mode",
        default="auto",
        choices=REGRESSION_MODES,
        help="mode of the regression stage (auto: back-propagation under DFA, the default; dfa|optical: the pure "
        "DFA downscaler, a departure)",
    )
    args = parser.parse_args()
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        parser.exit(2, f"downscale_cases.py: unknown mode(s) {', '.join(unknown)}; choose among {', '.join(MODES)}\n")
    if len(set(args.seeds)) != len(args.seeds):
        parser.exit(2, f"downscale_cases.py: --seeds must be distinct, got {args.seeds}\n")
    write_results(
        "downscale",
        downscale_skill_rows(
            args.quick,
            seeds=args.seeds,
            modes=args.modes,
            head_init=args.head_init,
            feedback_norm=args.feedback_norm,
            backprop_blocks=args.backprop_blocks,
            regression_mode=args.regression_mode,
        ),
    )


if __name__ == "__main__":
    main()
