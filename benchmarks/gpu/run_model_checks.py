"""GPU check for the models: train the ``base`` forecaster in each mode, time a ``1b`` optical-DFA step.

Needs torch, numpy and this repository's torch code only (no zarr/dask/prefect/cartopy): it
makes its own smooth random fields instead of reading stores. Writes a JSON file of results.

    python benchmarks/gpu/run_model_checks.py --out model_checks.json   # < 8 min on one GPU
    python benchmarks/gpu/run_model_checks.py --dry-run                  # tiny sizes, CPU, seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from climate_optics.models.forecaster import Forecaster, ForecasterConfig, feedback_points, lat_weighted_mse  # noqa: E402
from climate_optics.training.loop import make_engine, train  # noqa: E402
from climate_optics.training.task import TrainConfig  # noqa: E402

CHANNELS = ("geopotential@500", "temperature@850", "u_component_of_wind@850", "v_component_of_wind@850", "2m_temperature")


class TensorForecastTask:
    """A TrainTask on smooth random fields drifting east by one grid point per step (no stores)."""

    def __init__(self, config: ForecasterConfig, seed: int = 0):
        torch.manual_seed(seed)
        self.model = Forecaster(config)
        self.feedback_points = feedback_points(self.model)
        self.grid = config.grid
        self.weights = torch.cos(torch.linspace(-1.5, 1.5, config.grid[0])).clamp_min(0.05)
        self.weights = self.weights / self.weights.mean()

    def fields(self, gen: torch.Generator, n: int) -> torch.Tensor:
        c, (h, w) = len(self.model.config.channels), self.grid
        coarse = torch.randn(n, c, max(2, h // 8), max(2, w // 8), generator=gen)
        return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)  # (n, C, H, W)

    def batches(self, rng: np.random.Generator, batch_size: int, start_step: int = 0):
        seed, step = int(rng.integers(2**31)), start_step
        while True:
            gen = torch.Generator().manual_seed(seed + step)
            x = self.fields(gen, batch_size)  # (B, C, H, W)
            y = torch.roll(x, 1, dims=-1) - x
            # With history > 1 the model also takes the past changes; the state j steps back is x rolled west by j.
            past = [torch.roll(x, 1 - j, dims=-1) - torch.roll(x, -j, dims=-1) for j in range(1, self.model.config.history)]
            yield {"x": torch.cat([x, *past], dim=1), "y": y, "lead": torch.full((batch_size,), 6.0)}  # x: (B, C * history, H, W)
            step += 1

    def loss(self, model, batch):
        return lat_weighted_mse(model(batch["x"], batch["lead"]), batch["y"], self.weights.to(batch["x"].device))

    def validate(self, model):
        batch = next(self.batches(np.random.default_rng(123), 4))
        device = next(model.parameters()).device
        with torch.no_grad():
            return {"loss": float(self.loss(model, {k: v.to(device) for k, v in batch.items()}))}

    def checkpoint_extra(self):
        return {"kind": "forecast", "model_config": self.model.config.to_dict()}


def train_modes(preset: str, grid: tuple[int, int], steps: int, batch: int, device: str, modes: list[str]) -> list[dict]:
    rows = []
    for mode in modes:
        task = TensorForecastTask(ForecasterConfig.from_preset(preset, channels=CHANNELS, grid=grid))
        config = TrainConfig(steps=steps, batch_size=batch, lr=3e-4, warmup=max(1, steps // 10), val_every=0,
                             checkpoint_every=steps, log_every=max(1, steps // 10), mode=mode, device=device, progress=False)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with tempfile.TemporaryDirectory() as out:
            first = task.validate(task.model.to(device))["loss"]
            result = train(task, config, out)
        rows.append({
            "check": f"train-{preset}", "mode": mode, "steps": steps, "batch_size": batch, "grid": list(grid),
            "parameters": task.model.num_parameters(), "loss_before": first, "loss_after": result.val.get("loss"),
            "samples_per_s": result.samples_per_s, "wall_s": result.wall_time_s,
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None,
            "engine": result.engine_stats,
        })
        print(json.dumps(rows[-1]), flush=True)
        del task
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def time_big_step(preset: str, grid: tuple[int, int], batch: int, device: str, repeats: int) -> dict:
    """Seconds per optical-DFA training step (forward, dfa.backward, AdamW) of ``preset``."""
    task = TensorForecastTask(ForecasterConfig.from_preset(preset, channels=CHANNELS, grid=grid))
    model = task.model.to(device)
    config = TrainConfig(mode="optical", device=device)
    engine = make_engine(model, task.feedback_points, config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    stream = task.batches(np.random.default_rng(0), batch)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    times = []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(repeats + 1):
        b = {k: v.to(device) for k, v in next(stream).items()}
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast:
            loss = task.loss(model, b)
        opt.zero_grad(set_to_none=True)
        engine.backward(loss)
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    stats = getattr(engine, "stats", None)
    return {
        "check": f"step-{preset}-optical-dfa", "parameters": model.num_parameters(), "batch_size": batch, "grid": list(grid),
        "step_s_median": float(np.median(times[1:])), "step_s_first": times[0], "loss": float(loss),
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None,
        "engine": stats.as_dict() if hasattr(stats, "as_dict") else {},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="model_checks.json")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU (a smoke test of this script)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per mode for the base preset")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    if args.dry_run:
        plan = dict(preset="tiny", grid=(16, 32), steps=3, batch=2, big="tiny", big_grid=(16, 32), big_batch=2, repeats=1)
    else:
        if device != "cuda":
            print("run_model_checks: no CUDA device; use --dry-run on CPU", file=sys.stderr)
            return 2
        plan = dict(preset="base", grid=(32, 64), steps=args.steps, batch=16, big="1b", big_grid=(32, 64), big_batch=4, repeats=3)
    t0 = time.perf_counter()
    results = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__, "plan": plan, "checks": []}
    results["checks"] += train_modes(plan["preset"], plan["grid"], plan["steps"], plan["batch"], device, ["backprop", "dfa", "optical"])
    results["checks"].append(time_big_step(plan["big"], plan["big_grid"], plan["big_batch"], device, plan["repeats"]))
    print(json.dumps(results["checks"][-1]), flush=True)
    results["total_s"] = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} ({results['total_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
