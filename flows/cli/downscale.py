"""``climate-optics downscale``: coarse fields to a fine-grid ensemble store with a trained downscaler.

A forecast store as ``--coarse`` (it has ``prediction_timedelta``) is downscaled init time by init
time like an analysis store (``climate_optics.inference.downscale.run_downscale``), keeping the
forecaster's provenance; ``--bilinear`` writes the baseline instead: the forecast interpolated to
the same fine grid (``climate_optics.inference.downscale_forecast``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def downscale(
        checkpoint: Path = typer.Option(
            ..., "--checkpoint", help="Diffusion-stage checkpoint or run directory of `train downscale`."
        ),
        coarse: str = typer.Option(
            ..., "--coarse", help="Coarse input: catalog entry, analysis store or forecast store."
        ),
        members: int = typer.Option(4, "--members", help="Ensemble members (realization)."),
        out: Path = typer.Option(..., "--out", help="Output Zarr store (forecast-store layout with realization)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output store."),
        steps: Optional[int] = typer.Option(None, "--steps", help="Heun sampler steps (default: the model's)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the ensemble noise."),
        start: Optional[str] = typer.Option(None, "--start", help="First time to downscale (ISO date)."),
        end: Optional[str] = typer.Option(None, "--end", help="Last time to downscale (ISO date, inclusive)."),
        coarsen: int = typer.Option(
            1, "--coarsen", help="Coarsen the input conservatively by this factor first (for fine-grid sources)."
        ),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        bilinear: bool = typer.Option(
            False,
            "--bilinear",
            help="Forecast stores only: write the bilinear interpolation to the fine grid (the baseline) instead.",
        ),
    ) -> None:
        """Downscale coarse fields into an M-member ensemble on the model's fine grid."""
        from climate_optics.errors import UsageInputError
        from climate_optics.inference import downscale_forecast as forecasts
        from climate_optics.inference.downscale import run_downscale

        if not checkpoint.exists():
            raise UsageInputError(f"--checkpoint: {checkpoint} does not exist")
        if coarsen < 1:
            raise UsageInputError(f"--coarsen must be >= 1, got {coarsen}")
        if bilinear and not forecasts.is_forecast_store(coarse):
            raise UsageInputError(
                f"--bilinear needs a forecast store as --coarse; {coarse} has no prediction_timedelta"
            )
        if bilinear:
            path = forecasts.interpolate_forecast(
                checkpoint, coarse, out=out, overwrite=overwrite, start=start, end=end, coarsen=coarsen
            )
        else:  # analyses and forecasts alike
            path = run_downscale(
                checkpoint,
                coarse,
                members=members,
                out=out,
                overwrite=overwrite,
                seed=seed,
                steps=steps,
                start=start,
                end=end,
                coarsen=coarsen,
                device=device,
            )
        print(f"wrote {path}")
