"""Data parallel training with 2 gloo ranks on CPU: the real CLI under torchrun, and the loop on a toy task.

Run as a script under torchrun, this module is the toy worker: every rank trains the same
scenarios and writes its weights and error messages into the directory given as argument.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from climate_optics.training.loop import train
from climate_optics.training.task import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
B = 3  # samples per rank and step
W = torch.tensor([[1.0, -2.0], [0.5, 0.0], [0.0, 1.0], [-1.0, 0.5]])


class ShardedToy:
    """y = x @ W through a small MLP; batch k of rank r is rows [r B, (r + 1) B) of global batch k."""

    def __init__(self, nan_on=None, raise_on=None):
        torch.manual_seed(0)
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
        self.feedback_points = ["0"]
        self.nan_on, self.raise_on = nan_on, raise_on  # (rank, step): inject a fault there

    def batches(self, rng, batch_size, start_step=0, shard=(0, 1)):
        rank, world = shard
        seed = int(rng.integers(2**31))
        for step in range(start_step, 10**9):
            if (rank, step) == self.raise_on:
                raise OSError(f"toy data unreadable on rank {rank}")
            g = np.random.default_rng([seed, step])
            x = torch.from_numpy(
                g.standard_normal((world * batch_size, 4)).astype(np.float32)[
                    rank * batch_size : (rank + 1) * batch_size
                ]
            )
            yield {"x": x, "y": x @ W, "fault": (rank, step) == self.nan_on}

    def loss(self, model, batch):
        loss = torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])
        return loss * float("nan") if batch["fault"] else loss

    def validate(self, model):
        x = torch.linspace(-1, 1, 32).reshape(8, 4)
        return {"mse": float(torch.nn.functional.mse_loss(model(x), x @ W))}

    def checkpoint_extra(self):
        return {"config": {"hidden": 16}}


def toy_config(mode, batch_size=B, **kw):
    base = dict(
        steps=4,
        batch_size=batch_size,
        lr=3e-2,
        warmup=1,
        checkpoint_every=2,
        val_every=2,
        log_every=1,
        mode=mode,
        device="cpu",
        deterministic=True,
        progress=False,
    )
    return TrainConfig(**{**base, **kw})


def toy_worker(out: Path) -> None:
    """Every rank: train each mode, resume a stopped run, then provoke the two collective errors."""
    from climate_optics.training import distributed

    rank = int(os.environ["RANK"])
    for mode in ("backprop", "dfa", "optical"):
        task = ShardedToy()
        train(task, toy_config(mode), out / mode)
        torch.save(task.model.state_dict(), out / mode / f"rank{rank}.pt")
    train(ShardedToy(), toy_config("dfa"), out / "resumed", stop_after=3)  # last checkpoint: step 2
    task = ShardedToy()
    train(task, toy_config("dfa"), out / "resumed", resume=True)
    torch.save(task.model.state_dict(), out / "resumed" / f"rank{rank}.pt")
    errors = {}
    try:
        train(ShardedToy(nan_on=(1, 2)), toy_config("dfa"), out / "nan")
    except FloatingPointError as exc:
        errors["nan"] = str(exc)
    world = distributed.join(distributed.world_from_env(), torch.device("cpu"))
    model = ShardedToy().model
    distributed.broadcast_module(model)
    if rank == 1:
        with torch.no_grad():
            model[2].bias[0] += 1e-7
    try:
        distributed.check_same_weights(model, world, step=9)
    except RuntimeError as exc:
        errors["diverged"] = str(exc)
    (out / f"errors{rank}.json").write_text(json.dumps(errors))
    train(ShardedToy(raise_on=(1, 2)), toy_config("dfa"), out / "crash")  # rank 1 fails alone: no rank may hang


def torchrun(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 ARGS``; a hang fails the test (SIGTERM makes torchrun stop its workers)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"torchrun {' '.join(args)} hung for {timeout} s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp-toy")
    proc = torchrun(__file__, str(out))
    return out, proc


def load(path):
    return torch.load(path, weights_only=True)


def assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=atol), (k, float((a[k] - b[k]).abs().max()))


@pytest.mark.parametrize("mode", ["backprop", "dfa", "optical"])
def test_two_ranks_train_identical_weights(toy_runs, mode):
    out, proc = toy_runs
    assert (out / "errors1.json").exists(), proc.stderr[-3000:]
    r0, r1 = load(out / mode / "rank0.pt"), load(out / mode / "rank1.pt")
    assert_same(r0, r1)  # bit for bit
    init = ShardedToy().model.state_dict()
    assert all(not torch.equal(r0[k], init[k]) for k in init)  # every tensor was trained
    state = load(out / mode / "checkpoint.pt")
    assert state["step"] == 4 and state["world_size"] == 2
    assert_same(state["model"], r0)
    lines = [json.loads(line) for line in (out / mode / "metrics.jsonl").read_text().splitlines()]
    val = [(2, "val")] + ([(2, "alignment")] if mode != "backprop" else [])  # DFA modes log alignment beside validation
    expected = [(1, "train"), (2, "train"), *val, (3, "train"), (4, "train"), *[(4, kind) for _, kind in val]]
    assert [(line["step"], line["kind"]) for line in lines] == expected
    assert sorted(p.name for p in (out / mode).iterdir()) == ["checkpoint.pt", "metrics.jsonl", "rank0.pt", "rank1.pt"]


@pytest.mark.parametrize("mode", ["backprop", "dfa"])
def test_two_ranks_of_batch_b_update_like_one_process_of_batch_2b(toy_runs, tmp_path, mode):
    """Gradient averaging is right: both modes' updates are linear in the per-sample errors."""
    out, _ = toy_runs
    single = ShardedToy()
    train(single, toy_config(mode, batch_size=2 * B), tmp_path / "single")
    two_ranks = load(out / mode / "rank0.pt")
    assert_same(single.model.state_dict(), two_ranks, atol=1e-5)
    alone = ShardedToy()  # one rank's half of the data alone gives a clearly different model
    train(alone, toy_config(mode), tmp_path / "alone")
    assert max(float((alone.model.state_dict()[k] - two_ranks[k]).abs().max()) for k in two_ranks) > 1e-3


def test_resume_under_two_ranks_is_exact(toy_runs):
    out, _ = toy_runs
    assert_same(load(out / "resumed" / "rank0.pt"), load(out / "dfa" / "rank0.pt"))
    assert_same(load(out / "resumed" / "rank1.pt"), load(out / "dfa" / "rank0.pt"))


def test_resume_refuses_another_world_size(toy_runs, tmp_path):
    from climate_optics.errors import UsageInputError

    out, _ = toy_runs
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes((out / "dfa" / "checkpoint.pt").read_bytes())
    with pytest.raises(UsageInputError, match="2 process"):
        train(ShardedToy(), toy_config("dfa"), run, resume=True)


def test_errors_stop_every_rank(toy_runs):
    out, proc = toy_runs
    for rank in (0, 1):
        errors = json.loads((out / f"errors{rank}.json").read_text())
        assert "nan on rank 1 at step 3" in errors["nan"]  # stream batch 2 is step 3; both ranks stop, naming rank 1
        assert (
            "rank(s) 1 differ from rank 0's (first in 2.bias)" in errors["diverged"]
        )  # a 1e-7 difference is caught, and placed
    # Rank 1 fails alone (unreadable data): the launch ends (no hang until the timeout) and fails.
    assert proc.returncode != 0
    assert "toy data unreadable on rank 1" in proc.stderr
    assert load(out / "crash" / "checkpoint.pt")["step"] == 2  # the failure at step 3 wrote nothing more


def test_ranks_see_disjoint_samples_that_together_make_the_single_process_batch(synthetic_store):
    """Sharding at the sampler and task level, without processes."""
    from climate_optics.io.windows import ZarrWindowSampler
    from climate_optics.training.forecast_task import ForecastTask

    def sampler(shard):
        return ZarrWindowSampler(
            synthetic_store, ["2m_temperature"], starts=np.arange(200), window=(8, 8), seed=5, shard=shard
        )

    one, rank0, rank1 = sampler((0, 1)), sampler((0, 2)), sampler((1, 2))
    for step in (0, 3, 40):  # 40 * 8 samples crosses into the second epoch
        t0, t1, both = rank0.sample_indices(step, 4), rank1.sample_indices(step, 4), one.sample_indices(step, 8)
        assert not set(t0[0]) & set(t1[0])  # different times within an epoch
        for a, b, c in zip(t0, t1, both):
            assert np.array_equal(np.concatenate([a, b]), c)
    a, b = (next(rank.batches(4, start_step=3))["fields"] for rank in (rank0, rank1))
    assert np.array_equal(np.concatenate([a, b]), next(one.batches(8, start_step=3))["fields"])
    with pytest.raises(ValueError, match="shard"):
        sampler((2, 2))

    task = ForecastTask(synthetic_store, preset="tiny", train_lead_steps=(1, 2))  # leads are drawn per sample too
    rng = lambda: np.random.default_rng([0, 0])  # noqa: E731 - the loop gives every rank the same seed
    halves = [next(task.batches(rng(), 2, start_step=1, shard=(r, 2))) for r in (0, 1)]
    whole = next(task.batches(rng(), 4, start_step=1))
    for key in ("x", "y", "lead"):
        assert torch.equal(torch.cat([h[key] for h in halves]), whole[key])
    assert not torch.equal(halves[0]["x"], halves[1]["x"])


def test_cli_under_torchrun_matches_one_process_on_the_union_batch(synthetic_store, tmp_path):
    """The real CLI, 2 ranks of batch 2 in DFA mode == one process of batch 4; rank 0 alone writes."""
    from climate_optics.training.forecast_task import ForecastTask
    from climate_optics.training.rollout_task import with_rollout_tail

    args = ["--data", str(synthetic_store), "--mode", "dfa", "--preset", "tiny", "--steps", "3"]
    proc = torchrun("-m", "flows.cli", "train", "forecast", *args, "--batch-size", "2", "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1 and summaries[0]["steps"] == 3  # one summary line, from rank 0
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt", "metrics.jsonl"]
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if line["kind"] == "train"] == [1, 2, 3]  # no rank raced rank 0
    state = load(tmp_path / "run" / "checkpoint.pt")
    assert state["world_size"] == 2 and state["train_config"]["batch_size"] == 2

    config = TrainConfig.for_steps(
        3,
        batch_size=4,
        lr=1e-3,
        seed=0,
        mode="dfa",
        projector="structured",
        device="cpu",
        warmup=None,
        checkpoint_every=None,
        val_every=None,
    )
    task = ForecastTask(synthetic_store, preset="tiny", seed=0, train_lead_steps=(1,))
    task = with_rollout_tail(task, 3, seed=0)  # the command line's default: the last step trains rollouts
    train(task, config, tmp_path / "single")
    assert_same(task.model.state_dict(), state["model"], atol=1e-5)


if __name__ == "__main__":
    toy_worker(Path(sys.argv[1]))
