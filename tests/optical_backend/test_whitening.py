"""Whitened feedback: the projection made orthogonal (times its rms gain) by a small digital matrix."""

import pytest
import torch

from optical_backend import DFA, OPUConfig, make_projector
from optical_backend.dfa_init import effective_map
from optical_backend.whitening import MAX_GAIN, FeedbackWhitening, whitening_for


def _condition(m: torch.Tensor) -> float:
    s = torch.linalg.svdvals(m.double())
    return float(s.max() / s.min())


@pytest.mark.parametrize("n_in, n_out", [(160, 96), (24, 200)], ids=["after (n_in > n_out)", "before"])
def test_whitened_map_is_orthogonal_with_the_raw_maps_rms_gain(n_in, n_out):
    raw = effective_map(make_projector("optical", n_in, n_out, seed=1, config=OPUConfig()))  # (n_in, n_out)
    whitening = FeedbackWhitening(raw)
    white = whitening.of_map(raw)
    assert _condition(raw) > 2  # the anchor read-out's Rayleigh columns make it ill-conditioned
    assert _condition(white) == pytest.approx(whitening.condition_after, rel=1e-3)
    assert _condition(white) < min(2.0, _condition(raw) / 1.25)  # flat, up to the gain cap's floor
    dense = effective_map(make_projector("dense", n_in, n_out, seed=1))
    assert _condition(FeedbackWhitening(dense).of_map(dense)) < 1.01  # no direction near the cap
    assert float(torch.linalg.svdvals(white).square().mean()) == pytest.approx(
        float(torch.linalg.svdvals(raw).square().mean()), rel=0.2
    )
    assert (whitening.before is None) == (n_in > n_out)  # the matrix sits on the smaller side


def test_near_null_directions_are_amplified_at_most_max_gain():
    raw = torch.diag(torch.tensor([1.0, 1.0, 1.0, 1e-6]))  # (4, 4), one direction almost lost
    whitening = FeedbackWhitening(raw)
    rms = float(torch.tensor([1.0, 1.0, 1.0, 1e-6]).square().mean().sqrt())
    assert float(whitening.before.abs().max()) == pytest.approx(MAX_GAIN, rel=1e-4)
    assert float(whitening.before[0, 0]) == pytest.approx(rms, rel=1e-4)


def test_the_projection_goes_through_the_whitening_and_the_device_counts_the_measurement():
    dense = make_projector("dense", 40, 30, seed=0)
    whitening = whitening_for(dense)
    x = torch.randn(5, 40)
    assert torch.allclose(whitening.project(dense, x), x @ whitening.of_map(effective_map(dense)), atol=1e-4)
    optical = make_projector("optical", 40, 30, seed=0, config=OPUConfig())
    before = optical.stats.frames
    whitening_for(optical)
    assert optical.stats.frames - before == 40 * optical.opu.frames_per_vector * len(optical.passes)
    assert optical.stats.device_time_s > 0


def test_dfa_signals_follow_the_whitened_map():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.Tanh(), torch.nn.Linear(32, 6))
    dfa = DFA(model, ["0"], projector="dense", whiten=True, seed=2)
    x = torch.randn(16, 12)
    dfa.backward(torch.nn.functional.mse_loss(model(x), torch.zeros(16, 6)))
    feedback_map = dfa.feedback_map(6, 32, torch.device("cpu"))  # (6, 32)
    assert _condition(feedback_map) < 1.01 and _condition(effective_map(dfa.projector)) > 1.5
    dfa.remove_hooks()
