"""The GPU check script runs end to end on CPU with --dry-run and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_gpu_check_script_dry_run_writes_rows_and_curves(tmp_path):
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "gpu.json"
    env = dict(os.environ, PYTHONPATH="")  # the script finds optical_backend by itself
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks/gpu/run_gpu_checks.py"), "--dry-run", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["dry_run"] is True and result["device"] == "cpu"
    cases = [r["case"] for r in result["rows"]]
    assert any(c.startswith("structured vs dense") for c in cases)
    assert any(c.startswith("step time depth 2: dfa-structured") for c in cases)
    assert any(c.startswith("peak step memory depth 2: dfa lean vs backprop+checkpoint") for c in cases)
    timed = [r for r in result["rows"] if r["case"].startswith("step time")]
    assert all(r["ours"] > 0 and r["reference"] > 0 for r in timed)
    assert set(result["curves"]) == {"backprop", "dfa-structured", "dfa-lean"}
    assert all(len(v) == 3 and all(x > 0 for x in v) for v in result["curves"].values())
