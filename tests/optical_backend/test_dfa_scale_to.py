"""DFA's adaptive per-block feedback scale: each point's signal as large as its output (rms on the batch)."""

import pytest
import torch
from torch import nn

from optical_backend import DFA, OpticalConfigError


def signals_of(scale_to: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 5))
    with torch.no_grad():
        model[2].weight.mul_(7.0)  # the second point's output far larger than the first's
    outputs, signals = {}, {}

    def capture(name):
        def hook(module, args, y):  # registered before DFA's: sees the output that receives the signal
            outputs[name] = y.detach()
            y.register_hook(lambda g: signals.__setitem__(name, g.detach()))

        return hook

    for name in ("0", "2"):
        model.get_submodule(name).register_forward_hook(capture(name))
    dfa = DFA(model, ["0", "2"], mode="dfa", projector="dense", scale_to=scale_to, seed=1)
    x = torch.randn(64, 12)
    loss = nn.functional.mse_loss(model(x), torch.randn(64, 5))
    dfa.backward(loss)
    return outputs, signals


def test_output_scale_matches_each_points_output_and_keeps_the_direction():
    outputs, by_error = signals_of("error")
    _, by_output = signals_of("output")

    def rms(t):
        return t.pow(2).mean().sqrt()

    for name in ("0", "2"):
        torch.testing.assert_close(rms(by_output[name]), rms(outputs[name]), rtol=1e-5, atol=0)
        cosine = nn.functional.cosine_similarity(by_output[name].flatten(), by_error[name].flatten(), dim=0)
        assert cosine > 0.9999  # a positive multiple of the error-sized signal
    ratios = [float(rms(by_output[n]) / rms(by_error[n])) for n in ("0", "2")]
    assert ratios[1] > 2 * ratios[0]  # per block, not one factor for all


def test_output_scale_is_refused_in_lean_memory_and_for_unknown_names():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    with pytest.raises(OpticalConfigError, match="scale_to"):
        DFA(model, ["0"], scale_to="output", memory="lean")
    with pytest.raises(OpticalConfigError, match="scale_to"):
        DFA(model, ["0"], scale_to="outputs")
