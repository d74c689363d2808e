"""The ``climate-optics`` command line.

The top of the import graph, beside the Prefect flows: nothing in ``climate_optics``,
``data_catalog`` or ``optical_backend`` imports it. ``python -m flows.cli`` runs it too.
Each command lives in its own module under ``flows.cli`` exposing ``register(app)``;
modules import their heavy dependencies inside the command functions so that ``--help`` is fast.
Exit status: 0 on success, 2 on bad input or usage (one line on stderr), 1 on an internal error or an
I/O failure (one line),
130 or 143 on SIGINT or SIGTERM (one line; the command's temporaries removed). ``--wait`` (anywhere
on the line) makes a writer wait for another process writing the same output instead of failing.
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
def _root(
    wait: bool = typer.Option(
        False, "--wait", help="Wait for another process writing the same output instead of failing."
    ),
) -> None:
    """Train climate forecasting and downscaling models with optical direct feedback alignment."""
    from data_catalog import locks

    locks.set_wait(wait)


# One module per command (or command group); each defines register(app).
COMMAND_MODULES: tuple[str, ...] = (
    "catalog",
    "ingest",
    "train",
    "forecast",
    "downscale",
    "evaluate",
    "models",
    "demo",
    "serve",
    "bench",
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"flows.cli.{name}").register(app)


_register_commands()


def error_line(message: str) -> None:
    """Print one line on stderr, the way every command reports a failure."""
    text = " ".join(str(message).split())
    print(f"climate-optics: error: {text}", file=sys.stderr)


# Click's usage error, wherever this typer takes click from (recent typer vendors it).
_UsageError = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError")


def usage_line(exc: Exception) -> str:
    """A usage error as one line: what is wrong, and where the command's help is."""
    command = exc.ctx.command_path if exc.ctx else "climate-optics"
    return f"{exc.format_message()} (see '{command} --help')"


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns (and exits with) the process status."""
    from climate_optics.errors import BAD_INPUT_ERRORS
    from climate_optics.interrupts import Interrupted, signals_as_exceptions
    from data_catalog import locks

    args = _hoist_wait(sys.argv[1:] if argv is None else list(argv))
    try:
        # --help and --version end in click.exceptions.Exit (status 0); usage errors are one line below.
        with signals_as_exceptions():
            status = app(args=args, prog_name="climate-optics", standalone_mode=False)
        status = status if isinstance(status, int) else 0
    except _UsageError as exc:
        if type(exc).__name__ != "NoArgsIsHelpError":  # a bare command group has printed its help
            error_line(usage_line(exc))
        status = 2
    except typer.Abort:
        error_line("interrupted")
        status = 130
    except Interrupted as exc:
        error_line(exc.message())
        status = exc.status
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BAD_INPUT_ERRORS as exc:
        error_line(str(exc))
        status = 2
    except KeyboardInterrupt:
        error_line("interrupted")
        status = 130
    except OSError as exc:  # storage or network failing under the command: not a bug, and nothing half-written
        error_line(f"I/O error: {exc}")
        if os.environ.get("CLIMATE_OPTICS_DEBUG"):
            traceback.print_exc()
        status = 1
    except Exception as exc:  # noqa: BLE001 - the one place that turns crashes into status 1
        error_line(f"internal error: {type(exc).__name__}: {exc}")
        if os.environ.get("CLIMATE_OPTICS_DEBUG"):
            traceback.print_exc()
        else:
            print("climate-optics: set CLIMATE_OPTICS_DEBUG=1 for the traceback", file=sys.stderr)
        status = 1
    finally:
        locks.release_all()  # a command that failed between its checks and its write still holds locks
        locks.set_wait(False)
    if argv is None:
        sys.exit(status)
    return status


def _hoist_wait(args: list[str]) -> list[str]:
    """``--wait`` is a root option; accept it after the command name too (before any ``--``)."""
    end = args.index("--") if "--" in args else len(args)
    if "--wait" not in args[:end]:
        return args
    return ["--wait"] + [a for i, a in enumerate(args) if not (i < end and a == "--wait")]
