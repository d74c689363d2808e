import subprocess
import sys

import pytest


def test_help_lists_commands(run_cli):
    status, out, _ = run_cli("--help")
    assert status == 0
    assert "bench" in out


def test_unknown_benchmark_is_one_line_and_status_2(run_cli):
    status, _, err = run_cli("bench", "no-such-benchmark")
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no-such-benchmark" in lines[0]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["no-such-command"], "no-such-command"),
        (["forecast"], "--checkpoint"),
        (["train", "forecast", "--mode", "nope"], "nope"),
        (["evaluate", "--no-such-option"], "--no-such-option"),
    ],
)
def test_usage_errors_are_one_line_and_status_2(run_cli, args, named):
    status, out, err = run_cli(*args)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "--help" in lines[0], err
    assert "Traceback" not in out + err


def test_bare_command_group_shows_its_help(run_cli):
    status, out, err = run_cli("models")
    assert status == 2
    assert "promote" in out + err


def test_libraries_do_not_import_prefect():
    code = (
        "import sys, data_catalog, optical_backend, climate_optics, flows.cli;"
        "import data_catalog.schema;"
        "bad = [m for m in ('prefect',) if m in sys.modules];"
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
