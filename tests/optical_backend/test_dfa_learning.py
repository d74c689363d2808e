"""DFA learns: a small MLP and a small ViT on a synthetic regression, standard and lean, digital and optical."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch.nn import functional as F

from optical_backend import DFA
from optical_backend.opu import OPUConfig
from optical_backend.toy_models import MLP, TinyViT, ViTBlock, teacher_regression

N_SAMPLES, BATCH = 512, 32
CASES = {  # model kind -> (steps, learning rate)
    "mlp": (200, 2e-3),
    "vit": (100, 2e-3),
}


@dataclass
class Run:
    first_loss: float  # full-data loss before training
    final_loss: float  # full-data loss after training
    alignment: dict[str, float]


# The default OPU everywhere: anchor read-out, camera noise and the dithered ternary DMD encoding
# with its residual pair (unbiased; tests/optical_backend/test_encoding_bias.py). The deterministic
# ternarisation lost the ViT's small per-token error components (final loss 12-25% above digital
# DFA); the default's figures over four seeds are in docs/results.md (Training).
OPTICAL = {"mlp": OPUConfig(), "vit": OPUConfig()}


def _train(kind: str, mode: str = "dfa", memory: str = "standard") -> Run:
    steps, lr = CASES[kind]
    torch.manual_seed(0)
    if kind == "mlp":
        x, y = teacher_regression(N_SAMPLES, kind="mlp")
        model = MLP(16, (64, 64), 4)
        dfa = DFA(
            model, ["layers.1", "layers.3"], mode=mode, memory=memory, projector="dense", opu_config=OPTICAL[kind]
        )
    else:
        x, y = teacher_regression(N_SAMPLES, kind="image")
        model = TinyViT(depth=3, dim=32, heads=4)
        dfa = DFA(
            model, [ViTBlock], mode=mode, memory=memory, projector="dense", error="token", opu_config=OPTICAL[kind]
        )
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    with torch.no_grad():
        first = float(F.mse_loss(model(x), y))
    order = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.randint(0, N_SAMPLES, (BATCH,), generator=order)
        opt.zero_grad(set_to_none=True)
        dfa.backward(F.mse_loss(model(x[idx]), y[idx]))
        opt.step()
    with torch.no_grad():
        final = float(F.mse_loss(model(x), y))
    return Run(first, final, dfa.alignment(x[:256], y[:256], F.mse_loss))


@pytest.fixture(scope="module")
def runs():
    cache: dict[tuple[str, str, str], Run] = {}

    def get(kind: str, mode: str = "dfa", memory: str = "standard") -> Run:
        key = (kind, mode, memory)
        if key not in cache:
            cache[key] = _train(*key)
        return cache[key]

    return get


@pytest.mark.parametrize("memory", ["standard", "lean"])
@pytest.mark.parametrize("kind", ["mlp", "vit"])
def test_dfa_halves_the_loss_with_positive_alignment(runs, kind, memory):
    run = runs(kind, "dfa", memory)
    assert run.final_loss <= 0.5 * run.first_loss, run
    assert run.alignment and all(c > 0 for c in run.alignment.values()), run.alignment


@pytest.mark.parametrize("kind", ["mlp", "vit"])
def test_optical_training_with_default_noise_matches_digital_dfa(runs, kind):
    optical, digital = runs(kind, "optical"), runs(kind, "dfa")
    assert optical.final_loss <= 1.10 * digital.final_loss, (optical, digital)
    assert all(c > 0 for c in optical.alignment.values()), optical.alignment
