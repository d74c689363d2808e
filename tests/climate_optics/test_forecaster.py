"""ViT blocks and the forecaster: shapes, presets, normalisation round trip, rollout."""

import pytest
import torch

from climate_optics.errors import UsageInputError
from climate_optics.evaluation.weights import lat_weights
from climate_optics.models.blocks import Block, VariablePatchEmbed, pad_to_multiple, sincos_pos_embed_2d, unpatchify
from climate_optics.models.forecaster import (
    Forecaster,
    ForecasterConfig,
    count_parameters,
    feedback_points,
    lat_weighted_mse,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def small(**kw):
    return ForecasterConfig(
        **{
            **dict(channels=("geopotential@500", "2m_temperature"), grid=(10, 20), patch=4, dim=32, depth=2, heads=2),
            **kw,
        }
    )


def test_sincos_embedding_is_distinct_per_patch():
    emb = sincos_pos_embed_2d(16, 3, 5)  # (15, 16)
    assert emb.shape == (15, 16)
    dist = torch.cdist(emb, emb) + torch.eye(15)
    assert dist.min() > 0.1  # no two patches share an embedding


def test_unpatchify_inverts_patch_layout():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)  # (B, C, H, W), p = 4
    tokens = x.reshape(2, 3, 2, 4, 3, 4).permute(0, 2, 4, 3, 5, 1).reshape(2, 6, 48)  # (B, N, p*p*C)
    assert torch.equal(unpatchify(tokens, 3, 4, 2, 3), x)


def test_patch_embed_and_conditioned_block_shapes():
    embed = VariablePatchEmbed(3, 4, 32, 4)
    assert embed(torch.randn(2, 3, 8, 12)).shape == (2, 6, 32)
    block = Block(32, 4, cond_dim=16)
    x = torch.randn(2, 6, 32)
    assert torch.equal(block(x, torch.randn(2, 16)), x)  # adaLN-Zero: identity at initialisation
    with pytest.raises(ValueError, match="conditioning"):
        block(x)


def test_padding_wraps_longitude():
    x = torch.arange(10.0).reshape(1, 1, 1, 10)
    padded, size = pad_to_multiple(x, 4)
    assert size == (1, 10) and padded.shape == (1, 1, 4, 12)
    assert padded[0, 0, 0, 10:].tolist() == [0.0, 1.0] and padded[0, 0, 3].tolist() == padded[0, 0, 0].tolist()


def test_presets_parameter_counts_on_meta_device():
    assert count_parameters(ForecasterConfig.from_preset("tiny")) < 1_000_000
    assert 80e6 <= count_parameters(ForecasterConfig.from_preset("base")) <= 130e6
    assert count_parameters(ForecasterConfig.from_preset("1b")) >= 1.0e9
    with pytest.raises(UsageInputError, match="preset"):
        ForecasterConfig.from_preset("huge")
    with pytest.raises(UsageInputError, match="dim"):
        small(dim=30)


def test_forward_returns_input_grid_and_feedback_points():
    model = Forecaster(small(static_channels=("land_sea_mask",)))
    out = model(torch.randn(3, 2, 10, 20), torch.tensor([6.0, 12.0, 24.0]), torch.randn(3, 1, 10, 20))
    assert out.shape == (3, 2, 10, 20)
    assert feedback_points(model) == ["blocks.0", "blocks.1"]
    modules = dict(model.named_modules())
    assert all(isinstance(modules[name], Block) for name in feedback_points(model))


def test_statistics_round_trip_and_rollout():
    torch.manual_seed(0)
    model = Forecaster(small()).eval()
    model.set_statistics([5e4, 280.0], [3e3, 10.0], [300.0, 1.0])
    state = torch.stack([torch.full((10, 20), 5.1e4), torch.full((10, 20), 285.0)])[None]  # (1, C, H, W) physical
    future = state + torch.tensor([600.0, 2.0]).view(1, 2, 1, 1)
    lead = torch.tensor([24.0])
    target = model.target(state, future, lead)
    assert torch.allclose(target, torch.tensor([1.0, 1.0]).view(1, 2, 1, 1))  # 600 / (300 * sqrt(4)), 2 / (1 * 2)
    assert torch.allclose(state + target * model.tendency_scale(lead), future)
    steps = model.rollout(state, [12, 6])
    by_hand = model.predict(model.predict(state, 6.0), 6.0)
    assert torch.allclose(steps[0], by_hand) and torch.allclose(steps[1], model.predict(state, 6.0))
    direct = model.rollout(state, [12], direct=True)[0]
    assert torch.allclose(direct, model.predict(state, 12.0))
    with pytest.raises(UsageInputError, match="multiples"):
        model.rollout(state, [9])


def test_history_inputs_and_rollout_carry_the_previous_state():
    torch.manual_seed(0)
    model = Forecaster(small(history=3)).eval()
    model.set_statistics([5e4, 280.0], [3e3, 10.0], [300.0, 2.0])
    states = torch.randn(4, 1, 2, 10, 20) * torch.tensor([300.0, 2.0]).view(1, 1, 2, 1, 1) + torch.tensor(
        [5e4, 280.0]
    ).view(1, 1, 2, 1, 1)
    t0, t1, t2, t3 = states.unbind(0)  # (1, C, H, W) each, 6 h apart, t3 the newest
    x = model.inputs(t3, torch.stack([t2, t1], dim=1))  # (1, C * 3, H, W)
    assert x.shape == (1, 6, 10, 20)
    assert torch.allclose(x[:, :2], model.normalise(t3))
    assert torch.allclose(x[:, 2:4], (t3 - t2) / torch.tensor([300.0, 2.0]).view(1, 2, 1, 1), atol=1e-5)
    assert torch.allclose(x[:, 4:], (t2 - t1) / torch.tensor([300.0, 2.0]).view(1, 2, 1, 1), atol=1e-5)
    with pytest.raises(UsageInputError, match="previous state"):
        model.rollout(t3, [6])
    past = torch.stack([t2, t1], dim=1)  # (1, 2, C, H, W)
    step1 = model.predict(t3, 6.0, previous=past)
    step2 = model.predict(step1, 6.0, previous=torch.stack([t3, t2], dim=1))
    rolled = model.rollout(t3, [12, 6], previous=past)
    assert torch.allclose(rolled[0], step2) and torch.allclose(rolled[1], step1)
    lead = torch.tensor([6.0])
    with torch.no_grad():  # the network sees the history
        assert not torch.allclose(model(model.inputs(t3, torch.stack([t0, t1], dim=1)), lead), model(x, lead))


def test_lat_weighted_mse_weights_equator_over_poles():
    w = torch.from_numpy(lat_weights([-80.0, 0.0, 80.0])).float()
    assert w.mean().item() == pytest.approx(1.0) and w[1] > w[0] == pytest.approx(w[2].item())
    pred, target = torch.zeros(1, 1, 3, 4), torch.zeros(1, 1, 3, 4)
    pole, equator = pred.clone(), pred.clone()
    pole[..., 0, :], equator[..., 1, :] = 1.0, 1.0
    assert lat_weighted_mse(equator, target, w) > lat_weighted_mse(pole, target, w) > 0


def test_the_pixel_skip_starts_at_zero_and_dfa_trains_it_by_its_true_gradient():
    from optical_backend.dfa import DFA

    torch.manual_seed(0)
    plain = Forecaster(small(static_channels=("land_sea_mask",), history=2))
    skip = Forecaster(small(static_channels=("land_sea_mask",), history=2, pixel_skip=True))
    assert skip.load_state_dict(plain.state_dict(), strict=False).missing_keys == ["skip.weight", "skip.bias"]
    x, static = torch.randn(3, 4, 10, 20), torch.randn(3, 1, 10, 20)  # (B, C * history, H, W), (B, S, H, W)
    lead, target = torch.full((3,), 6.0), torch.randn(3, 2, 10, 20)
    assert torch.equal(skip(x, lead, static), plain(x, lead, static))  # a zero map at the start

    with torch.no_grad():
        skip.skip.weight.normal_(std=0.1)  # a trained map: the error depends on it
    true = {}
    loss = ((skip(x, lead, static) - target) ** 2).mean()
    true["weight"], true["bias"] = torch.autograd.grad(loss, [skip.skip.weight, skip.skip.bias])
    output, error = skip.feedback_error()  # the per-token error of the forecaster's training
    dfa = DFA(skip, feedback_points=feedback_points(skip), mode="dfa", error=error, output=output)
    dfa.backward(((skip(x, lead, static) - target) ** 2).mean())
    assert torch.allclose(skip.skip.weight.grad, true["weight"], atol=1e-6)  # exact: after the last point
    assert torch.allclose(skip.skip.bias.grad, true["bias"], atol=1e-6)
    assert skip.blocks[0].mlp[0].weight.grad.abs().sum() > 0  # the blocks learn from the projected error
    dfa.remove_hooks()
