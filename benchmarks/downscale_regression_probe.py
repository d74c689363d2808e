"""Where the DFA downscaler loses at the full budget: its regression stage alone, per setting.

The downscaler's CRPS is mostly its regression mean's error. This probe trains that stage only,
as ``bench_skill.py`` does at its full budget (365-day synthetic store at 2.8125 deg, inputs
coarsened by 2, the four channels T2m, Z500, MSLP and u850, 1000 steps of 8, lr 3e-3, warm-up
10, seed 0), and reports the validation MSE as a fraction of bilinear interpolation's every 250
steps, with the last logged gradient alignment per block. One row per ``--setting``:

    python benchmarks/downscale_regression_probe.py --store STORE --setting backprop dfa "dfa lr 1e-3" ...

Each setting is a mode plus departures (see ``SETTINGS``); ``backprop blocks N`` trains the last
N UNet blocks by back-propagation with the output convolution and DFA below them
(``TrainConfig.backprop_blocks``, the hybrid the issue names). The store is built once when
``--store`` is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Row, write_results  # noqa: E402

NAME = "downscale_regression_probe"
CHANNELS = ["2m_temperature", "geopotential@500", "mean_sea_level_pressure", "u_component_of_wind@850"]
# name -> (TrainConfig overrides, DownscalerConfig overrides, a change to the built network (CHANGES) or None)
SETTINGS: dict[str, tuple[dict[str, Any], dict[str, Any], str | None]] = {
    "backprop": ({"mode": "backprop"}, {}, None),
    "dfa": ({"mode": "dfa"}, {}, None),
    "optical": ({"mode": "optical"}, {}, None),
    "dfa lr 1e-3": ({"mode": "dfa", "lr": 1e-3}, {}, None),
    "dfa feedback norm off": ({"mode": "dfa", "feedback_norm": "off"}, {}, None),
    "dfa random output layer": ({"mode": "dfa", "head_init": "random"}, {}, None),
    "dfa ViT backbone": ({"mode": "dfa"}, {"backbone": "vit"}, None),
    "backprop ViT backbone": ({"mode": "backprop"}, {"backbone": "vit"}, None),
    "dfa, backprop blocks 1": ({"mode": "dfa", "backprop_blocks": 1}, {}, None),
    "dfa, backprop blocks 2": ({"mode": "dfa", "backprop_blocks": 2}, {}, None),
    "dfa, backprop blocks 3": ({"mode": "dfa", "backprop_blocks": 3}, {}, None),
    "dfa UNet width 64": ({"mode": "dfa"}, {"unet_width": 64}, None),
    "backprop UNet width 64": ({"mode": "backprop"}, {"unet_width": 64}, None),
    "dfa ViT dim 128 depth 6": ({"mode": "dfa"}, {"backbone": "vit", "dim": 128, "depth": 6}, None),
    "backprop ViT dim 128 depth 6": ({"mode": "backprop"}, {"backbone": "vit", "dim": 128, "depth": 6}, None),
    "dfa, identity skips": ({"mode": "dfa"}, {}, "identity_skips"),
    "backprop, identity skips": ({"mode": "backprop"}, {}, "identity_skips"),
    "backprop, output layer only (blocks frozen at init)": ({"mode": "backprop"}, {}, "output_layer_only"),
    "backprop, linear 5x5 map of the inputs only": ({"mode": "backprop"}, {}, "linear_map_only"),
    "dfa + linear 5x5 map of the inputs": ({"mode": "dfa"}, {}, "linear_map"),
}


def identity_skips(unet: Any) -> None:
    """The 1x1 skips of the blocks that take a concatenation (2C or 4C -> C) start as sums of
    identities, so each input passes its first C channels on as along a residual stream."""
    import torch

    for block in unet.blocks:
        if isinstance(block.skip, torch.nn.Conv2d):
            c_out, c_in = block.skip.out_channels, block.skip.in_channels
            weight = torch.zeros(c_out, c_in)
            for start in range(0, c_in, c_in // 2):  # the two concatenated inputs
                weight[:, start : start + c_out] += torch.eye(c_out)
            with torch.no_grad():
                block.skip.weight.copy_(weight[:, :, None, None])  # (C_out, C_in, 1, 1)
                block.skip.bias.zero_()


def output_layer_only(unet: Any) -> None:
    """Only the output norm and convolution train; the blocks keep their initial weights."""
    for name, parameter in unet.named_parameters():
        parameter.requires_grad_(name.startswith(("out.", "out_norm.")))


def linear_map(unet: Any) -> None:
    """Add a 5x5 linear convolution of the network's inputs to its output (zero at the start);
    nothing stands between it and the loss, so every mode trains it with the exact gradient."""
    import torch

    unet.linear_map = torch.nn.Conv2d(unet.stem.in_channels, unet.out.out_channels, 5, padding=2)
    torch.nn.init.zeros_(unet.linear_map.weight)
    torch.nn.init.zeros_(unet.linear_map.bias)
    unet.register_forward_hook(lambda module, inputs, output: output + module.linear_map(inputs[0]))


def linear_map_only(unet: Any) -> None:
    """``linear_map`` with every other parameter frozen (the output convolution stays zero)."""
    linear_map(unet)
    for name, parameter in unet.named_parameters():
        parameter.requires_grad_(name.startswith("linear_map."))


CHANGES = {f.__name__: f for f in (identity_skips, output_layer_only, linear_map, linear_map_only)}


def probe(store: Path, setting: str, steps: int) -> dict[str, Any]:
    """Train the regression stage with one setting; its validation curve and last alignment."""
    from climate_optics.training.downscale_task import build_downscale_task
    from climate_optics.training.loop import METRICS_FILE, seed_everything, train
    from climate_optics.training.task import TrainConfig

    train_overrides, model_overrides, change = SETTINGS[setting]
    config = TrainConfig(
        **{
            "steps": steps,
            "batch_size": 8,
            "lr": 3e-3,
            "warmup": 10,
            "val_every": max(1, steps // 4),
            "checkpoint_every": steps,
            "device": "cpu",
            "progress": False,
            "seed": 0,
            **train_overrides,
        }
    )
    seed_everything(config.seed)
    task = build_downscale_task(store, stage="regression", channels=CHANNELS, overrides=model_overrides or None)
    if change:
        CHANGES[change](task.model.regression)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        train(task, config, out)
        log = [json.loads(line) for line in (Path(out) / METRICS_FILE).read_text().splitlines()]
    curve = [(r["step"], r["val_mse"] / r["val_mse_interpolation"]) for r in log if r["kind"] == "val"]
    alignment = [r for r in log if r["kind"] == "alignment"][-1:]
    return {"curve": curve, "alignment": alignment[0] if alignment else {}, "wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="a 2.8125 deg store (default: the 365-day synthetic one, built)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--setting", nargs="+", default=["backprop", "dfa"], choices=list(SETTINGS), metavar="SETTING")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.store is None:
            from downscale_cases import hires_store

            args.store = hires_store(Path(tmp), 365)
        for setting in args.setting:
            record = probe(args.store, setting, args.steps)
            step, ratio = record["curve"][-1]
            blocks = {k.split(".")[-1]: v for k, v in record["alignment"].items() if "blocks" in k}
            print(f"{setting}: val MSE / bilinear {[round(r, 3) for _, r in record['curve']]}, alignment {blocks}")
            rows.append(Row(NAME, f"{setting}: val MSE at step {step} vs bilinear", ratio, 1.0, "1", ratio))
            rows.append(Row(NAME, f"{setting}: training wall time", record["wall_s"], None, "s"))
    write_results(NAME, rows)


if __name__ == "__main__":
    main()
