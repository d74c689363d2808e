"""The demo's wall time per stage, and what Prefect adds: ``climate-optics demo`` vs ``--no-prefect``.

Both run in fresh subprocesses on the same settings (the demo's, or with ``--quick`` a tiny
pipeline: 16 days, a 1-block ViT, 30 steps per mode, 2 downscaler steps), after one warm-up
that fills the synthetic-data cache, so neither pays for generating the reanalysis. Each run
writes ``timings.json`` (wall seconds per stage, timed around the library call or the task
call). Rows: every stage (ours: in the flow, reference: called directly); the flow's total
after the API is up against the direct total (Prefect overhead, target: at most 10 %); and the
API start-up (the flow process's wall time minus its stages' sum).

    python benchmarks/bench_pipeline.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from benchkit import Row, write_results

QUICK = {
    "options": {"grid": "5.625deg", "days": 16, "spinup_days": 2, "seed": 0},
    "model": {"dim": 32, "depth": 1, "heads": 2},
    "steps": 30,
    "batch_size": 4,
    "lead_hours": [6, 24],
    "max_inits": 4,
    "downscale_steps": 2,
    "downscale_members": 2,
    "downscale_sampler_steps": 4,
}


def run_demo(config: Path | None, out: Path, env: dict[str, str], *, prefect: bool) -> tuple[float, dict[str, float]]:
    """(process wall seconds, timings.json) of one ``climate-optics demo`` run."""
    cmd = [sys.executable, "-m", "flows.cli", "demo", "--out", str(out), "--prefect" if prefect else "--no-prefect"]
    cmd += ["--config", str(config)] if config is not None else []
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, json.loads((out / "timings.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny pipeline instead of the demo's settings")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        config = None
        if args.quick:
            config = tmp_path / "quick.yaml"
            config.write_text(yaml.safe_dump(QUICK))
        env = {**os.environ, "CLIMATE_OPTICS_CACHE": str(tmp_path / "cache"), "PREFECT_HOME": str(tmp_path / "prefect")}
        run_demo(config, tmp_path / "warm-up", env, prefect=False)  # fills the synthetic cache for both runs
        direct_wall, direct = run_demo(config, tmp_path / "direct", env, prefect=False)
        flow_wall, flowed = run_demo(config, tmp_path / "flow", env, prefect=True)
    rows = [
        Row(
            "pipeline",
            f"stage {stage} (s)",
            flowed[stage],
            direct.get(stage),
            "s",
            ratio=flowed[stage] / direct[stage] if direct.get(stage) else None,
        )
        for stage in flowed
    ]
    flow_total, direct_total = sum(flowed.values()), sum(direct.values())
    overhead = flow_total - direct_total
    rows.append(
        Row(
            "pipeline",
            "all stages: flow vs direct calls (s)",
            flow_total,
            direct_total,
            "s",
            ratio=flow_total / direct_total,
        )
    )
    rows.append(
        Row(
            "pipeline",
            "Prefect overhead after API start / direct total",
            overhead,
            direct_total,
            "s",
            ratio=overhead / direct_total,
            target="ratio <= 0.1",
        )
    )
    rows.append(
        Row(
            "pipeline", "Prefect API start-up and teardown (s)", flow_wall - flow_total, direct_wall - direct_total, "s"
        )
    )
    write_results("pipeline" + ("-quick" if args.quick else ""), rows)


if __name__ == "__main__":
    main()
