"""Downscaling skill on the embedded synthetic reanalysis (tiny preset, CPU; back-propagation, DFA and optical DFA).

The truth is the 2.8125 deg store; the model sees it conservatively coarsened by 2. On held-out
times the ensemble must beat bilinear interpolation: CRPS below bilinear MAE, positive spread,
and (2m_temperature) a zonal energy spectrum closer to the truth above the coarse Nyquist wavenumber.
"""

from __future__ import annotations

import pytest
import xarray as xr

from climate_optics.evaluation.downscale_skill import downscale_skill
from climate_optics.inference.downscale import load_downscaler
from climate_optics.training.downscale_task import run_downscale_training
from climate_optics.training.task import TrainConfig

CHANNELS = ["2m_temperature", "geopotential@500"]


def trained_skill(store, out, mode: str = "backprop") -> dict:
    """Scores of a downscaler trained in ``mode`` with the defaults (100 + 600 steps, batch 8, lr 3e-3)."""
    config = TrainConfig(
        steps=100, batch_size=8, lr=3e-3, warmup=10, val_every=0, checkpoint_every=1000, progress=False, mode=mode
    )
    # The fine texture above the coarse grid is the diffusion stage's alone: it gets 6x the
    # regression's steps and the default 18 sampler steps (8 leave geopotential@500 over).
    run_downscale_training(store, out, config, stage="both", channels=CHANNELS, diffusion_steps=600)
    engine, state = load_downscaler(out, sampler_steps=18)
    n_time = xr.open_zarr(store).sizes["time"]
    held_out = [n_time - 30, n_time - 1]  # inside the last 10 % that training never samples
    return downscale_skill(engine, state["task"], store, times=held_out, members=4, seed=0)


@pytest.fixture(scope="module")
def skill(synthetic_hires_store, tmp_path_factory, torch_single_thread_module):
    return trained_skill(synthetic_hires_store, tmp_path_factory.mktemp("downscale-skill") / "run")


@pytest.mark.slow
@pytest.mark.parametrize("channel", CHANNELS)
def test_ensemble_crps_beats_bilinear_mae_with_positive_spread(skill, channel):
    scores = skill[channel]
    assert scores["crps"] < 0.8 * scores["mae_bilinear"], scores
    # Spread measured against the ensemble's own error (geopotential@500's ensemble-mean MAE is
    # 1/12 of bilinear's, so bilinear's error is no yardstick for its spread).
    assert scores["spread"] > 0.25 * scores["mae_ensemble_mean"], scores
    assert 0.5 < scores["spread_skill"] < 2.0, scores


@pytest.mark.slow
@pytest.mark.parametrize("channel", CHANNELS)
def test_spectrum_closer_to_truth_than_bilinear_at_the_highest_wavenumbers(skill, channel):
    # 2m temperature carries land-sea and orographic detail down to the grid scale (wavenumbers
    # 33-64); geopotential@500 (T42) only up to wavenumber 41, and its energy falls 250x from 33 to 41.
    scores = skill[channel]
    assert scores["spectrum_band"] == {"2m_temperature": "33-64", "geopotential@500": "33-41"}[channel], scores
    ratio = {"2m_temperature": 0.5, "geopotential@500": 1.0}[channel]
    assert scores["spectrum_error"] < ratio * scores["spectrum_error_bilinear"], scores


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dfa", "optical"])
def test_dfa_and_optical_downscalers_within_the_crps_target(skill, synthetic_hires_store, tmp_path, mode):
    # Issue #11's target at this test's budget (100 + 600 steps): CRPS within 1.2x of
    # back-propagation's and a spectrum closer to the truth than bilinear's, every channel, with
    # the DFA modes' defaults (the regression mean by back-propagation, the diffusion stage by DFA).
    scores = trained_skill(synthetic_hires_store, tmp_path / "run", mode)
    for channel in CHANNELS:
        assert scores[channel]["crps"] <= 1.2 * skill[channel]["crps"], (channel, scores[channel], skill[channel])
        assert scores[channel]["spectrum_error"] < scores[channel]["spectrum_error_bilinear"], (channel, scores)
