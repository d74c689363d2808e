"""DFA and optical DFA learn as users run them: the command line's defaults beat persistence.

Under the old default (the error of the whole sample projected to every token) the forecaster
trained by DFA stayed at persistence (validation Z500 RMSE at 6 h 0.996x persistence after 60
steps on this store); with the per-token error it is 0.87x.
"""

import json

import numpy as np
import pytest
import torch

from climate_optics.training.forecast_task import ForecastTask
from climate_optics.training.loop import make_engine
from climate_optics.training.task import TrainConfig
from optical_backend import DFA

pytestmark = pytest.mark.usefixtures("torch_single_thread")

STEPS = "60"  # the budget: 60 steps of 8 samples, all channels, the 6-hour lead, lr 1e-3 (the CLI defaults)


def log_lines(run, kind: str) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r["kind"] == kind]


@pytest.fixture(scope="module")
def cli_runs(synthetic_store, tmp_path_factory, torch_single_thread_module):
    """Run directories of ``train forecast`` with every default but --steps, one per mode."""
    from flows.cli import main

    runs = {}
    for mode in ("backprop", "dfa", "optical"):
        runs[mode] = tmp_path_factory.mktemp("cli-defaults") / mode
        args = ["train", "forecast", "--data", str(synthetic_store), "--out", str(runs[mode]), "--mode", mode]
        assert main([*args, "--steps", STEPS]) == 0
    return runs


@pytest.mark.slow
def test_cli_defaults_train_dfa_and_optical_about_as_well_as_backprop(cli_runs):
    """The issue's 24 h target at the test's budget: within 15% of back-propagation's RMSE (here at
    the validation's 6 h lead; measured 2026-12-07: backprop 64.4, DFA 65.6, optical 65.2 m2 s-2)."""
    rmse = {mode: log_lines(run, "val")[-1]["rmse_z500_6h"] for mode, run in cli_runs.items()}
    assert rmse["dfa"] < 1.15 * rmse["backprop"] and rmse["optical"] < 1.15 * rmse["backprop"], rmse


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dfa", "optical"])
def test_cli_defaults_train_beyond_persistence(mode, cli_runs):
    run = cli_runs[mode]
    val = log_lines(run, "val")[-1]
    assert val["rmse_z500_6h"] < 0.93 * val["persistence_rmse_z500_6h"], val
    train_lines = log_lines(run, "train")  # the simulated device's cost beside the digital wall time
    assert all(r["error"] == "token" and r["wall_s"] > 0 for r in train_lines)
    device = [r["device_time_s"] for r in train_lines]
    assert device == sorted(device) and (device[-1] > 0) == (mode == "optical")
    alignment = log_lines(run, "alignment")  # beside every validation: is DFA learning?
    assert [r["step"] for r in alignment] == [r["step"] for r in log_lines(run, "val")]
    assert all(set(r) == {"step", "kind", "blocks.0", "blocks.1", "blocks.2"} for r in alignment)
    last = [r["blocks.2"] for r in alignment]
    assert last[0] > 0.5, alignment  # the head starts as the feedback map: the first updates follow the gradient
    assert sum(last) / len(last) > 0.1, alignment  # the last block's updates descend the loss over the run
    engine = torch.load(run / "checkpoint.pt", weights_only=True)["engine"]
    assert engine["error"] == "token" and engine["mode"] == mode


def test_forecast_task_feeds_the_error_back_per_token(synthetic_store):
    task = ForecastTask(synthetic_store, preset="tiny", variables=["geopotential"], static=False)
    engine = make_engine(
        task.model,
        task.feedback_points,
        TrainConfig(mode="dfa"),
        output=task.feedback_output,
        error=task.feedback_error,
    )
    assert isinstance(engine, DFA) and engine.error == "token" and engine.output_name == "head.mlp"
    batch = next(iter(task.batches(np.random.default_rng(0), 2)))
    engine.backward(task.loss(task.model, batch))
    n_tokens, width = task.model.h * task.model.w, task.config.dim
    patch_values = task.config.patch**2 * len(task.config.channels)
    assert (engine.projector.n_in, engine.projector.n_out) == (
        patch_values,
        width,
    )  # one patch's error -> one token's signal
    assert engine.stats.projector.vectors == 2 * n_tokens
    overridden = make_engine(
        task.model, task.feedback_points, TrainConfig(mode="dfa", error="sample"), output=None, error="token"
    )
    assert overridden.error == "sample"
    overridden.remove_hooks()
    engine.remove_hooks()


def test_cli_takes_an_opu_config_file_and_records_it(waves_store, tmp_path, run_cli):
    args = ["train", "forecast", "--data", waves_store, "--steps", "2", "--batch-size", "2", "--mode", "optical"]
    runs, summaries = {}, {}
    for rate in (1500, 3000):
        config = tmp_path / f"opu{rate}.yaml"
        config.write_text(f"frame_rate_hz: {rate}\n")
        runs[rate] = tmp_path / f"run{rate}"
        status, out, err = run_cli(*args, "--out", runs[rate], "--opu-config", config)
        assert status == 0, err
        summaries[rate] = json.loads(out.strip().splitlines()[-1])
    states = {rate: torch.load(run / "checkpoint.pt", weights_only=True) for rate, run in runs.items()}
    for rate, summary in summaries.items():  # the summary line: the simulated device beside the digital wall time
        stats = states[rate]["engine_stats"]
        assert summary["error"] == "token"  # "auto" resolved to the ViT's choice
        assert summary["device_time_s"] == pytest.approx(stats["projector_device_time_s"], abs=1e-3)
        assert summary["energy_j"] == pytest.approx(stats["projector_energy_j"], abs=1e-3) and summary["energy_j"] > 0
        assert summary["frames"] == stats["projector_frames"] and summary["wall_s"] > summary["projection_wall_s"] > 0
    assert summaries[3000]["device_time_s"] < summaries[1500]["device_time_s"]
    status, out, err = run_cli(*args[:-1], "dfa", "--error", "sample", "--out", tmp_path / "digital")
    digital = json.loads(out.strip().splitlines()[-1])
    assert status == 0 and digital["error"] == "sample" and "device_time_s" not in digital, err  # no device
    assert states[3000]["train_config"]["opu_config"]["frame_rate_hz"] == 3000
    assert states[3000]["engine"]["opu_config"]["frame_rate_hz"] == 3000
    frames = [states[r]["engine_stats"]["projector_frames"] for r in (1500, 3000)]
    times = [states[r]["engine_stats"]["projector_device_time_s"] for r in (1500, 3000)]
    assert frames[0] == frames[1] > 0 and times[1] < times[0]  # the same frames, shown twice as fast

    bad = tmp_path / "bad.yaml"
    bad.write_text("frame_rate_hz: -5\n")
    status, _, err = run_cli(*args, "--out", tmp_path / "bad-run", "--opu-config", bad)
    assert status == 2 and "frame_rate_hz" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad-run").exists()
    status, _, err = run_cli(
        *args[:-1], "dfa", "--out", tmp_path / "dfa-run", "--opu-config", tmp_path / "opu1500.yaml"
    )
    assert status == 2 and "--mode optical" in err


def test_a_new_dfa_run_starts_its_head_as_the_feedback_map(synthetic_store):
    from climate_optics.training.engines import align_head, aligns_head
    from optical_backend.dfa_init import effective_map

    task = ForecastTask(synthetic_store, preset="tiny", variables=["geopotential"], static=False)
    config = TrainConfig(mode="dfa")
    engine = make_engine(
        task.model, task.feedback_points, config, output=task.feedback_output, error=task.feedback_error
    )
    assert aligns_head(config, engine, task.model)  # the default ("auto") for the forecaster's per-token error
    layer = task.model.head.mlp[-1]
    before = layer.weight.detach().clone()
    align_head(engine, task.model, task.feedback_output)
    feedback_map = effective_map(engine.projector)  # (F, D): one patch's error -> one token's signal
    cosine = torch.nn.functional.cosine_similarity(layer.weight.detach().flatten(), feedback_map.flatten(), dim=0)
    assert (
        cosine > 0.999
        and abs(torch.nn.functional.cosine_similarity(before.flatten(), feedback_map.flatten(), dim=0)) < 0.1
    )
    assert not aligns_head(TrainConfig(mode="backprop"), engine, task.model)
    assert not aligns_head(TrainConfig(mode="dfa", head_init="random"), engine, task.model)
    task.model.warm_started = True  # trained weights (workflow.load_weights): the head is kept
    assert not aligns_head(config, engine, task.model)
    engine.remove_hooks()
