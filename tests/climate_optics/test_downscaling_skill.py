"""Downscaling skill on the embedded synthetic reanalysis (tiny preset, CPU, back-propagation).

The truth is the 2.8125 deg store; the model sees it conservatively coarsened by 2. On held-out
times the ensemble must beat bilinear interpolation: CRPS below bilinear MAE, positive spread,
and (2m_temperature) a zonal energy spectrum closer to the truth above the coarse Nyquist wavenumber.
"""

from __future__ import annotations

import pytest
import torch
import xarray as xr

from climate_optics.downscale_skill import downscale_skill
from climate_optics.inference.downscale import load_downscaler
from climate_optics.training.downscale_task import run_downscale_training
from climate_optics.training.task import TrainConfig

CHANNELS = ["2m_temperature", "geopotential@500"]


@pytest.fixture(scope="module")
def skill(synthetic_hires_store, tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions on a shared 2-core machine: one thread is fastest
    try:
        config = TrainConfig(steps=100, batch_size=8, lr=3e-3, warmup=10, val_every=0, checkpoint_every=1000, progress=False, seed=0)
        out = tmp_path_factory.mktemp("downscale-skill") / "run"
        run_downscale_training(synthetic_hires_store, out, config, stage="both", channels=CHANNELS)
        engine, state = load_downscaler(out, sampler_steps=8)
        n_time = xr.open_zarr(synthetic_hires_store).sizes["time"]
        held_out = [n_time - 30, n_time - 1]  # inside the last 10 % that training never samples
        return downscale_skill(engine, state["task"], synthetic_hires_store, times=held_out, members=4, seed=0)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("channel", CHANNELS)
def test_ensemble_crps_beats_bilinear_mae_with_positive_spread(skill, channel):
    scores = skill[channel]
    assert scores["crps"] < 0.8 * scores["mae_bilinear"], scores
    assert scores["spread"] > 0.1 * scores["mae_bilinear"], scores
    assert 0.5 < scores["spread_skill"] < 2.0, scores


@pytest.mark.slow
def test_spectrum_closer_to_truth_than_bilinear_at_the_highest_wavenumbers(skill):
    # 2m temperature carries the land-sea and orographic detail below the coarse grid scale. For
    # geopotential@500 (T42: its energy falls 250x over wavenumbers 33-41) the ensemble is not yet
    # closer to the truth than bilinear after 100 steps per stage (1.2 vs 0.74 with 8 sampler
    # steps, 0.77 with 18), so it is not asserted; README "Downscaling" has the measured spectra.
    scores = skill["2m_temperature"]
    assert scores["spectrum_band"].endswith("-64")
    assert scores["spectrum_error"] < 0.5 * scores["spectrum_error_bilinear"], scores
