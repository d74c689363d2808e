"""OPUConfig validation, serialisation and time/energy model; the optical break-even helper."""

from __future__ import annotations

import json

import pytest

from optical_backend import OpticalConfigError, OPUConfig
from optical_backend.breakeven import measure_projection_seconds, optical_breakeven


def test_defaults_are_the_documented_device():
    cfg = OPUConfig()
    assert cfg.max_inputs == 1140 * 912 and cfg.max_outputs == 1920 * 1080
    assert cfg.adc_bits == 8 and cfg.power_w == 30.0 and cfg.frame_rate_hz == 1500.0
    assert cfg.encoding == "dithered" and cfg.dither_scale == 2.0 and cfg.clip_residual
    assert cfg.frames_per_vector == 8  # two dithered pairs (the second only when something is clipped), two frames each
    assert (cfg.screens, cfg.oversampling, cfg.reference) == (3, 2, "anchor")


def test_ideal_has_no_noise_no_quantisation_exact_encoding():
    cfg = OPUConfig.ideal()
    assert (cfg.encoding, cfg.shot_noise, cfg.read_noise_e, cfg.saturation, cfg.adc_bits) == (
        "exact",
        False,
        0.0,
        False,
        None,
    )
    assert cfg.laser_power_rms == 0.0 and cfg.black_level_e == 0.0
    assert cfg.frames_per_vector == 2
    assert OPUConfig.ideal(screens=3).screens == 3


def test_json_round_trip():
    cfg = OPUConfig(dmd_shape=(1024, 1024), encoding="bitplanes", bits=6, adc_bits=10, exposure=0.2)
    text = json.dumps(cfg.to_dict())
    assert OPUConfig.from_dict(json.loads(text)) == cfg
    assert OPUConfig.from_dict(OPUConfig.ideal().to_dict()) == OPUConfig.ideal()


@pytest.mark.parametrize(
    "field,value",
    [
        ("dmd_shape", (0, 10)),
        ("camera_shape", (5,)),
        ("frame_rate_hz", 0.0),
        ("power_w", -1.0),
        ("latency_s", float("nan")),
        ("encoding", "analogue"),
        ("bits", 0),
        ("screens", 2),
        ("oversampling", 3),
        ("reference", "holographic"),
        ("anchor_fraction", 0.0),
        ("laser_power_rms", -0.1),
        ("calibration_frames", 0),
        ("black_level_e", 1e9),
        ("exposure", 1.5),
        ("adc_bits", 0),
        ("read_noise_e", -2.0),
        ("reference_ratio", 0.0),
    ],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(OpticalConfigError, match=f"OPUConfig.{field}"):
        OPUConfig(**{field: value})


def test_unknown_field_is_refused():
    with pytest.raises(OpticalConfigError, match="unknown field.*wavelength"):
        OPUConfig.from_dict({"wavelength": 532e-9})


def test_from_dict_and_yaml_name_the_bad_field(tmp_path):
    for data, field in [
        ({"adc_bits": "eight"}, "adc_bits"),
        ({"shot_noise": 1}, "shot_noise"),
        ({"screens": 3.5}, "screens"),
        ({"frame_rate_hz": None}, "frame_rate_hz"),
        ({"dmd_shape": [10, "x"]}, "dmd_shape"),
    ]:
        with pytest.raises(OpticalConfigError, match=f"OPUConfig.{field}"):
            OPUConfig.from_dict(data)
    whole = OPUConfig.from_dict({"screens": 4.0, "calibration_frames": 10.0})  # integers written as floats
    assert whole.screens == 4 and isinstance(whole.screens, int) and isinstance(whole.calibration_frames, int)
    good = tmp_path / "opu.yaml"
    good.write_text("encoding: bitplanes\nbits: 6\ndmd_shape: [1024, 1024]\nadc_bits: null\n")
    assert OPUConfig.from_yaml(good) == OPUConfig(encoding="bitplanes", bits=6, dmd_shape=(1024, 1024), adc_bits=None)
    bad = tmp_path / "bad.yaml"
    bad.write_text("exposure: 2.0\n")
    with pytest.raises(OpticalConfigError, match=r"bad.yaml: OPUConfig.exposure"):
        OPUConfig.from_yaml(bad)
    (tmp_path / "broken.yaml").write_text("encoding: [\n")
    with pytest.raises(OpticalConfigError, match=r"broken.yaml: not valid YAML"):
        OPUConfig.from_yaml(tmp_path / "broken.yaml")
    with pytest.raises(OpticalConfigError, match=r"missing.yaml: cannot read"):
        OPUConfig.from_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(OpticalConfigError, match=r"list.yaml: OPUConfig: expected a mapping"):
        OPUConfig.from_yaml(tmp_path / "list.yaml")


def test_tiles_follow_the_dmd_less_its_anchor_and_the_camera():
    cfg = OPUConfig()
    assert cfg.data_mirrors == int(1140 * 912 / 1.25)
    assert cfg.tiles(2**20, 2**20) == (2, 1)
    assert cfg.tiles(1000, 1920 * 1080 + 1) == (1, 2)
    assert OPUConfig(reference="external-arm").tiles(1140 * 912, 10) == (1, 1)


def test_time_and_energy_model():
    cfg = OPUConfig(frame_rate_hz=2000.0, latency_s=0.01, power_w=25.0, clip_residual=False)
    seconds = cfg.device_time_s(vectors=100, calls=4)
    assert seconds == pytest.approx(100 * 4 / 2000.0 + 4 * 0.01)
    assert cfg.device_time_s(vectors=100, calls=4, passes=2) == pytest.approx(100 * 8 / 2000.0 + 4 * 0.01)
    assert cfg.energy_j(seconds) == pytest.approx(25.0 * seconds)
    assert OPUConfig(encoding="bitplanes", bits=8).frames_per_vector == 32


def test_breakeven_interpolates_the_crossing():
    cfg = OPUConfig(frame_rate_hz=1000.0, latency_s=0.0, clip_residual=False)  # 32 vectors x 4 frames = 0.128 s
    digital = {2**10: 0.001, 2**12: 0.016, 2**14: 0.256, 2**16: 4.1}  # grows like n^2
    result = optical_breakeven(digital, config=cfg, batch=32)
    assert result["status"] == "crossing" and result["optical_seconds"] == pytest.approx(0.128)
    assert 2**12 < result["breakeven_n"] < 2**14
    assert result["breakeven_n"] == pytest.approx(2**13 * 2**0.5, rel=0.01)  # 0.128 s at n^2 scaling
    assert optical_breakeven({64: 1.0}, config=cfg)["status"] == "below_range"
    never = optical_breakeven({64: 1e-4, 128: 2e-4, 2**21: 10.0}, config=cfg)
    assert never == {
        "optical_seconds": pytest.approx(0.128),
        "breakeven_n": None,
        "status": "never",
    }  # 2^21 exceeds the DMD


def test_measure_projection_seconds_is_positive():
    assert measure_projection_seconds("structured", 256, batch=4, repeats=1) > 0
