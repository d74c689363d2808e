"""How a DFA run starts its output layer and trains it: the feedback-aligned convolution of a
field model (per-pixel error) and the output layer's own learning rate."""

import pytest
import torch
from torch import nn

from climate_optics.errors import UsageInputError
from climate_optics.models.unet import FieldUNet
from climate_optics.training.engines import align_head, aligns_head, make_engine, output_layer, param_groups
from climate_optics.training.task import TrainConfig
from optical_backend.dfa_init import effective_map

WIDTH = 8  # the UNet's full-resolution width: blocks of 8, 16, 16, 8, 8 channels


class Wrapped(nn.Module):
    """A UNet inside a model, as the downscaler holds it (points ``net.blocks.i``)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = FieldUNet(3, 2, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _gradient_at_last_block(net: FieldUNet, x: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
    """dL/d(blocks.4 output) (B, w, H, W) for L = sum(output * error), by back-propagation."""
    plain = FieldUNet(3, 2, WIDTH)
    plain.load_state_dict(net.state_dict())
    captured = {}
    plain.blocks[4].register_forward_hook(lambda module, inputs, output: captured.update(u=output))
    output = plain(x)  # (B, 2, H, W)
    (gradient,) = torch.autograd.grad((output * error).sum(), captured["u"])
    return gradient


@pytest.mark.parametrize("mode", ["dfa", "optical"])
def test_a_pixel_error_run_starts_the_output_convolution_as_the_feedback_map(mode):
    torch.manual_seed(0)
    model = Wrapped()
    config = TrainConfig(mode=mode)
    points = [f"net.blocks.{i}" for i in range(5)]
    engine = make_engine(model, points, config, error="pixel")
    assert aligns_head(config, engine, model)  # the default ("auto") for a per-pixel error
    x, error = torch.randn(2, 3, 8, 16), torch.randn(2, 2, 8, 16)
    assert float(_gradient_at_last_block(model.net, x, error).abs().max()) == 0.0  # zero-initialised output
    align_head(engine, model, None)
    weight = model.net.out.weight.detach()  # (2, 8, 3, 3)
    feedback_map = effective_map(engine.projector)  # (2, 16): a pixel's error -> the widest point's signal
    assert feedback_map.shape == (2, 2 * WIDTH)
    centre = weight[:, :, 1, 1]
    cosine = torch.nn.functional.cosine_similarity(centre.flatten(), feedback_map[:, :WIDTH].flatten(), dim=0)
    off_centre = weight.clone()
    off_centre[:, :, 1, 1] = 0
    assert cosine > 0.999 and float(off_centre.abs().max()) == 0.0
    # blocks.4 (8 channels) receives error @ M[:, :8]; back-propagation now agrees with it (the
    # norm and the activation in between only rescale it per channel)
    signal = torch.einsum("bchw,cd->bdhw", error, feedback_map[:, :WIDTH])  # (B, 8, H, W)
    gradient = _gradient_at_last_block(model.net, x, error)
    assert torch.nn.functional.cosine_similarity(signal.flatten(), gradient.flatten(), dim=0) > 0.6
    engine.remove_hooks()


def test_the_output_layer_can_learn_at_its_own_rate():
    wrapped = Wrapped()
    points = [f"net.blocks.{i}" for i in range(5)]
    assert output_layer(wrapped, None, points, "pixel") is wrapped.net.out  # not the last linear layer
    model = wrapped.net
    head = model.out
    assert len(param_groups(model, TrainConfig(), head)) == 2  # matrices with decay, the rest without
    groups = param_groups(model, TrainConfig(lr=1e-3, head_lr_scale=0.3), head)
    in_head = [g for g in groups if "lr" in g]
    assert {id(p) for g in in_head for p in g["params"]} == {id(model.out.weight), id(model.out.bias)}
    assert all(g["lr"] == pytest.approx(3e-4) for g in in_head)
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in model.parameters())
    with pytest.raises(UsageInputError, match="head_lr_scale"):
        TrainConfig(head_lr_scale=0)


@pytest.mark.usefixtures("torch_single_thread")
def test_signals_through_the_final_norm_start_as_the_true_gradient(synthetic_store):
    """With the feedback-aligned head, a signal passed back through the final LayerNorm is the
    last block's true gradient; without it, the norm's Jacobian is missing (alignment ~0.5)."""
    import numpy as np

    from climate_optics.training.forecast_task import ForecastTask

    alignments = {}
    for through_norm in ("off", "vjp", "on"):
        task = ForecastTask(synthetic_store, preset="tiny", seed=0)
        config = TrainConfig(mode="dfa", feedback_norm=through_norm)  # "auto" (the default) is "on" here
        engine = make_engine(
            task.model,
            task.feedback_points,
            config,
            output=task.feedback_output,
            error=task.feedback_error,
            norm=task.feedback_norm,
        )
        align_head(engine, task.model, task.feedback_output)
        batch = next(iter(task.batches(np.random.default_rng(0), 4)))
        alignments[through_norm] = engine.alignment_of(lambda task=task, batch=batch: task.loss(task.model, batch))
        engine.remove_hooks()
    last = task.feedback_points[-1]
    assert alignments["vjp"][last] > 0.99 and alignments["off"][last] < 0.9  # vjp: the exact Jacobian
    assert all(alignments["vjp"][p] > alignments["off"][p] for p in task.feedback_points)
    assert all(alignments["on"][p] > alignments["off"][p] for p in task.feedback_points)  # rescaled per token
    auto = make_engine(task.model, task.feedback_points, TrainConfig(mode="dfa"), error="token", norm="norm")
    assert auto.norm_name == "norm" and auto.norm_variant == "direction"  # the default: through the norm
    auto.remove_hooks()
    quiet = make_engine(task.model, task.feedback_points, TrainConfig(mode="dfa"), error="token")  # names none
    assert quiet.norm_name is None
    quiet.remove_hooks()
    with pytest.raises(UsageInputError, match="feedback_norm"):
        make_engine(task.model, task.feedback_points, TrainConfig(mode="dfa", feedback_norm="on"), error="token")
    with pytest.raises(UsageInputError, match="feedback_norm"):
        TrainConfig(feedback_norm="yes")


@pytest.mark.usefixtures("torch_single_thread")
def test_the_command_line_sets_the_feedback_norm(synthetic_store, tmp_path, run_cli):
    from climate_optics.io.checkpoints import LATEST, load_checkpoint

    args = ["train", "forecast", "--data", synthetic_store, "--mode", "dfa", "--steps", "2", "--preset", "tiny"]
    for choice in ("auto", "off"):
        status, _, err = run_cli(*args, "--out", tmp_path / choice, *(["--feedback-norm", choice] * (choice != "auto")))
        assert status == 0, err
        state = load_checkpoint(tmp_path / choice / LATEST)
        assert state["train_config"]["feedback_norm"] == choice
    status, _, err = run_cli(*args, "--out", tmp_path / "hybrid", "--backprop-blocks", "1")
    assert status == 0, err
    state = load_checkpoint(tmp_path / "hybrid" / LATEST)
    assert state["train_config"]["backprop_blocks"] == 1
    assert state["engine"]["feedback_points"] == ["blocks.0", "blocks.1"]  # the tiny preset's last block: backprop
    status, _, err = run_cli(*args, "--out", tmp_path / "bad", "--feedback-norm", "yes")
    assert status == 2 and "feedback-norm" in err and not (tmp_path / "bad").exists()


def test_lean_memory_trains_without_the_norm_unless_asked():
    model = FieldUNet(3, 2, WIDTH)
    points = [f"blocks.{i}" for i in range(5)]
    standard = make_engine(model, points, TrainConfig(mode="dfa"), error="pixel", norm="out_norm")
    assert standard.norm_name == "out_norm" and standard.norm_variant == "direction"  # a GroupNorm: the exact product
    standard.remove_hooks()
    lean = make_engine(model, points, TrainConfig(mode="dfa", memory="lean"), error="pixel", norm="out_norm")
    assert lean.norm_name is None  # auto: the lean mode replays the blocks, without the norm
    lean.remove_hooks()
    with pytest.raises(UsageInputError, match="memory standard"):
        make_engine(
            model, points, TrainConfig(mode="dfa", memory="lean", feedback_norm="on"), error="pixel", norm="out_norm"
        )
