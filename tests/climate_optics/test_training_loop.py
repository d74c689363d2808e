"""The generic training loop on a toy task: learning, logs, checkpoints, exact resume."""

import json

import numpy as np
import pytest
import torch

from climate_optics.errors import UsageInputError
from climate_optics.io.checkpoints import load_checkpoint
from climate_optics.training.loop import lr_factor, train
from climate_optics.training.task import TrainConfig, TrainTask


class ToyTask:
    """Linear regression y = x @ w through a two-layer MLP; the stream restarts at any step."""

    def __init__(self, seed=0):
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
        self.feedback_points = ["0"]
        self.w = torch.tensor([[1.0, -2.0], [0.5, 0.0], [0.0, 1.0], [-1.0, 0.5]])

    def batches(self, rng, batch_size, start_step=0):
        seed = int(rng.integers(2**31))
        step = start_step
        while True:
            g = np.random.default_rng([seed, step])
            x = torch.from_numpy(g.standard_normal((batch_size, 4)).astype(np.float32))
            yield {"x": x, "y": x @ self.w}
            step += 1

    def loss(self, model, batch):
        return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])

    def validate(self, model):
        x = torch.linspace(-1, 1, 32).reshape(8, 4)
        with torch.no_grad():
            return {"mse": float(torch.nn.functional.mse_loss(model(x), x @ self.w))}

    def checkpoint_extra(self):
        return {"config": {"hidden": 16}, "statistics": {"w": self.w.clone()}}


def cfg(**kw):
    base = dict(
        steps=12,
        batch_size=8,
        lr=3e-2,
        warmup=2,
        checkpoint_every=4,
        val_every=6,
        log_every=2,
        device="cpu",
        deterministic=True,
        progress=False,
    )
    return TrainConfig(**{**base, **kw})


def test_task_protocol_and_learning(tmp_path):
    task = ToyTask()
    assert isinstance(task, TrainTask)
    before = task.validate(task.model)["mse"]
    result = train(task, cfg(steps=40), tmp_path / "run")
    assert result.steps == 40 and not result.stopped_early
    assert result.val["mse"] < 0.5 * before
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {line["kind"] for line in lines} == {"train", "val"}
    state = load_checkpoint(tmp_path / "run")  # weights_only=True inside
    assert state["step"] == 40 and state["train_config"]["steps"] == 40
    assert torch.equal(state["task"]["statistics"]["w"], task.w)


@pytest.mark.parametrize("mode", ["backprop", "dfa", "optical"])
def test_resume_is_exact(tmp_path, mode):
    """A run killed after step 7 and resumed from its step-4 checkpoint ends bit for bit like an
    uninterrupted one, in every mode (the optical simulator's noise streams included)."""
    full = ToyTask()
    train(full, cfg(mode=mode), tmp_path / "full")
    killed = ToyTask()
    partial = train(killed, cfg(mode=mode), tmp_path / "killed", stop_after=7)  # last checkpoint at step 4
    assert partial.stopped_early
    with pytest.raises(UsageInputError, match="--resume"):
        train(ToyTask(), cfg(mode=mode), tmp_path / "killed")
    resumed = ToyTask(seed=123)  # different init: everything must come from the checkpoint
    train(resumed, cfg(mode=mode), tmp_path / "killed", resume=True)
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)

    def logged(run):
        return [
            (r["step"], r["kind"]) for r in map(json.loads, (tmp_path / run / "metrics.jsonl").read_text().splitlines())
        ]

    assert logged("killed") == logged("full")  # lines after the step-4 checkpoint were dropped, not duplicated


def test_a_new_run_drops_the_log_of_a_run_killed_before_its_first_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        json.dumps({"step": 1, "kind": "train", "loss": 12345.0}) + "\n"
    )  # no checkpoint
    train(ToyTask(), cfg(steps=4), run)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(line.get("loss") != 12345.0 for line in lines)
    assert [line["step"] for line in lines if line["kind"] == "train"] == sorted(
        {line["step"] for line in lines if line["kind"] == "train"}
    )


def test_a_log_this_tool_did_not_write_is_refused_not_replaced(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("my own notes\n")
    with pytest.raises(UsageInputError, match="not a training log this tool wrote"):
        train(ToyTask(), cfg(steps=4), run)
    assert (run / "metrics.jsonl").read_text() == "my own notes\n" and sorted(p.name for p in run.iterdir()) == [
        "metrics.jsonl"
    ]


def test_resume_refuses_changed_settings(tmp_path):
    train(ToyTask(), cfg(steps=4), tmp_path / "run")
    with pytest.raises(UsageInputError, match="lr"):
        train(ToyTask(), cfg(steps=4, lr=1.0), tmp_path / "run", resume=True)


def test_schedule_and_config_validation():
    c = cfg(steps=100, warmup=10, min_lr_ratio=0.1)
    assert lr_factor(0, c) == pytest.approx(0.1) and lr_factor(9, c) == pytest.approx(1.0)
    assert lr_factor(100, c) == pytest.approx(0.1)
    assert 0.1 < lr_factor(55, c) < 1.0
    with pytest.raises(UsageInputError, match="mode"):
        TrainConfig(mode="quantum")
    with pytest.raises(UsageInputError, match="steps"):
        TrainConfig(steps=0)
