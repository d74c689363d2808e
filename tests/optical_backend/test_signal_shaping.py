"""Signals passed back through the final norm: the norm's vector-Jacobian product at each point."""

import torch
from torch import nn

from optical_backend.signal_shaping import through_norm


def _vjp(norm: nn.Module, at: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
    at = at.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(norm(at), at, signal)
    return grad


def test_tokens_go_through_a_layernorm_and_other_widths_keep_their_signal():
    torch.manual_seed(0)
    norm = nn.LayerNorm(8)
    outputs = {"a": torch.randn(2, 5, 8) * 3 + 1, "b": torch.randn(2, 5, 8), "wide": torch.randn(2, 5, 16)}
    signals = {name: torch.randn_like(out) for name, out in outputs.items()}
    shaped = through_norm(norm, signals, outputs)
    for name in ("a", "b"):
        assert torch.allclose(shaped[name], _vjp(norm, outputs[name], signals[name]), atol=1e-6)
        assert float(shaped[name].mean(dim=-1).abs().max()) < 1e-5  # a LayerNorm ignores each token's mean
        radial = (shaped[name] * (outputs[name] - outputs[name].mean(-1, keepdim=True))).sum(-1)
        assert float(radial.abs().max()) < 1e-3  # ... and its length along itself
    assert torch.equal(shaped["wide"], signals["wide"])
    assert all(p.grad is None for p in norm.parameters())  # no parameter gradients
    direction = through_norm(norm, signals, outputs, "direction")
    lengths = direction["a"].norm(dim=-1) / signals["a"].norm(dim=-1)  # per token: the raw signal's length
    assert torch.allclose(lengths, torch.ones_like(lengths), atol=1e-4)
    cosine = torch.nn.functional.cosine_similarity(direction["a"], shaped["a"], dim=-1)
    assert float(cosine.min()) > 1 - 1e-5  # ... along the norm's exact product


def test_fields_go_through_a_groupnorm_and_the_variants():
    torch.manual_seed(1)
    norm = nn.GroupNorm(2, 4)
    outputs = {"enc": torch.randn(2, 4, 6, 8), "mid": torch.randn(2, 8, 3, 4), "dec": torch.randn(2, 4, 6, 8) * 2}
    signals = {name: torch.randn_like(out) for name, out in outputs.items()}
    shaped = through_norm(norm, signals, outputs)
    assert torch.allclose(shaped["dec"], _vjp(norm, outputs["dec"], signals["dec"]), atol=1e-6)
    assert torch.equal(shaped["mid"], signals["mid"])  # 8 channels: not the norm's width
    direction = through_norm(norm, signals, outputs, "direction")
    assert torch.allclose(direction["enc"], shaped["enc"])  # a GroupNorm's scale is per sample: the exact product
    last = through_norm(norm, signals, outputs, "last")
    assert torch.equal(last["enc"], signals["enc"]) and torch.allclose(last["dec"], shaped["dec"])
