"""The GPU model check script runs end to end with --dry-run on CPU, without store libraries."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "run_model_checks.py"


def test_dry_run_writes_json_without_store_libraries(tmp_path):
    out = tmp_path / "checks.json"
    code = (
        "import runpy, sys;"
        f"sys.argv = ['run_model_checks.py', '--dry-run', '--out', {str(out)!r}];"
        "mod = runpy.run_path(" + repr(str(SCRIPT)) + ", run_name='not_main');"
        "status = mod['main'](sys.argv[1:]);"
        "bad = [m for m in ('zarr', 'dask', 'prefect', 'cartopy', 'xarray') if m in sys.modules];"
        "print('BAD', bad); sys.exit(status or (3 if bad else 0))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())
    modes = [c["mode"] for c in results["checks"] if c["check"].startswith("train-")]
    assert modes == ["backprop", "dfa", "optical"]
    assert results["checks"][-1]["check"] == "step-tiny-optical-dfa" and results["checks"][-1]["step_s_median"] > 0
    assert all(c["engine"]["backward_calls"] >= 1 for c in results["checks"])
    dfa = next(c for c in results["checks"] if c["check"] == "train-tiny" and c["mode"] == "dfa")
    assert (
        dfa["engine"]["projector_vectors"] == 3 * 2 * 32
    )  # per-token error, as users train: 32 tokens x 2 samples x 3 steps
    ladder = results["scaling"]  # DFA vs backprop per size, with the modelled OPU cost of a step
    assert [r["size"] for r in ladder] == ["0.1M", "tiny"] and ladder[0]["parameters"] < ladder[1]["parameters"]
    assert all(r["rmse_ratio_dfa_vs_backprop"] > 0 and r["step_s_dfa"] > 0 for r in ladder)
    # tiny at 16 x 32, patch 4: 2 samples x 32 tokens; every vector takes frames at the device's frame rate
    assert ladder[1]["opu_vectors_per_step"] == 64 and ladder[1]["opu_device_s_per_step"] > 64 / 1500
