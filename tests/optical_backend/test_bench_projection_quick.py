"""``benchmarks/bench_projection.py --quick`` runs end to end: one run prints the projection with the
default device, the medium's statistics, the encoding's bias per error family and the DFA step's
simulated device time, and writes the same rows as JSON. Slow: the quick run takes minutes on 2 cores
(it generates a short embedded record and trains TinyViTs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from optical_backend.diagnostics import error_families

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_prints_every_part_with_the_default_device(tmp_path):
    env = dict(os.environ, CLIMATE_OPTICS_BENCH_RESULTS=str(tmp_path))
    script = ROOT / "benchmarks" / "bench_projection.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--skip-dfa-cases"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {r["case"]: r for r in json.loads((tmp_path / "projection.json").read_text())}
    assert all(case in done.stdout for case in rows)  # the table shows every row written

    def having(*parts: str) -> list[dict]:
        return [r for case, r in rows.items() if all(p in case for p in parts)]

    # the projection with the default device: simulator wall time per size, the 2^16 run's device time
    assert len(having("optical simulator (default device) vs structured")) == 3  # 2^10, 2^12, 2^14
    device = having("optical n=2^16", "default device", "simulated device s per call")
    assert len(device) == 1 and device[0]["ours"] > 0
    # the medium's statistics, each beside its reference
    medium = having("medium 1024->8192")
    for what in ("intensity KS", "circular", "correlation", "distinct moduli", "Marchenko-Pastur", "spread"):
        assert len([r for r in medium if what in r["case"]]) == 1, what
    assert all(r["met"] is not False for r in medium)
    # the encoding's bias per error family, with and without the residual pair
    families = [*error_families(), "forecaster per-sample error", "forecaster per-token error"]
    for family in families:
        for name in ("default", "no residual pair"):
            assert len(having(f"encoding {name}, {family} (")) == 1, (name, family)
    assert all(abs(r["ours"] - 1) < 0.1 for r in having("encoding default,"))  # gains near 1 (unbiased)
    # the DFA step: digital wall time beside the optical step's simulated device time and energy
    for error in ("sample", "token"):
        step = having(f"error per {error}: optical DFA simulated device s/step")
        assert len(step) == 1 and step[0]["ours"] > 0 and "J/step) vs backprop wall" in step[0]["case"]
        assert len(having(f"error per {error}: digital DFA wall s/step")) == 1
