"""``climate-optics catalog list|show NAME``: the data sources the pipeline knows."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

CATALOG_OPTION = typer.Option(None, "--catalog", help="A user catalog YAML file, merged over the shipped one.")


def _grid_text(entry) -> str:
    if entry.grid is None:
        return "-"
    size = f" ({entry.grid.n_lat}x{entry.grid.n_lon})" if entry.grid.n_lat and entry.grid.n_lon else ""
    return f"{entry.grid.resolution_deg:g}°{size}"


def _time_text(entry) -> str:
    t = entry.time
    if t is None or not (t.start or t.end or t.step):
        return "-"
    span = f"{t.start or '?'}..{t.end or '?'}" if (t.start or t.end) else "generated"
    return f"{span}, {t.step}" if t.step else span


def _console():
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)  # no folding in pipes and logs


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="List and show the data catalog entries.", no_args_is_help=True)

    @group.command("list")
    def list_command(catalog: Optional[Path] = CATALOG_OPTION) -> None:
        """Table of the catalog entries (shipped, $CLIMATE_OPTICS_CATALOG, --catalog)."""
        from rich.table import Table

        from data_catalog.catalog import list_entries

        table = Table(title="climate-optics data catalog")
        for column in ("name", "driver", "grid", "time", "location"):
            table.add_column(column, overflow="fold")
        for entry in list_entries(catalog):
            table.add_row(
                entry.name,
                entry.driver,
                _grid_text(entry),
                _time_text(entry),
                entry.location or "(generated on this machine)",
            )
        _console().print(table)

    @group.command("show")
    def show_command(
        name: str = typer.Argument(..., help="Entry name."), catalog: Optional[Path] = CATALOG_OPTION
    ) -> None:
        """Every field of one catalog entry."""
        import yaml

        from data_catalog.catalog import get_entry

        entry = get_entry(name, catalog)
        fields = entry.model_dump(exclude_none=True, exclude={"name"})
        _console().print(f"[bold]{entry.name}[/bold]")
        print(yaml.safe_dump(fields, sort_keys=False, allow_unicode=True, width=100).rstrip())

    @group.command("inspect")
    def inspect_command(
        source: str = typer.Argument(..., help="Entry name or path (NetCDF file or glob, Zarr, GRIB)."),
        variables: Optional[list[str]] = typer.Option(None, "--variables", help="Canonical names."),
        catalog: Optional[Path] = CATALOG_OPTION,
    ) -> None:
        """Open a source through the readers and print its canonical form (nothing is loaded)."""
        from data_catalog.readers import open_dataset

        ds = open_dataset(source, variables=variables or None, catalog=catalog, check_values=False)
        _console().print(f"[bold]{ds.attrs.get('source', source)}[/bold]")
        print(ds)
        for note in ds.attrs.get("history", "").split("; "):
            if note:
                print(f"  history: {note}")

    app.add_typer(group, name="catalog")
