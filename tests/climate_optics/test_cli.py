import subprocess
import sys


def test_help_lists_commands(run_cli):
    status, out, _ = run_cli("--help")
    assert status == 0
    assert "bench" in out


def test_unknown_benchmark_is_one_line_and_status_2(run_cli):
    status, _, err = run_cli("bench", "no-such-benchmark")
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no-such-benchmark" in lines[0]


def test_unknown_command_is_usage_error(run_cli):
    status, _, _ = run_cli("no-such-command")
    assert status == 2


def test_libraries_do_not_import_prefect():
    code = (
        "import sys, data_catalog, optical_backend, climate_optics, flows.cli;"
        "import data_catalog.schema;"
        "bad = [m for m in ('prefect',) if m in sys.modules];"
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
