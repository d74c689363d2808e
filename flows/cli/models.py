"""``climate-optics models``: list, show, register, promote, roll back and prune a model registry.

The registry's layout is described in ``climate_optics.registry``. Nothing here starts Prefect.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

REGISTRY_HELP = "The model registry directory (a retraining run creates it)."


def _registry(path: Path, *, create: bool = False):
    from climate_optics.registry import ModelRegistry

    return ModelRegistry.open(path, create=create)


def _gate_text(record: dict) -> str:
    validation = record.get("validation") or {}
    score = validation.get("score")
    gate = validation.get("gate") or {}
    if score is None:
        return "-"
    level = f"@{gate['level']:g}" if gate.get("level") is not None else ""
    return f"{gate.get('metric', '?')} {gate.get('variable', '?')}{level} {gate.get('lead_hours', '?')}h = {score:.6g}"


def register(app: typer.Typer) -> None:
    models = typer.Typer(
        help="The model registry: versions, the current model, promotion and rollback.", no_args_is_help=True
    )
    app.add_typer(models, name="models")

    @models.command("list")
    def list_versions(
        registry: Path = typer.Option(..., "--registry", help=REGISTRY_HELP),
        as_json: bool = typer.Option(False, "--json", help="One JSON document instead of a table."),
    ) -> None:
        """List the registered versions; the current one is marked with '*'."""
        reg = _registry(registry)
        current = reg.current()
        records = [reg.record(v) for v in reg.versions()]
        if as_json:
            typer.echo(json.dumps({"current": current, "versions": records}, indent=2))
            return
        if not records:
            typer.echo(f"{registry}: no versions yet")
            return
        for record in records:
            period = record.get("data_period") or {}
            mark = "*" if record["version"] == current else " "
            typer.echo(
                f"{mark} {record['version']}  {record.get('created', '')}  data {period.get('start', '?')[:10]}"
                f"..{period.get('end', '?')[:10]}  {_gate_text(record)}"
            )

    @models.command("show")
    def show(
        version: Optional[str] = typer.Argument(None, help="Version to show (default: the current one)."),
        registry: Path = typer.Option(..., "--registry", help=REGISTRY_HELP),
    ) -> None:
        """Print a version's record (JSON), with whether its checkpoint still matches its sha256."""
        from climate_optics.errors import UsageInputError

        reg = _registry(registry)
        version = version or reg.current()
        if version is None:
            raise UsageInputError(
                f"--registry {registry}: no current version yet; name one ({', '.join(reg.versions()) or 'none registered'})"
            )
        record = reg.record(version)
        try:
            reg.verify(version)
            intact = True
        except UsageInputError:
            intact = False
        typer.echo(
            json.dumps(
                {
                    **record,
                    "current": version == reg.current(),
                    "checkpoint_intact": intact,
                    "checkpoint_path": str(reg.checkpoint(version)),
                },
                indent=2,
            )
        )

    @models.command("register")
    def register_checkpoint(
        checkpoint: Path = typer.Argument(..., help="A forecaster checkpoint (checkpoint.pt)."),
        registry: Path = typer.Option(..., "--registry", help=REGISTRY_HELP),
        promote: bool = typer.Option(False, "--promote", help="Also make it the current version."),
    ) -> None:
        """Copy a trained forecaster checkpoint into the registry as a new version."""
        from climate_optics.errors import UsageInputError

        if not checkpoint.is_file():
            raise UsageInputError(f"checkpoint not found: {checkpoint}")
        reg = _registry(registry, create=True)
        version = reg.register(checkpoint, provenance={"registered_by": "climate-optics models register"})
        if promote:
            reg.promote(version, reason="registered with --promote")
        typer.echo(f"{version}{' (current)' if promote else ''}")

    @models.command("promote")
    def promote(
        version: str = typer.Argument(..., help="Version to make current."),
        registry: Path = typer.Option(..., "--registry", help=REGISTRY_HELP),
    ) -> None:
        """Make VERSION the current model (its checkpoint's sha256 is checked first)."""
        reg = _registry(registry)
        previous = reg.current()
        reg.promote(version, reason="promoted by hand")
        typer.echo(f"current: {version} (was {previous or 'unset'})")

    @models.command("rollback")
    def rollback(registry: Path = typer.Option(..., "--registry", help=REGISTRY_HELP)) -> None:
        """Make the previously current version current again."""
        reg = _registry(registry)
        previous = reg.current()
        version = reg.rollback()
        typer.echo(f"current: {version} (was {previous})")

    @models.command("prune")
    def prune(
        registry: Path = typer.Option(..., "--registry", help=REGISTRY_HELP),
        keep: int = typer.Option(5, "--keep", help="Versions to keep (the current one is always kept)."),
    ) -> None:
        """Remove all but the newest KEEP versions (and old retraining work directories)."""
        removed = _registry(registry).prune(keep)
        typer.echo(f"removed: {', '.join(removed) or 'nothing'}")
