"""The pipeline's DFA settings: ``opu_config`` (the optical device), ``error`` (the granularity) and
``feedback_norm`` (the signals through the final norm), ``downscale_regression_mode`` (the mode of
the downscaler's regression stage).

A bad device field in a pipeline config file is refused naming it, before anything is written; a
valid one reaches the TrainConfig of the optical forecaster and downscaler runs, and ``pipeline.json``.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from climate_optics.run_layout import PipelineConfig
from climate_optics.workflow import train_downscaler

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def fine_store(root):
    """A small ingested store the downscaler can learn from (its training tile is 32 points)."""
    from data_catalog import testing
    from data_catalog.ingest import ingest

    variables = ["temperature", "2m_temperature", "land_sea_mask", "geopotential_at_surface"]
    testing.canonical_dataset(n_time=12, n_lat=32, n_lon=64, levels=(500,), variables=variables).to_netcdf(
        root / "fine.nc"
    )
    return ingest(str(root / "fine.nc"), root / "fine.zarr")


@pytest.mark.parametrize(
    "settings, says",
    [
        ({"opu_config": {"frame_rate": 3000}}, "unknown field(s) frame_rate"),
        ({"opu_config": {"frame_rate_hz": -5}}, "OPUConfig.frame_rate_hz must be a positive number"),
        ({"opu_config": {"encoding": "smoke"}}, "OPUConfig.encoding must be one of"),
        ({"error": "pixelz"}, "error must be one of auto, sample, token"),
        ({"feedback_norm": "yes"}, "feedback_norm must be one of auto, on, off"),
        ({"downscale_regression_mode": "dfaa"}, "downscale_regression_mode must be one of auto, backprop, dfa"),
    ],
)
def test_a_bad_device_or_granularity_in_the_config_file_is_refused(settings, says, tiny_source, run_cli, tmp_path):
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump({"source": str(tiny_source), "mode": "optical", "steps": 2, **settings}))
    status, _, err = run_cli("demo", "--no-prefect", "--config", config, "--out", tmp_path / "run")
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("climate-optics: error: pipeline: ") and says in err, err
    assert not (tmp_path / "run").exists()  # nothing written


def test_the_device_and_granularity_reach_the_trained_runs(tiny_source, tiny_settings, run_cli, tmp_path):
    settings = tiny_settings | {"source": str(tiny_source), "modes": ["backprop", "optical"], "error": "sample"}
    settings["feedback_norm"] = "off"
    settings["opu_config"] = {"frame_rate_hz": 3000, "read_noise_e": 4.0}
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "run"
    status, _, err = run_cli("demo", "--no-prefect", "--config", config, "--out", out)
    assert status == 0, err
    recorded = json.loads((out / "pipeline.json").read_text())
    assert recorded["error"] == "sample" and recorded["opu_config"]["frame_rate_hz"] == 3000
    assert recorded["opu_config"]["read_noise_e"] == 4.0 and "bits" in recorded["opu_config"]  # stored complete
    optical = torch.load(out / "train-optical" / "checkpoint.pt", weights_only=True)
    assert optical["train_config"]["opu_config"] == recorded["opu_config"]
    assert optical["train_config"]["error"] == "sample" and optical["engine"]["error"] == "sample"
    assert recorded["feedback_norm"] == "off" and optical["train_config"]["feedback_norm"] == "off"
    assert optical["engine"]["opu_config"]["frame_rate_hz"] == 3000  # the device the engine simulated
    backprop = torch.load(out / "train-backprop" / "checkpoint.pt", weights_only=True)
    assert backprop["train_config"]["opu_config"] is None  # the device is the optical mode's only

    # the downscaler's run gets the same (the pipeline passes PipelineConfig.downscale_options())
    cfg = PipelineConfig(**(settings | {"downscale_mode": "optical", "downscale_steps": 1, "batch_size": 2}))
    options = cfg.downscale_options()
    assert options["opu_config"] == recorded["opu_config"] and options["error"] == "sample"
    assert options["feedback_norm"] == "off"
    run = train_downscaler(fine_store(tmp_path), tmp_path / "downscale", **options)
    state = torch.load(run / "diffusion" / "checkpoint.pt", weights_only=True)
    assert state["train_config"]["mode"] == "optical" and state["train_config"]["error"] == "sample"
    assert state["train_config"]["feedback_norm"] == "off"
    assert state["engine"]["opu_config"]["frame_rate_hz"] == 3000
    regression = torch.load(run / "regression" / "checkpoint.pt", weights_only=True)
    assert regression["train_config"]["mode"] == "backprop"  # the DFA modes' regression stage (regression_config)


def test_the_downscalers_regression_mode_reaches_its_run(tmp_path):
    cfg = PipelineConfig(mode="optical", downscale_steps=1, batch_size=2, downscale_regression_mode="optical")
    options = cfg.downscale_options()
    assert options["regression_mode"] == "optical"
    run = train_downscaler(fine_store(tmp_path), tmp_path / "downscale", **options)
    for stage in ("regression", "diffusion"):  # the pure optical downscaler: both stages on the device
        state = torch.load(run / stage / "checkpoint.pt", weights_only=True)
        assert state["train_config"]["mode"] == "optical" and state["engine"]["opu_config"], stage
