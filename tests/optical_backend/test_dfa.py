"""The DFA engine's update rule, modes, safety checks and persistence, on tiny models."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch.nn import functional as F

from optical_backend import DFA, NonFiniteError, OpticalConfigError
from optical_backend.projector import ProjectorStats
from optical_backend.toy_models import MLP, TinyViT, ViTBlock, teacher_regression

POINTS = ["layers.1", "layers.3"]  # the two Tanh outputs of MLP(4, (6, 5), 3)


def _mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(4, (6, 5), 3)


def _batch(n: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=gen), torch.randn(n, 3, generator=gen)


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def _assert_grads_close(a: dict, b: dict, **tol) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=lambda m, name=name: f"{name}: {m}", **tol)


@pytest.mark.parametrize("feedback", ["split", "shared"])
def test_dfa_update_equals_hand_computed_update_two_ways(feedback):
    model = _mlp()
    x, y = _batch()
    dfa = DFA(model, POINTS, projector="dense", feedback=feedback, seed=3)
    dfa.backward(F.mse_loss(model(x), y))
    got = _grads(model)

    # the pieces by hand: error, one projection, normalised split, local derivatives
    w0, b0 = model.layers[0].weight.detach(), model.layers[0].bias.detach()
    w2, b2 = model.layers[2].weight.detach(), model.layers[2].bias.detach()
    wh, bh = model.head.weight.detach(), model.head.bias.detach()
    h1 = torch.tanh(x @ w0.T + b0)  # (B, 6)
    h2 = torch.tanh(h1 @ w2.T + b2)  # (B, 5)
    y_hat = h2 @ wh.T + bh  # (B, 3)
    e = 2.0 * (y_hat - y) / y.numel()  # dMSE/dy_hat
    matrix = dfa.projector.matrix  # (3, n_out), entries N(0, 1/n_out)
    n_out = 11 if feedback == "split" else 6
    assert tuple(matrix.shape) == (3, n_out)
    projected = e @ matrix  # (B, n_out)
    s1 = projected[:, :6] * math.sqrt(n_out / 6)
    s2 = (projected[:, 6:11] if feedback == "split" else projected[:, :5]) * math.sqrt(n_out / 5)
    d1 = s1 * (1 - h1**2)  # through tanh'
    d2 = s2 * (1 - h2**2)
    by_hand = {
        "layers.0.weight": d1.T @ x,
        "layers.0.bias": d1.sum(0),
        "layers.2.weight": d2.T @ h1,
        "layers.2.bias": d2.sum(0),
        "head.weight": e.T @ h2,
        "head.bias": e.sum(0),  # the head gets the true gradient
    }
    _assert_grads_close(got, by_hand, rtol=1e-5, atol=1e-7)

    # second way: autograd on an explicitly detached copy with the signals injected
    ref = copy.deepcopy(model)
    ref.zero_grad(set_to_none=True)
    a1 = ref.layers[1](ref.layers[0](x))
    a2 = ref.layers[3](ref.layers[2](a1.detach()))
    out = ref.head(a2.detach())
    torch.autograd.backward([F.mse_loss(out, y), a1, a2], [None, s1, s2])
    _assert_grads_close(got, _grads(ref), rtol=1e-5, atol=1e-7)


def test_backprop_mode_equals_loss_backward():
    model = _mlp()
    ref = copy.deepcopy(model)
    x, y = _batch()
    DFA(model, POINTS, mode="backprop").backward(F.mse_loss(model(x), y))
    F.mse_loss(ref(x), y).backward()
    _assert_grads_close(_grads(model), _grads(ref), rtol=0, atol=0)


def _train_step(model, dfa, opt, x, y) -> float:
    """The one training step every mode shares."""
    opt.zero_grad(set_to_none=True)
    loss = F.mse_loss(model(x), y)
    dfa.backward(loss)
    opt.step()
    return float(loss.detach())


def test_mode_switch_runs_the_same_code():
    from optical_backend.opu import OPUConfig

    x, y = _batch()
    head_grads, hidden_grads = {}, {}
    for mode in ("backprop", "dfa", "optical"):
        model = _mlp()
        dfa = DFA(model, POINTS, mode=mode, projector="dense", opu_config=OPUConfig.ideal())
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        opt.zero_grad(set_to_none=True)
        dfa.backward(F.mse_loss(model(x), y))
        head_grads[mode] = model.head.weight.grad.clone()
        hidden_grads[mode] = model.layers[0].weight.grad.clone()
        opt.step()
        assert math.isfinite(_train_step(model, dfa, opt, x, y))
    # the head receives the true gradient in every mode; hidden layers do not under DFA
    torch.testing.assert_close(head_grads["dfa"], head_grads["backprop"])
    torch.testing.assert_close(head_grads["optical"], head_grads["backprop"])
    assert not torch.allclose(hidden_grads["dfa"], hidden_grads["backprop"])
    assert not torch.allclose(hidden_grads["optical"], hidden_grads["backprop"])


@pytest.mark.parametrize("memory", ["standard", "lean"])
def test_non_finite_error_raises_before_any_gradient(memory):
    model = _mlp()
    x, y = _batch()
    y[0, 0] = float("nan")
    dfa = DFA(model, POINTS, projector="dense", memory=memory)
    with pytest.raises(NonFiniteError, match="non-finite"):
        dfa.backward(F.mse_loss(model(x), y))
    assert all(p.grad is None for p in model.parameters())
    y[0, 0] = 0.0  # the engine stays usable
    dfa.backward(F.mse_loss(model(x), y))
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_gradient_accumulation_sums_micro_batch_updates():
    x, y = _batch(16)
    model = _mlp()
    dfa = DFA(model, POINTS, projector="dense")
    separate = []
    for part in (slice(0, 8), slice(8, 16)):
        model.zero_grad(set_to_none=True)
        dfa.backward(F.mse_loss(model(x[part]), y[part]))
        separate.append(_grads(model))
    model.zero_grad(set_to_none=True)
    for part in (slice(0, 8), slice(8, 16)):  # accumulate, then one step
        dfa.backward(F.mse_loss(model(x[part]), y[part]))
    summed = {k: separate[0][k] + separate[1][k] for k in separate[0]}
    _assert_grads_close(_grads(model), summed, rtol=1e-5, atol=1e-7)
    before = model.layers[0].weight.detach().clone()
    torch.optim.AdamW(model.parameters(), lr=1e-2).step()
    assert not torch.equal(before, model.layers[0].weight)
    assert dfa.stats.backward_calls == 4 and dfa.stats.samples == 32


def test_state_dict_round_trip_rebuilds_the_same_feedback():
    x, y = _batch()
    model = _mlp()
    twin = copy.deepcopy(model)
    dfa = DFA(model, POINTS, projector="dense", seed=11)
    dfa.backward(F.mse_loss(model(x), y))
    state = json.loads(json.dumps(dfa.state_dict()))  # JSON-able, no matrix inside
    assert state["projector_state"]["seed"] == 11 and "matrix" not in json.dumps(state)
    restored = DFA(twin, POINTS, projector="dense", seed=0)
    restored.load_state_dict(state)
    restored.backward(F.mse_loss(twin(x), y))
    _assert_grads_close(_grads(model), _grads(twin), rtol=0, atol=0)
    other = DFA(copy.deepcopy(model), ["layers.1"], projector="dense")
    with pytest.raises(OpticalConfigError, match="feedback points"):
        other.load_state_dict(state)


def _vit_and_batch(dropout: float = 0.0):
    torch.manual_seed(0)
    model = TinyViT(depth=3, dim=16, heads=2, dropout=dropout)
    torch.nn.init.normal_(model.head.weight, std=0.1)  # a non-zero head: signals reach every block
    x, y = teacher_regression(8, kind="image", seed=2)
    return model, x, y


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_lean_mode_makes_the_standard_update(dropout):
    grads = {}
    for memory, dtype in (("standard", None), ("lean", torch.float32), ("lean", None)):
        model, x, y = _vit_and_batch(dropout)
        dfa = DFA(model, [ViTBlock], projector="dense", memory=memory, error="token", signal_dtype=dtype)
        torch.manual_seed(5)  # same dropout masks in both modes (the replay restores them)
        dfa.backward(F.mse_loss(model(x), y))
        grads[(memory, dtype)] = _grads(model)
    exact = grads[("lean", torch.float32)]
    _assert_grads_close(exact, grads[("standard", None)], rtol=1e-5, atol=1e-7)
    _assert_grads_close(grads[("lean", None)], grads[("standard", None)], rtol=2e-2, atol=1e-4)  # bfloat16 signals


def test_lean_mode_keeps_no_block_activations():
    model, x, y = _vit_and_batch()
    seen = []
    model.blocks[1].mlp.register_forward_hook(lambda m, a, out: seen.append(out.requires_grad))
    dfa = DFA(model, "blocks.*", projector="dense", memory="lean", error="token")
    out = model(x)
    assert seen == [False]  # no graph (so no saved activations) inside the blocks ...
    assert out.requires_grad  # ... only the head builds one
    dfa.backward(F.mse_loss(out, y))
    assert seen == [False, True]  # the replay: block by block with autograd on
    assert torch.is_grad_enabled()
    assert all(p.grad is not None for p in model.parameters())
    with torch.no_grad():  # evaluation passes are left alone
        model(x)
    assert len(seen) == 3


def test_alignment_restores_gradients_and_is_one_for_the_true_gradient():
    model = _mlp()
    x, y = _batch()
    dfa = DFA(model, POINTS, projector="dense")
    dfa.backward(F.mse_loss(model(x), y))
    before = _grads(model)
    calls = dfa.projector.stats.calls
    cosines = dfa.alignment(x, y, F.mse_loss)
    assert set(cosines) == set(POINTS) and all(-1.0 <= c <= 1.0 for c in cosines.values())
    _assert_grads_close(_grads(model), before, rtol=0, atol=0)
    assert dfa.projector.stats.calls == calls and dfa.stats.backward_calls == 1


def test_autocast_bfloat16_on_cpu():
    model, x, y = _vit_and_batch()
    dfa = DFA(model, [ViTBlock], projector="dense", error="token")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        loss = F.mse_loss(out.float(), y)
    assert out.dtype == torch.bfloat16
    dfa.backward(loss)
    for p in model.parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()


def test_feedback_point_selection_and_errors():
    model = TinyViT(depth=2, dim=16, heads=2)
    assert [p.name for p in DFA(model, "blocks.*", projector="dense").points] == ["blocks.0", "blocks.1"]
    assert [p.name for p in DFA(model, [ViTBlock], projector="dense").points] == ["blocks.0", "blocks.1"]
    with pytest.raises(OpticalConfigError, match="matches no sub-module"):
        DFA(model, ["encoder.*"])
    with pytest.raises(OpticalConfigError, match="must not nest"):
        DFA(model, ["blocks.0", "blocks.0.mlp"])
    with pytest.raises(OpticalConfigError, match="mode"):
        DFA(model, "blocks.*", mode="hebbian")
    dfa = DFA(model, "blocks.*", projector="dense")
    with pytest.raises(OpticalConfigError, match="no training forward pass"):
        dfa.backward(torch.zeros((), requires_grad=True))


def test_training_costs_report_measured_simulated_and_estimated_figures():
    from optical_backend.dfa_accounting import count_forward_flops, training_costs

    model = _mlp()
    x, y = _batch()
    flops = count_forward_flops(model, x)
    assert flops == 2 * 8 * (4 * 6 + 6 * 5 + 5 * 3)  # three matmuls
    dfa = DFA(model, POINTS, mode="optical")
    for _ in range(3):
        dfa.backward(F.mse_loss(model(x), y))
    costs = training_costs(dfa, forward_flops_per_step=flops)
    assert costs["steps"] == 3 and costs["vectors_projected"] == 24
    assert costs["simulated_optical_s"] > 0 and costs["simulated_optical_j"] > 0
    assert costs["backprop_flops"] == 3 * 3 * flops
    assert costs["breakeven_n_out"] > costs["projection_size"][1] and costs["optical_pays_off"] is False


class _IdentityProjector(torch.nn.Module):
    """A feedback 'matrix' equal to the identity: DFA's signal is then the true output error."""

    n_in = n_out = 3

    def __init__(self):
        super().__init__()
        self.stats = ProjectorStats()

    def forward(self, x):
        return x


def test_alignment_is_one_where_the_feedback_is_the_true_gradient():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3), torch.nn.Identity())
    x, y = _batch()
    dfa = DFA(model, ["3"], projector="dense")  # the last point's output is the prediction itself
    dfa._projector = _IdentityProjector()
    cosines = dfa.alignment(x, y, F.mse_loss)
    assert cosines["3"] == pytest.approx(1.0, abs=1e-9)
    dfa_random = DFA(_mlp(), POINTS, projector="dense", seed=5)
    assert all(abs(c) < 0.999 for c in dfa_random.alignment(x, y, F.mse_loss).values())


class _TwoScaleNet(torch.nn.Module):
    """Conv blocks at full and half resolution, a conv output: the layout of the downscaler's UNet."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.blocks = torch.nn.ModuleList(
            [torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.Conv2d(4, 6, 3, stride=2, padding=1)]
        )
        self.out = torch.nn.Conv2d(4 + 6, 3, 1)

    def forward(self, x):
        h0 = torch.tanh(self.blocks[0](self.stem(x)))  # (B, 4, H, W)
        h1 = torch.tanh(self.blocks[1](h0))  # (B, 6, H/2, W/2)
        return self.out(torch.cat([h0, F.interpolate(h1, scale_factor=2)], dim=1))  # (B, 3, H, W)


def test_pixel_error_feeds_each_place_back_to_its_own_place():
    torch.manual_seed(0)
    model = _TwoScaleNet()
    x, y = torch.randn(2, 2, 8, 8), torch.randn(2, 3, 8, 8)
    dfa = DFA(model, ["blocks.0", "blocks.1"], projector="dense", error="pixel")
    dfa.backward(F.mse_loss(model(x), y))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert (dfa.projector.n_in, dfa.projector.n_out) == (3, 6)  # one pixel's error -> the widest point's channels
    shapes = {
        "blocks.0": (torch.Size([2, 4, 8, 8]), torch.float32),
        "blocks.1": (torch.Size([2, 6, 4, 4]), torch.float32),
    }
    error = torch.randn(2, 3, 8, 8)
    base = dfa._signals(error, shapes)
    poked = error.clone()
    poked[1, :, 5, 2] += 1.0
    moved = dfa._signals(poked, shapes)
    changed0 = (moved["blocks.0"] - base["blocks.0"]).abs().sum(1)  # (B, 8, 8)
    changed1 = (moved["blocks.1"] - base["blocks.1"]).abs().sum(1)  # (B, 4, 4)
    assert changed0.nonzero().tolist() == [[1, 5, 2]]  # only the poked place
    assert changed1.nonzero().tolist() == [[1, 2, 1]]  # only the coarse cell holding it
    with pytest.raises(OpticalConfigError, match="field-shaped"):
        dfa._signals(error, {**shapes, "blocks.1": (torch.Size([2, 6, 3, 3]), torch.float32)})


def test_shared_layout_keeps_one_signal_for_equal_points():
    model, x, y = _vit_and_batch()
    dfa = DFA(model, [ViTBlock], projector="dense", error="token")
    out = model(x)
    record = dfa._record
    signals = dfa._signals(torch.autograd.grad(F.mse_loss(out, y), record.y_hat)[0], record.shapes)
    assert len(signals) >= 2 and len({s.data_ptr() for s in signals.values()}) == 1  # one tensor, not a copy per block
    split = DFA(_mlp(), POINTS, projector="dense", feedback="split")
    xm, ym = _batch()
    out_m = split.model(xm)
    rec = split._record
    parts = split._signals(torch.autograd.grad(F.mse_loss(out_m, ym), rec.y_hat)[0], rec.shapes)
    assert len({s.data_ptr() for s in parts.values()}) == len(POINTS)


@pytest.mark.parametrize("memory", ["standard", "lean"])
def test_non_finite_signal_writes_no_gradient_in_either_memory_mode(memory):
    model, x, y = _vit_and_batch()
    dfa = DFA(model, [ViTBlock], projector="dense", error="token", memory=memory)
    dfa.scale = float("inf")  # a finite error, a non-finite signal
    with pytest.raises(NonFiniteError, match="signal"):
        dfa.backward(F.mse_loss(model(x), y))
    assert all(p.grad is None for p in model.parameters())  # the head's included
