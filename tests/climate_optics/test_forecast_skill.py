"""Skill on the embedded synthetic reanalysis: the tiny forecaster in all three training modes.

Thresholds from the issues: back-propagation Z500 RMSE at 24 h <= 0.7 x persistence and below
climatology; DFA and optical DFA below persistence and within 15% of back-propagation. Scores come from climate_optics.metrics
(latitude-weighted RMSE on held-out times, see climate_optics.evaluation.forecast_skill). The tiny
preset sees the current state and its last 6-hour change (``history=2``); measured figures
are in docs/results.md ("Forecast skill").
"""

import pytest

from climate_optics.evaluation.forecast_skill import forecast_skill
from climate_optics.training.forecast_task import ForecastTask
from climate_optics.training.loop import train
from climate_optics.training.task import TrainConfig

pytestmark = pytest.mark.slow

# Equal budgets for the three modes. Z500 dynamics are equivalent-barotropic, so geopotential
# (500 and 850 hPa) suffices; the model is trained at the 24-hour lead it is scored at.
TASK = dict(preset="tiny", variables=["geopotential"], static=False, train_lead_steps=(4,))
BUDGET = dict(
    steps=200, batch_size=8, lr=3e-3, warmup=10, val_every=0, checkpoint_every=200, device="cpu", progress=False
)


@pytest.fixture(scope="module")
def skills(synthetic_store, tmp_path_factory, torch_single_thread_module):
    out = {}
    for mode in ("backprop", "dfa", "optical"):
        task = ForecastTask(synthetic_store, seed=0, **TASK)
        assert task.model.config.history == 2 and task.model.num_parameters() < 1_000_000
        train(task, TrainConfig(mode=mode, **BUDGET), tmp_path_factory.mktemp(mode))
        out[mode] = forecast_skill(task.model, synthetic_store, start=task.val_start, lead_hours=24, direct=True)
    return out


def test_backprop_beats_persistence_by_30_percent_and_climatology(skills):
    s = skills["backprop"]
    assert s["rmse"] <= 0.7 * s["persistence_rmse"], s
    assert s["rmse"] < s["climatology_rmse"], s
    assert s["acc"] > s["persistence_acc"], s


@pytest.mark.parametrize("mode", ["dfa", "optical"])
def test_dfa_modes_beat_persistence(skills, mode):
    s = skills[mode]
    assert s["rmse"] < s["persistence_rmse"], s
    assert s["rmse"] < s["climatology_rmse"], s


def test_dfa_modes_are_within_15_percent_of_backprop(skills):
    """The issue's 24 h target at an equal budget. DFA's random feedback once cost clear skill here
    (0.83x persistence against back-propagation's 0.60x, as in Launay et al. 2020); with the signals
    through the final norm the three modes are level (measured 2026-12-07 in CI: back-propagation
    163.4, DFA 161.7, optical DFA 161.8 m2 s-2)."""
    for mode in ("dfa", "optical"):
        assert skills[mode]["rmse"] <= 1.15 * skills["backprop"]["rmse"], skills
