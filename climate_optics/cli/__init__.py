"""The ``climate-optics`` command line.

Each command lives in its own module under ``climate_optics.cli`` exposing ``register(app)``;
modules import their heavy dependencies inside the command functions so that ``--help`` is fast.
Exit status: 0 on success, 2 on bad input or usage (one line on stderr), 1 on an internal error.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import typer

app = typer.Typer(
    name="climate-optics",
    help="Train climate forecasting and downscaling models with optical direct feedback alignment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """Train climate forecasting and downscaling models with optical direct feedback alignment."""


# One module per command (or command group); each defines register(app).
COMMAND_MODULES: tuple[str, ...] = (
    "catalog",
    "ingest",
    "train",
    "forecast",
    "downscale",
    "evaluate",
    "demo",
    "serve",
    "bench",
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"climate_optics.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"climate_optics.cli.{name}":
                continue  # command not built yet
            raise
        module.register(app)


_register_commands()


def error_line(message: str) -> None:
    """Print one line on stderr, the way every command reports a failure."""
    text = " ".join(str(message).split())
    print(f"climate-optics: error: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns (and exits with) the process status."""
    from climate_optics.errors import BAD_INPUT_ERRORS

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        # Click handles its own usage errors (status 2) and --help in standalone mode and exits;
        # everything else reaches the handlers below.
        app(args=args, prog_name="climate-optics", standalone_mode=True)
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BAD_INPUT_ERRORS as exc:
        error_line(str(exc))
        status = 2
    except KeyboardInterrupt:
        error_line("interrupted")
        status = 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns crashes into status 1
        error_line(f"internal error: {type(exc).__name__}: {exc}")
        if os.environ.get("CLIMATE_OPTICS_DEBUG"):
            traceback.print_exc()
        else:
            print("climate-optics: set CLIMATE_OPTICS_DEBUG=1 for the traceback", file=sys.stderr)
        status = 1
    if argv is None:
        sys.exit(status)
    return status
