"""The OPU's default encoding keeps the forecaster's own errors: for a per-sample and a per-token
error of a briefly trained tiny forecaster on the embedded data (the errors DFA projects, taken
where the DFA engine takes them), the mean of many default projections equals the ideal
projection through the same simulated device within 2%; one clipped pair alone (the previous
default) loses part of them."""

from __future__ import annotations

import pytest
import torch

from climate_optics.training.dfa_errors import forecaster_errors
from climate_optics.training.forecast_task import ForecastTask
from optical_backend import OPUConfig
from optical_backend.diagnostics import encoding_gain

pytestmark = pytest.mark.usefixtures("torch_single_thread_module")

DRAWS = {"sample": 600, "token": 4000}  # a sample's error has ~10^4 entries: fewer draws, same precision of the gain


@pytest.fixture(scope="module")
def errors(synthetic_store, torch_single_thread_module) -> dict[str, torch.Tensor]:
    """After 20 back-propagation steps of the tiny preset with the CLI's data defaults (all channels, batches of 8)."""
    return forecaster_errors(ForecastTask(synthetic_store, preset="tiny"))


@pytest.mark.slow
@pytest.mark.parametrize("granularity", ["sample", "token"])
def test_default_encoding_is_unbiased_on_the_forecasters_errors(errors, granularity):
    error = errors[granularity]
    assert bool(torch.isfinite(error).all()) and float(error.abs().max()) > 0
    m = encoding_gain(error, OPUConfig(), draws=DRAWS[granularity])
    print(
        f"{granularity} error ({error.numel()} entries): gain {m['gain']:.4f}, error of the mean "
        f"{m['error_of_mean']:.3f}, {m['frames_per_vector']:.2f} frames per vector"
    )
    assert m["gain"] == pytest.approx(1.0, abs=0.02)
    assert m["frames_per_vector"] > 6  # the residual pair was shown: something above 2 mean|x| was clipped
    clipped = encoding_gain(error, OPUConfig(clip_residual=False), draws=DRAWS[granularity])
    print(f"{granularity} error without the residual pair: gain {clipped['gain']:.4f}")
    assert clipped["gain"] < 0.98  # the test can tell a biased encoding
