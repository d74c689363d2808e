"""Feedback-aligned initialisation: DFA's first signal is the true gradient at the output layer's input."""

import pytest
import torch
from torch import nn

from optical_backend import DFA, OpticalConfigError
from optical_backend.dfa_init import align_output_layer, last_linear


class TokenNet(nn.Module):
    """(B, T, 6) -> (B, T, 10): two residual blocks of width 16, a LayerNorm and a linear head."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(6, 16)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(16, 16), nn.Tanh()) for _ in range(2))
        self.norm = nn.LayerNorm(16)
        self.head = nn.Sequential(nn.Linear(16, 10))

    def forward(self, x):
        h = self.embed(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(self.norm(h))


def _signal_and_gradient(mode: str, aligned: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The DFA signal of the last block (B, T, 16) and back-propagation's gradient at the head's input."""
    torch.manual_seed(0)
    net = TokenNet()
    dfa = DFA(net, feedback_points=["blocks.*"], mode=mode, error="token", output="head", seed=3)
    if aligned:
        assert align_output_layer(dfa, last_linear(net.head)) == pytest.approx(1.0, abs=1e-5)
    x, y = torch.randn(4, 5, 6), torch.randn(4, 5, 10)
    captured = {}
    net.norm.register_forward_hook(lambda m, i, out: captured.setdefault("h", out))
    out = net(x)
    loss = (out - y).pow(2).mean()
    (gradient,) = torch.autograd.grad(loss, captured["h"], retain_graph=True)  # (B, T, 16)
    error = torch.autograd.grad(loss, out, retain_graph=True)[0]  # (B, T, 10)
    shapes = {name: (torch.Size([4, 5, 16]), torch.float32) for name in ("blocks.0", "blocks.1")}
    signal = dfa._signals(error, shapes)["blocks.1"]
    dfa.remove_hooks()
    return signal, gradient


@pytest.mark.parametrize("mode", ["dfa", "optical"])
def test_aligned_head_makes_the_signal_the_true_gradient(mode):
    signal, gradient = _signal_and_gradient(mode, aligned=True)
    cosine = nn.functional.cosine_similarity(signal.flatten(1), gradient.flatten(1), dim=-1)  # (B,)
    noise_floor = 0.5 if mode == "optical" else 0.99  # the optical signal carries the device's noise
    assert cosine.min() > noise_floor, cosine
    signal, gradient = _signal_and_gradient(mode, aligned=False)  # a random head: no relation
    cosine = nn.functional.cosine_similarity(signal.flatten(), gradient.flatten(), dim=0)
    assert abs(cosine) < 0.3, cosine


def test_weights_have_the_asked_spread_and_no_bias():
    net = TokenNet()
    dfa = DFA(net, feedback_points=["blocks.*"], mode="dfa", error="token", output="head")
    layer = last_linear(net.head)
    align_output_layer(dfa, layer, std=0.05)
    assert layer.weight.std().item() == pytest.approx(0.05, rel=1e-3)
    assert torch.count_nonzero(layer.bias) == 0
    assert (dfa.projector.n_in, dfa.projector.n_out) == (10, 16)  # the projector DFA will use from now on


@pytest.mark.parametrize("settings", [{"error": "pixel"}, {"feedback": "split"}])
def test_refused_where_the_signal_is_not_the_layer_input(settings):
    net = TokenNet()
    dfa = DFA(net, feedback_points=["blocks.*"], mode="dfa", output="head", **settings)
    with pytest.raises(OpticalConfigError, match="feedback-aligned init"):
        align_output_layer(dfa, last_linear(net.head))
