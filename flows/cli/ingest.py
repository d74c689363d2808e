"""``climate-optics ingest SOURCE --out STORE.zarr``: a source into a canonical Zarr store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from climate_optics.errors import UsageInputError


def split_list(text: str | None, option: str, kind: type = str) -> list[Any] | None:
    """``"a,b"`` -> ``["a", "b"]`` (converted by ``kind``); None stays None."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UsageInputError(f"{option} {text!r}: expected a comma-separated list")
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise UsageInputError(f"{option} {text!r}: expected comma-separated {kind.__name__} values") from None


def synthetic_options(years: int | None, seed: int | None) -> dict[str, Any] | None:
    """Driver options for the synthetic reanalysis (only those given)."""
    given = {"years": years, "seed": seed}
    options = {key: value for key, value in given.items() if value is not None}
    return options or None


def store_size(path: Path) -> int:
    """Bytes on disk under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def human_size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} TiB"


def run_ingest(source: str, out: Path, *, show_progress: bool = True, **kwargs: Any) -> Path:
    """Ingest with a rich progress bar (when stderr is a terminal) and a final summary line."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from data_catalog.ingest import ingest

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(
        *columns, console=console, transient=True, disable=not (show_progress and console.is_terminal)
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        path = ingest(source, out, progress=progress, **kwargs)
    print(f"wrote {path} ({human_size(store_size(path))})")
    return path


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        source: str = typer.Argument(..., help="Catalog entry name, NetCDF file or glob, Zarr store or GRIB file."),
        out: Path = typer.Option(..., "--out", help="Output store (a new .zarr directory)."),
        variables: Optional[str] = typer.Option(None, "--variables", help="Canonical names, comma-separated."),
        levels: Optional[str] = typer.Option(None, "--levels", help="Pressure levels in hPa, comma-separated."),
        start: Optional[str] = typer.Option(None, "--start", help="First time to keep (e.g. 2020-01-01)."),
        end: Optional[str] = typer.Option(None, "--end", help="Last time to keep (inclusive)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing store."),
        catalog: Optional[Path] = typer.Option(None, "--catalog", help="A user catalog YAML file."),
        years: Optional[int] = typer.Option(None, "--years", help="Synthetic reanalysis: years to generate."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Synthetic reanalysis: random seed."),
        grid: Optional[str] = typer.Option(
            None,
            "--grid",
            help="Regrid to 64x32, 240x121, 128x64, 360x181 (any LONxLAT), Ndeg (e.g. 1.5deg) or the grid of a store;"
            " for the synthetic reanalysis, the generated grid's view (e.g. 5.625deg).",
        ),
        regrid_method: str = typer.Option(
            "conservative", "--regrid-method", help="conservative (area-weighted) or bilinear."
        ),
        time_chunk: Optional[int] = typer.Option(
            None, "--time-chunk", min=1, help="Time steps per chunk (default: about 4 MiB)."
        ),
        climatology_period: Optional[str] = typer.Option(
            None,
            "--climatology-period",
            help="Build the climatology from START:END only (dates, inclusive; e.g. 1990-01-01:2019-12-31), recorded in the store.",
        ),
        dask_workers: Optional[int] = typer.Option(
            None, "--dask-workers", help="Read the source on a local dask cluster of N worker processes."
        ),
        dask_address: Optional[str] = typer.Option(
            None, "--dask-address", help="Read the source on a running dask scheduler (tcp://HOST:PORT)."
        ),
    ) -> None:
        """Write SOURCE as a canonical Zarr v3 store with statistics and a climatology (atomic)."""
        from climate_optics.cluster import dask_client

        with dask_client(dask_workers, dask_address):
            run_ingest(
                source,
                out,
                variables=split_list(variables, "--variables"),
                levels=split_list(levels, "--levels", float),
                start=start,
                end=end,
                overwrite=overwrite,
                catalog=catalog,
                options=synthetic_options(years, seed),
                time_chunk=time_chunk,
                climatology_period=climatology_period,
                grid=grid,
                regrid_method=regrid_method,
            )
