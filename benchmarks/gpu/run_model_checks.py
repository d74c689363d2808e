"""GPU check for the models: train the ``base`` forecaster in each mode, time a ``1b`` optical-DFA step,
and the DFA / back-propagation scaling ladder up to ``base``.

Needs torch, numpy and this repository's torch code only (no zarr/dask/prefect/cartopy): it
makes its own smooth random fields instead of reading stores. Writes a JSON file of results.

The scaling ladder (``"scaling"`` in the JSON) trains each size of ``SCALING_SIZES`` by
back-propagation and by DFA with the same steps, batch and the training defaults otherwise (lr
1e-3, 5% warm-up), and reports the validation-loss ratio as an RMSE ratio (sqrt of the loss
ratio), the wall time per step, and the modelled OPU time and energy per step of the feedback.
The sizes below ``base`` are those ``benchmarks/dfa_scaling.py`` trains on the CPU (on the
synthetic reanalysis there; on these drifting fields here, so compare trends, not values).

    python benchmarks/gpu/run_model_checks.py --out model_checks.json   # < 8 min on one GPU
    python benchmarks/gpu/run_model_checks.py --dry-run                  # tiny sizes, CPU, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from climate_optics.models.forecaster import (  # noqa: E402
    FEEDBACK_ERROR,
    FEEDBACK_OUTPUT,
    Forecaster,
    ForecasterConfig,
    feedback_points,
    lat_weighted_mse,
)
from climate_optics.training.loop import make_engine, train  # noqa: E402
from climate_optics.training.task import TrainConfig  # noqa: E402

# Overrides of the ``tiny`` preset per size (benchmarks/dfa_scaling.py trains the same on CPU); None: the preset itself.
SCALING_SIZES: dict[str, dict | None] = {
    "0.1M": {"dim": 48, "depth": 2, "heads": 4},
    "tiny": {},
    "3M": {"dim": 192, "depth": 6, "heads": 6, "mlp_ratio": 4.0},
    "15M": {"dim": 384, "depth": 8, "heads": 8, "mlp_ratio": 4.0},
    "base": None,
}
CHANNELS = (
    "geopotential@500",
    "temperature@850",
    "u_component_of_wind@850",
    "v_component_of_wind@850",
    "2m_temperature",
)


class TensorForecastTask:
    """A TrainTask on smooth random fields drifting east by one grid point per step (no stores)."""

    def __init__(self, config: ForecasterConfig, seed: int = 0):
        torch.manual_seed(seed)
        self.model = Forecaster(config)
        self.feedback_points = feedback_points(self.model)
        self.feedback_output, self.feedback_error = FEEDBACK_OUTPUT, FEEDBACK_ERROR  # per-token error, as ForecastTask
        self.feedback_norm = "norm"  # signals through the final LayerNorm, as ForecastTask
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
            past = [
                torch.roll(x, 1 - j, dims=-1) - torch.roll(x, -j, dims=-1) for j in range(1, self.model.config.history)
            ]
            yield {
                "x": torch.cat([x, *past], dim=1),
                "y": y,
                "lead": torch.full((batch_size,), 6.0),
            }  # x: (B, C * history, H, W)
            step += 1

    def loss(self, model, batch):
        return lat_weighted_mse(model(batch["x"], batch["lead"]), batch["y"], self.weights.to(batch["x"].device))

    def validate(self, model):
        batch = next(self.batches(np.random.default_rng(123), 16))
        device = next(model.parameters()).device
        with torch.no_grad():
            return {"loss": float(self.loss(model, {k: v.to(device) for k, v in batch.items()}))}

    def checkpoint_extra(self):
        return {"kind": "forecast", "model_config": self.model.config.to_dict()}


def opu_step_cost(model_config: dict, batch: int, opu_config=None) -> dict[str, float]:
    """Modelled OPU time and energy of one training step's feedback projection (per-token error, shared layout).

    One vector per token: ``batch * tokens`` vectors of ``patch**2 * channels`` error values projected
    to ``dim`` outputs (the widest feedback point), in one call, over every (input, output) tile pair;
    an upper bound (``OPUConfig.device_time_s``: every pattern counted).
    """
    from optical_backend.opu import OPUConfig

    opu = opu_config or OPUConfig()
    (h, w), patch = model_config["grid"], model_config["patch"]
    vectors = batch * math.ceil(h / patch) * math.ceil(w / patch)
    n_in, n_out = patch * patch * len(model_config["channels"]), model_config["dim"]
    tiles_in, tiles_out = opu.tiles(n_in, n_out)
    seconds = opu.device_time_s(vectors, calls=1, passes=tiles_in * tiles_out)
    return {"vectors": vectors, "n_in": n_in, "n_out": n_out, "device_s": seconds, "energy_j": opu.energy_j(seconds)}


def train_modes(
    preset: str,
    grid: tuple[int, int],
    steps: int,
    batch: int,
    device: str,
    modes: list[str],
    overrides: dict | None = None,
    lr: float = 3e-4,
    warmup: int | None = None,
) -> list[dict]:
    rows = []
    for mode in modes:
        task = TensorForecastTask(
            ForecasterConfig.from_preset(preset, channels=CHANNELS, grid=grid, **(overrides or {}))
        )
        config = TrainConfig(
            steps=steps,
            batch_size=batch,
            lr=lr,
            warmup=max(1, steps // 10) if warmup is None else warmup,
            val_every=0,
            checkpoint_every=steps,
            log_every=max(1, steps // 10),
            mode=mode,
            device=device,
            progress=False,
        )
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with tempfile.TemporaryDirectory() as out:
            first = task.validate(task.model.to(device))["loss"]
            result = train(task, config, out)
        rows.append(
            {
                "check": f"train-{preset}",
                "mode": mode,
                "steps": steps,
                "batch_size": batch,
                "grid": list(grid),
                "parameters": task.model.num_parameters(),
                "loss_before": first,
                "loss_after": result.val.get("loss"),
                "samples_per_s": result.samples_per_s,
                "wall_s": result.wall_time_s,
                "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None,
                "engine": result.engine_stats,
                "model_config": task.model.config.to_dict(),
            }
        )
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "model_config"}), flush=True)
        del task
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def scaling_ladder(sizes: list[str], grid: tuple[int, int], steps: int, batch: int, device: str) -> list[dict]:
    """Per size: DFA vs back-propagation at equal steps (training defaults), wall time and modelled OPU cost per step."""
    rows = []
    for size in sizes:
        overrides = SCALING_SIZES[size]
        preset = "base" if overrides is None else "tiny"
        bp, dfa = train_modes(
            preset, grid, steps, batch, device, ["backprop", "dfa"], overrides, lr=1e-3, warmup=max(1, steps // 20)
        )
        cost = opu_step_cost(dfa["model_config"], batch)
        rows.append(
            {
                "size": size,
                "parameters": dfa["parameters"],
                "steps": steps,
                "batch_size": batch,
                "grid": list(grid),
                "loss_backprop": bp["loss_after"],
                "loss_dfa": dfa["loss_after"],
                "rmse_ratio_dfa_vs_backprop": math.sqrt(dfa["loss_after"] / bp["loss_after"]),
                "step_s_backprop": bp["wall_s"] / steps,
                "step_s_dfa": dfa["wall_s"] / steps,
                "opu_device_s_per_step": cost["device_s"],
                "opu_energy_j_per_step": cost["energy_j"],
                "opu_vectors_per_step": cost["vectors"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def time_big_step(preset: str, grid: tuple[int, int], batch: int, device: str, repeats: int) -> dict:
    """Seconds per optical-DFA training step (forward, dfa.backward, AdamW) of ``preset``."""
    task = TensorForecastTask(ForecasterConfig.from_preset(preset, channels=CHANNELS, grid=grid))
    model = task.model.to(device)
    config = TrainConfig(mode="optical", device=device)
    engine = make_engine(
        model,
        task.feedback_points,
        config,
        output=task.feedback_output,
        error=task.feedback_error,
        norm=task.feedback_norm,
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    stream = task.batches(np.random.default_rng(0), batch)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    )
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
        "check": f"step-{preset}-optical-dfa",
        "parameters": model.num_parameters(),
        "batch_size": batch,
        "grid": list(grid),
        "step_s_median": float(np.median(times[1:])),
        "step_s_first": times[0],
        "loss": float(loss),
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None,
        "engine": stats.as_dict() if hasattr(stats, "as_dict") else {},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="model_checks.json")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU (a smoke test of this script)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per mode for the base preset")
    parser.add_argument(
        "--scaling-steps", type=int, default=300, help="training steps per mode and size of the scaling ladder"
    )
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    if args.dry_run:
        plan = dict(
            preset="tiny",
            grid=(16, 32),
            steps=3,
            batch=2,
            big="tiny",
            big_grid=(16, 32),
            big_batch=2,
            repeats=1,
            scaling=["0.1M", "tiny"],
            scaling_steps=3,
            scaling_batch=2,
        )
    else:
        if device != "cuda":
            print("run_model_checks: no CUDA device; use --dry-run on CPU", file=sys.stderr)
            return 2
        plan = dict(
            preset="base",
            grid=(32, 64),
            steps=args.steps,
            batch=16,
            big="1b",
            big_grid=(32, 64),
            big_batch=4,
            repeats=3,
            scaling=list(SCALING_SIZES),
            scaling_steps=args.scaling_steps,
            scaling_batch=8,
        )
    t0 = time.perf_counter()
    results = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "plan": plan,
        "checks": [],
    }
    results["checks"] += train_modes(
        plan["preset"], plan["grid"], plan["steps"], plan["batch"], device, ["backprop", "dfa", "optical"]
    )
    results["checks"].append(time_big_step(plan["big"], plan["big_grid"], plan["big_batch"], device, plan["repeats"]))
    print(json.dumps(results["checks"][-1]), flush=True)
    results["scaling"] = scaling_ladder(
        plan["scaling"], plan["grid"], plan["scaling_steps"], plan["scaling_batch"], device
    )
    results["total_s"] = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} ({results['total_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
