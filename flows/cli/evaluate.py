"""``climate-optics evaluate FORECAST.zarr --truth SOURCE --out SCORES.zarr``: skill scores."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        forecast: Path = typer.Argument(
            ..., help="Forecast store (time, prediction_timedelta, [level,] latitude, longitude)."
        ),
        truth: str = typer.Option(..., "--truth", help="Catalog entry name or path of the verifying analyses."),
        out: Path = typer.Option(
            ...,
            "--out",
            help="Scores store to write (Zarr, NAME.zarr); its table NAME.md and figures/NAME/ go beside it.",
        ),
        metrics: Optional[str] = typer.Option(
            None,
            "--metrics",
            help="Comma-separated, e.g. rmse,acc,bias,crps (default: rmse,bias,mae[,acc][+ensemble metrics]).",
        ),
        regions: Optional[str] = typer.Option(
            None,
            "--regions",
            help="Comma-separated names (global,tropics,...,land,sea) or boxes NAME=LAT0,LAT1,LON0,LON1.",
        ),
        climatology: Optional[Path] = typer.Option(
            None,
            "--climatology",
            help="WeatherBench 2 climatology store (default: the truth store's climatology group).",
        ),
        baselines: Optional[str] = typer.Option(None, "--baselines", help="persistence,climatology (default) or none."),
        model_name: Optional[str] = typer.Option(
            None, "--model-name", help="Label of the forecast (default: from its attributes)."
        ),
        reference: Optional[list[str]] = typer.Option(
            None,
            "--reference",
            help="Another forecast store scored as a model of its own: NAME=STORE or STORE (repeatable).",
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing scores store."),
        variables: Optional[str] = typer.Option(
            None, "--variables", help="Forecast variables to score, comma-separated (default: all)."
        ),
        allow_in_sample: bool = typer.Option(
            False,
            "--allow-in-sample-climatology",
            help="Accept a climatology whose period overlaps the forecast's init times (recorded in the scores store).",
        ),
        dask_workers: Optional[int] = typer.Option(
            None, "--dask-workers", help="Score on a local dask cluster of N worker processes."
        ),
        dask_address: Optional[str] = typer.Option(
            None, "--dask-address", help="Score on a running dask scheduler (tcp://HOST:PORT)."
        ),
    ) -> None:
        """Score a forecast against analyses, with persistence and climatology baselines."""
        from climate_optics.cluster import dask_client
        from climate_optics.evaluation.evaluate_stores import evaluate_stores, read_attrs
        from climate_optics.evaluation.scores_store import companion_paths
        from flows.cli.ingest import split_list

        with dask_client(dask_workers, dask_address):
            path = evaluate_stores(
                forecast,
                truth,
                out,
                metrics=metrics,
                regions=regions,
                climatology=climatology,
                baselines=baselines,
                model_name=model_name,
                references=reference,
                overwrite=overwrite,
                variables=split_list(variables, "--variables"),
                allow_in_sample_climatology=allow_in_sample,
            )
        skipped = read_attrs(path).get("skipped_variables")
        if skipped:
            typer.echo(f"not scored: {skipped}", err=True)
        typer.echo(f"scores: {path}")
        table, figures = companion_paths(path)
        typer.echo(f"table: {table}")
        for png in sorted(figures.glob("*.png")):
            typer.echo(f"figure: {png}")
