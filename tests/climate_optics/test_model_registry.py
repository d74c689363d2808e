"""A new model is one module plus one registry entry: it then trains, forecasts and is recorded by
name in its checkpoints (climate_optics.models.architectures, climate_optics.models.protocols)."""

from __future__ import annotations

import textwrap

import pytest
import torch
import xarray as xr

from climate_optics.errors import UsageInputError
from climate_optics.io.checkpoints import load_checkpoint
from climate_optics.models import architectures
from climate_optics.models.architectures import FORECASTER, Architecture
from climate_optics.models.protocols import DownscaleModel, ForecastModel

# A forecaster that is not a ViT: the Forecaster's normalisation and rollout, a 3x3 convolution as the network.
CONV_MODULE = textwrap.dedent("""
    import torch
    from torch import nn

    from climate_optics.models.forecaster import Forecaster


    class ConvForecaster(Forecaster):
        def __init__(self, config):
            super().__init__(config)
            del self.embed, self.lead_embed, self.blocks, self.norm, self.head  # the ViT, replaced below
            c, s = len(config.channels), len(config.static_channels)
            self.conv = nn.Conv2d(c * config.history + s, c, 3, padding=1, padding_mode="circular")

        def forward(self, x, lead_hours, static=None):  # (B, C * history, H, W) -> (B, C, H, W)
            return self.conv(x if static is None else torch.cat([x, static], dim=1))

        def feedback_points(self):
            return ["conv"]

        def feedback_error(self):
            return None, "sample"


    class NotAModel(torch.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
""")


@pytest.fixture
def conv_architecture(tmp_path, monkeypatch):
    (tmp_path / "conv_forecaster_test.py").write_text(CONV_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = "climate_optics.models.forecaster:ForecasterConfig"
    monkeypatch.setitem(
        architectures.ARCHITECTURES,
        "conv-test",
        Architecture("conv-test", FORECASTER, "conv_forecaster_test:ConvForecaster", config),
    )
    monkeypatch.setitem(
        architectures.ARCHITECTURES,
        "broken-test",
        Architecture("broken-test", FORECASTER, "conv_forecaster_test:NotAModel", config),
    )


def test_the_shipped_models_implement_their_protocols():
    forecaster = architectures.get(None, FORECASTER)
    model = forecaster.build(forecaster.make_config("tiny", channels=("a", "b"), grid=(8, 16)))
    assert isinstance(model, ForecastModel) and not isinstance(model, DownscaleModel)
    downscaler = architectures.get(None, architectures.DOWNSCALER)
    model = downscaler.build(downscaler.make_config("tiny", channels=("a", "b")))
    assert isinstance(model, DownscaleModel)
    with pytest.raises(UsageInputError, match="unknown forecaster model 'diffusion'; choose one of vit"):
        architectures.get("diffusion", FORECASTER)


def test_a_model_missing_the_protocol_is_refused(conv_architecture):
    arch = architectures.get("broken-test", FORECASTER)
    with pytest.raises(UsageInputError, match="NotAModel does not implement ForecastModel"):
        arch.build(arch.make_config("tiny", channels=("a",), grid=(8, 16)))


def test_a_registered_model_trains_and_forecasts_through_the_cli(conv_architecture, synthetic_store, tmp_path, run_cli):
    run = tmp_path / "run"
    status, _, err = run_cli(
        "train",
        "forecast",
        "--data",
        synthetic_store,
        "--out",
        run,
        "--model",
        "conv-test",
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--device",
        "cpu",
    )
    assert status == 0, err
    state = load_checkpoint(run)
    assert state["task"]["architecture"] == "conv-test"
    assert any(k.startswith("conv.") for k in state["model"]) and not any(
        k.startswith("blocks.") for k in state["model"]
    )
    times = xr.open_zarr(synthetic_store)["time"].values
    status, _, err = run_cli(
        "forecast",
        "--checkpoint",
        run,
        "--data",
        synthetic_store,
        "--init",
        str(times[-8])[:19],
        "--lead-times",
        "6h,12h",
        "--out",
        tmp_path / "forecast.zarr",
    )
    assert status == 0, err
    forecast = xr.open_zarr(tmp_path / "forecast.zarr")
    assert forecast.sizes["prediction_timedelta"] == 2 and bool(forecast["2m_temperature"].notnull().all())
    status, _, err = run_cli(
        "train", "forecast", "--data", synthetic_store, "--out", tmp_path / "other", "--model", "nope"
    )
    assert status == 2 and "unknown forecaster model 'nope'" in err and "conv-test" in err
    assert torch.is_tensor(state["model"]["conv.weight"])


def test_the_pipeline_trains_a_registered_model(conv_architecture, synthetic_store, tmp_path):
    """The pipeline's training step (what the demo and the Prefect flow run) takes the architecture from the settings."""
    from climate_optics.run_layout import PipelineConfig
    from climate_optics.workflow import train_forecaster

    options = PipelineConfig(architecture="conv-test", mode="backprop", steps=2, batch_size=2).train_options("backprop")
    checkpoint = train_forecaster(synthetic_store, tmp_path / "run", **options)
    assert load_checkpoint(checkpoint)["task"]["architecture"] == "conv-test"
