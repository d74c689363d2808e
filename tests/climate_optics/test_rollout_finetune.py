"""Autoregressive fine-tuning: the trained step of a rollout is the forecaster's own k-th step."""

import json

import numpy as np
import pytest
import torch

from climate_optics.models.forecaster import lat_weighted_mse
from climate_optics.training.forecast_task import ForecastTask
from climate_optics.training.loop import make_engine
from climate_optics.training.rollout_task import RolloutForecastTask
from climate_optics.training.task import TrainConfig

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture
def base(synthetic_store):
    task = ForecastTask(synthetic_store, preset="tiny", dim=32, depth=1, heads=2, seed=0)
    with torch.no_grad():  # a forecaster whose steps are not near zero, so that rollouts differ from the analysis
        for p in task.model.head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return task


def test_depth_one_is_the_one_step_loss(base, synthetic_store):
    ft = RolloutForecastTask(synthetic_store, base.model, 1, seed=0)
    batch = next(iter(ft.batches(np.random.default_rng(3), 4)))
    torch.testing.assert_close(ft.loss(base.model, batch), base.loss(base.model, batch), rtol=1e-4, atol=1e-6)


def test_deeper_samples_train_the_step_after_the_models_own_rollout(base, synthetic_store):
    model = base.model
    ft = RolloutForecastTask(synthetic_store, model, 3, seed=0)
    batch = next(iter(ft.batches(np.random.default_rng(5), 8)))
    k = (batch["lead"] / model.config.step_hours).round().long()
    assert set(k.tolist()) > {1}, k  # the draw covers deeper rollouts
    c = len(model.config.channels)
    state = model.mean.view(1, -1, 1, 1) + batch["x"][:, :c] * model.std.view(1, -1, 1, 1)
    previous = state - batch["x"][:, c : 2 * c] * model.diff_std.view(1, -1, 1, 1)
    future = state + batch["y"] * model.diff_std.view(1, -1, 1, 1) * k.float().sqrt().view(-1, 1, 1, 1)
    static = batch["static"]
    step = torch.full((1,), float(model.config.step_hours))
    losses = []
    with torch.no_grad():
        for i in range(len(k)):  # each sample through the forecaster's public rollout, then its next step
            s, p = state[i : i + 1], previous[i : i + 1]
            if k[i] > 1:
                hours = [model.config.step_hours * j for j in range(1, int(k[i]))]
                path = model.rollout(s, hours, static[i : i + 1], previous=p)
                s, p = path[-1], (path[-2] if len(path) > 1 else s)
            pred = model(model.inputs(s, p), step, static[i : i + 1])
            losses.append(lat_weighted_mse(pred, model.target(s, future[i : i + 1], step), ft.weights))
    expected = torch.stack(losses).mean()
    torch.testing.assert_close(ft.loss(model, batch), expected, rtol=1e-4, atol=1e-6)
    one_step = ForecastTask.loss(ft, model, batch)  # the direct multi-lead loss on the same windows differs
    assert not torch.isclose(one_step, expected, rtol=1e-3)


@pytest.mark.parametrize("mode", ["dfa", "backprop"])
def test_rollout_loss_trains_every_block(base, synthetic_store, mode):
    ft = RolloutForecastTask(synthetic_store, base.model, 3, seed=0)
    engine = make_engine(
        ft.model, ft.feedback_points, TrainConfig(mode=mode), output=ft.feedback_output, error=ft.feedback_error
    )
    batch = next(iter(ft.batches(np.random.default_rng(1), 4)))
    engine.backward(ft.loss(ft.model, batch))
    grads = [p.grad for p in ft.model.blocks.parameters() if p.ndim >= 2]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    if mode == "dfa":
        assert engine.stats.projector.vectors == 4 * ft.model.h * ft.model.w  # one per token of the trained step only
    assert ft.checkpoint_extra()["model_config"]["train_lead_steps"] == list(base.model.config.train_lead_steps)


def test_cli_fine_tunes_a_run_on_rollouts(synthetic_store, tmp_path, run_cli):
    common = ("--data", synthetic_store, "--mode", "dfa", "--steps", "4", "--batch-size", "2")
    assert run_cli("train", "forecast", *common, "--out", tmp_path / "first")[0] == 0
    status, _, err = run_cli(
        "train",
        "forecast",
        *common,
        "--out",
        tmp_path / "tuned",
        "--init",
        tmp_path / "first",
        "--rollout",
        "3",
        "--rollout-tail",
        "1",
    )
    assert status == 0, err
    first = torch.load(tmp_path / "first" / "checkpoint.pt", weights_only=True)
    tuned = torch.load(tmp_path / "tuned" / "checkpoint.pt", weights_only=True)
    assert tuned["task"]["model_config"] == first["task"]["model_config"]  # the model's own config, one-step leads
    assert tuned["task"]["rollout"] == {"depth": 3, "one_step_until": 0}  # rollouts from the first step
    assert first["task"]["rollout"] == {"depth": 4, "one_step_until": 3}  # the default: a tail of 20% of the steps
    lines = [json.loads(line) for line in (tmp_path / "first" / "metrics.jsonl").read_text().splitlines()]
    objectives = [(r["step"], r["objective"]) for r in lines if r["kind"] == "train"]
    assert objectives == [(1, "one-step"), (2, "one-step"), (3, "one-step"), (4, "rollout")]  # the log says which
    assert run_cli("train", "forecast", *common, "--out", tmp_path / "scratch", "--rollout", "3")[0] == 0
    scratch = torch.load(tmp_path / "scratch" / "checkpoint.pt", weights_only=True)
    name = (
        "blocks.0.mlp.0.weight"
        if "blocks.0.mlp.0.weight" in tuned["model"]
        else next(k for k in tuned["model"] if k.startswith("blocks.0"))
    )
    assert not torch.equal(tuned["model"][name], scratch["model"][name])  # --init's weights were the start


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--init", "no-such-run"), "--init"),
        (("--rollout", "2", "--lead-steps", "1,2"), "--rollout"),
        (("--rollout-tail", "1.5"), "--rollout-tail"),
    ],
)
def test_cli_refuses_bad_fine_tuning_options(synthetic_store, tmp_path, run_cli, extra, message):
    status, _, err = run_cli(
        "train", "forecast", "--data", synthetic_store, "--out", tmp_path / "run", "--steps", "2", *extra
    )
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_rollout_tail_trains_one_step_first_then_rollouts(base, synthetic_store):
    tail = RolloutForecastTask(synthetic_store, base.model, 4, one_step_until=3, seed=0)
    batches = tail.batches(np.random.default_rng(5), 8)
    depths = [(next(batches)["lead"] / base.model.config.step_hours).round().long() for _ in range(6)]
    assert all(set(k.tolist()) == {1} for k in depths[:3]), depths  # one-step training until step 3
    assert set(torch.cat(depths[3:]).tolist()) == {1, 2, 3, 4}, depths  # then every rollout depth
    resumed = tail.batches(np.random.default_rng(5), 8, start_step=4)  # a resumed run draws the same depths
    torch.testing.assert_close(next(resumed)["lead"], (depths[4] * base.model.config.step_hours).float())


def test_other_leads_train_one_step_and_rollout_one_turns_the_tail_off(synthetic_store, tmp_path, run_cli):
    common = ("--data", synthetic_store, "--mode", "dfa", "--steps", "2", "--batch-size", "2")
    for name, extra in (("leads", ("--lead-steps", "1,2")), ("plain", ("--rollout", "1"))):
        assert run_cli("train", "forecast", *common, "--out", tmp_path / name, *extra)[0] == 0
        assert "rollout" not in torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["task"]
