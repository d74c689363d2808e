"""``climate-optics forecast``: run a trained forecaster and write a forecast store."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def forecast(
        checkpoint: Path = typer.Option(..., "--checkpoint", help="checkpoint.pt or a training run directory."),
        data: Path = typer.Option(..., "--data", help="Ingested Zarr store holding the initial states."),
        init: str = typer.Option(
            ..., "--init", help="Initial times START:END (inclusive), e.g. 2020-01-01:2020-01-31."
        ),
        lead_times: str = typer.Option(
            "6h,24h,72h,120h", "--lead-times", help="Comma-separated leads: 6h, 24h, 5d ..."
        ),
        out: Path = typer.Option(..., "--out", help="Forecast store to write (Zarr)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out store."),
        direct: bool = typer.Option(
            False, "--direct", help="One direct step per lead instead of an autoregressive rollout."
        ),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Initial states per model call."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    ) -> None:
        """Forecast from every initial time in --init at each lead time; de-normalised, with provenance."""
        from climate_optics.inference.forecast import parse_init, parse_lead_times, run_forecast

        path = run_forecast(
            checkpoint,
            data,
            init=parse_init(init),
            lead_hours=parse_lead_times(lead_times),
            out=out,
            overwrite=overwrite,
            direct=direct,
            batch_size=batch_size,
            device=device,
        )
        print(f"wrote {path}")
