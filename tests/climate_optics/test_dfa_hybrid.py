"""The DFA hybrid (``TrainConfig.backprop_blocks``): the last blocks train by back-propagation with
the output layer, the blocks below them by DFA."""

import copy

import pytest
import torch

from climate_optics.errors import UsageInputError
from climate_optics.models.forecaster import Forecaster, ForecasterConfig, feedback_points
from climate_optics.training.engines import aligns_head, make_engine
from climate_optics.training.task import TrainConfig

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _forecaster() -> Forecaster:
    torch.manual_seed(0)
    config = ForecasterConfig(channels=("geopotential@500", "2m_temperature"), grid=(8, 16), dim=32, depth=3, heads=2)
    return Forecaster(config)


def test_the_last_blocks_get_back_propagation_and_the_rest_dfa():
    model = _forecaster()
    plain = copy.deepcopy(model)
    x, lead, target = torch.randn(2, 2, 8, 16), torch.full((2,), 6.0), torch.randn(2, 2, 8, 16)
    loss = ((plain(x, lead) - target) ** 2).mean()
    loss.backward()  # back-propagation's gradients, for comparison

    config = TrainConfig(mode="dfa", backprop_blocks=1)
    output, error = model.feedback_error()
    engine = make_engine(model, feedback_points(model), config, output=output, error=error, norm="norm")
    assert [p.name for p in engine.points] == ["blocks.0", "blocks.1"] and engine.norm_name is None
    assert not aligns_head(config, engine, model)  # a back-propagated block stands before the output layer
    engine.backward(((model(x, lead) - target) ** 2).mean())
    for name, parameter in model.named_parameters():
        true = dict(plain.named_parameters())[name].grad
        if name.startswith(("blocks.2.", "head.", "norm.")):
            assert torch.allclose(parameter.grad, true, atol=1e-6), name  # back-propagation, exactly
    assert not torch.allclose(model.blocks[0].mlp[0].weight.grad, plain.blocks[0].mlp[0].weight.grad, atol=1e-4)
    engine.remove_hooks()


def test_a_hybrid_leaves_dfa_at_least_one_block_and_refuses_what_cannot_apply():
    model = _forecaster()
    points = feedback_points(model)
    with pytest.raises(UsageInputError, match="leave at least one"):
        make_engine(model, points, TrainConfig(mode="dfa", backprop_blocks=3), error="token", norm="norm")
    with pytest.raises(UsageInputError, match="feedback_norm on"):
        make_engine(
            model, points, TrainConfig(mode="dfa", backprop_blocks=1, feedback_norm="on"), error="token", norm="norm"
        )
    with pytest.raises(UsageInputError, match="head_init='feedback'"):
        make_engine(
            model, points, TrainConfig(mode="dfa", backprop_blocks=1, head_init="feedback"), error="token", norm="norm"
        )
    with pytest.raises(UsageInputError, match="backprop_blocks must be >= 0"):
        TrainConfig(backprop_blocks=-1)
    engine = make_engine(model, points, TrainConfig(mode="backprop", backprop_blocks=5), error="token")
    assert engine.mode == "backprop"  # back-propagation everywhere anyway
    engine.remove_hooks()
