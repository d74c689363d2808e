"""The OPU simulator's physics: exact linear map when ideal, bounded error with the default noise,
the transmission matrix statistics, encodings, camera, device limits and accounting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optical_backend import OPUConfig, OpticalConfigError, make_projector
from optical_backend.camera import HolographicCamera
from optical_backend.encoding import bitplanes, ternary
from optical_backend.scattering import DenseTransmission, PhaseScreenTransmission

N_IN, N_OUT = 200, 320


def _relative_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y - ref).norm() / ref.norm())


@pytest.fixture(scope="module")
def inputs() -> torch.Tensor:
    return torch.randn(48, N_IN, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("threshold", [2**22, 0], ids=["dense-T", "phase-screens"])
def test_ideal_reproduces_exact_linear_map(inputs, threshold):
    proj = make_projector("optical", N_IN, N_OUT, seed=4, config=OPUConfig.ideal(dense_threshold=threshold))
    expected = {2**22: DenseTransmission, 0: PhaseScreenTransmission}[threshold]
    assert isinstance(proj.transmission, expected)
    w = proj.effective_map()  # (n_in, n_out)
    y = proj(inputs)
    assert torch.allclose(y, inputs @ w, rtol=1e-4, atol=1e-5)
    assert float(w.var()) * N_OUT == pytest.approx(1.0, rel=0.05)  # entries N(0, 1/n_out)


def test_phase_screen_model_equals_explicit_optics():
    """The FFT implementation against T built from explicit DFT matrices and screens (numpy, float64)."""
    n_in, n_out = 24, 40
    model = PhaseScreenTransmission(n_in, n_out, seed=3, device=torch.device("cpu"), screens=3)
    m = model.size
    dft = np.exp(-2j * np.pi * np.outer(np.arange(m), np.arange(m)) / m) / np.sqrt(m)
    t = np.zeros((m, m), complex)
    t[:n_in, :n_in] = np.diag(model.signs.numpy())
    t = dft @ t  # the first screen then Fraunhofer propagation
    for phase in model.phases.numpy():
        t = dft @ np.diag(phase) @ t
    t = np.diag(model.exit.numpy()) @ t[:n_out]  # camera pixels, exit phase and gain
    patterns = torch.rand(5, n_in, generator=torch.Generator().manual_seed(1)).round()
    got = model.fields(patterns).numpy()  # (5, n_out)
    want = patterns.double().numpy() @ t[:, :n_in].T
    assert np.allclose(got, want, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("screens", [2, 3])
def test_phase_screen_speckle_is_circular_gaussian(screens):
    """Fully developed speckle: E|t|^2 = 2/n_out, E t^2 = 0, intensity exponential (contrast 1)."""
    model = PhaseScreenTransmission(256, 512, seed=5, device=torch.device("cpu"), screens=screens)
    t = model.fields(torch.eye(256)) * (512 / 2) ** 0.5  # (256, 512), unit mean intensity
    intensity = t.abs().square()
    assert float(intensity.mean()) == pytest.approx(1.0, rel=0.01)
    assert abs(complex(t.square().mean())) < 0.02
    assert float(intensity.std() / intensity.mean()) == pytest.approx(1.0, abs=0.05)
    assert float(t.real.var()) == pytest.approx(0.5, rel=0.03)


def test_default_noise_error_is_bounded_and_reported(inputs):
    """Default OPU (dithered ternary DMD frames, shot/read noise, saturation, 8-bit ADC) vs the ideal map."""
    ideal = make_projector("optical", N_IN, N_OUT, seed=4, config=OPUConfig.ideal())
    ref = ideal(inputs)
    errors = {}
    for name, cfg in {
        "default": OPUConfig(),
        "ternary": OPUConfig(encoding="ternary"),
        "camera-only": OPUConfig(encoding="exact"),
        "bitplanes-2": OPUConfig(encoding="bitplanes", bits=2),
        "bitplanes-6": OPUConfig(encoding="bitplanes", bits=6),
    }.items():
        errors[name] = _relative_error(make_projector("optical", N_IN, N_OUT, seed=4, config=cfg)(inputs), ref)
    print("relative error vs ideal:", {k: round(v, 4) for k, v in errors.items()})
    # ternarisation of a Gaussian vector alone costs ~0.44 (TWN rule); the camera adds a few %;
    # dithering (unbiased below the 2 mean|x| clip) pays for its lack of bias with variance: ~0.65
    assert 0.35 < errors["ternary"] < 0.5
    assert 0.5 < errors["default"] < 0.8
    assert 0.005 < errors["camera-only"] < 0.06
    assert errors["bitplanes-6"] < errors["bitplanes-2"] < errors["ternary"] < errors["default"]
    assert errors["bitplanes-6"] < 0.06


@pytest.mark.parametrize("encoding,floor", [("dithered", 0.7), ("ternary", 0.85)])
def test_default_output_correlates_with_ideal(inputs, encoding, floor):
    y = make_projector("optical", N_IN, N_OUT, seed=4, config=OPUConfig(encoding=encoding))(inputs)
    ref = make_projector("optical", N_IN, N_OUT, seed=4, config=OPUConfig.ideal())(inputs)
    cosine = torch.nn.functional.cosine_similarity(y, ref, dim=1)
    assert float(cosine.min()) > floor


def test_ternary_and_bitplane_encodings_reconstruct_the_input():
    x = torch.randn(6, 500, generator=torch.Generator().manual_seed(2))
    x[0] = 0.0  # a blank vector stays blank
    patterns, weights = ternary(x, 0.7)
    assert set(patterns.unique().tolist()) <= {0.0, 1.0} and patterns.shape == (6, 2, 500)
    assert not bool((patterns[:, 0] * patterns[:, 1]).any())  # b+ and b- never share a mirror
    approx = torch.einsum("np,npi->ni", weights, patterns)
    assert torch.equal(approx[0], torch.zeros(500))
    rel = (approx[1:] - x[1:]).norm(dim=1) / x[1:].norm(dim=1)
    assert float(rel.max()) < 0.5
    errors = []
    for bits in (2, 4, 8):
        patterns, weights = bitplanes(x, bits)
        assert patterns.shape == (6, 2 * bits, 500)
        approx = torch.einsum("np,npi->ni", weights, patterns)
        errors.append(float(((approx - x).norm() / x.norm())))
        assert float((approx - x).abs().max()) <= float(x.abs().max()) / (2**bits - 1) / 2 + 1e-6
    assert errors[0] > errors[1] > errors[2]


def test_blank_input_projects_to_zero():
    proj = make_projector("optical", 50, 60)
    assert torch.equal(proj(torch.zeros(3, 50)), torch.zeros(3, 60))


def test_camera_saturates_and_quantises():
    cfg = OPUConfig(shot_noise=False, read_noise_e=0.0)
    camera = HolographicCamera(cfg)
    frame = camera._frame(torch.tensor([-5.0, 0.0, 1234.5, 9_999.0, 50_000.0]), torch.empty(5), torch.Generator().manual_seed(0))
    step = cfg.full_well_e / 255
    assert float(frame.max()) == pytest.approx(cfg.full_well_e)  # saturation at the full well
    assert float(frame.min()) == 0.0
    assert torch.allclose(frame / step, torch.round(frame / step), atol=1e-3)  # 8-bit levels
    noisy = HolographicCamera(OPUConfig())
    samples = noisy._frame(torch.full((20_000,), 1000.0), torch.empty(20_000), torch.Generator().manual_seed(0))
    # shot noise: variance = mean electrons (+ read noise^2 + quantisation step^2 / 12)
    expected = 1000.0 + 5.0**2 + step**2 / 12
    assert float(samples.var()) == pytest.approx(expected, rel=0.05)


def test_device_limits_raise_and_are_configurable():
    with pytest.raises(OpticalConfigError, match=r"n_in=1039681 exceeds the DMD's 1140x912 = 1039680"):
        make_projector("optical", 1140 * 912 + 1, 16)
    with pytest.raises(OpticalConfigError, match=r"n_out=2073601 exceeds the camera's 1920x1080"):
        make_projector("optical", 16, 1920 * 1080 + 1)
    small = OPUConfig(dmd_shape=(8, 8), camera_shape=(10, 10))
    with pytest.raises(OpticalConfigError, match="DMD"):
        make_projector("optical", 65, 10, config=small)
    assert make_projector("optical", 64, 100, config=small).n_in == 64


def test_frames_time_and_energy_counters(inputs):
    cfg = OPUConfig(frame_rate_hz=1000.0, latency_s=0.002, power_w=30.0)
    proj = make_projector("optical", N_IN, N_OUT, config=cfg)
    proj(inputs[:10])
    proj(inputs[:6])
    assert proj.stats.calls == 2 and proj.stats.vectors == 16
    assert proj.stats.frames == 16 * 4  # ternary: 2 patterns x 2 holographic frames
    assert proj.stats.device_time_s == pytest.approx(64 / 1000.0 + 2 * 0.002)
    assert proj.stats.energy_j == pytest.approx(30.0 * proj.stats.device_time_s)
    bits = make_projector("optical", N_IN, N_OUT, config=cfg.replace(encoding="bitplanes", bits=3))
    bits(inputs[:5])
    assert bits.stats.frames == 5 * 2 * 3 * 2
    proj.stats.reset()
    assert proj.stats.frames == 0 and proj.stats.device_time_s == 0


def test_config_travels_through_state_dict():
    cfg = OPUConfig(encoding="bitplanes", bits=5, screens=3, dense_threshold=0)
    proj = make_projector("optical", 30, 40, seed=9, config=cfg)
    state = proj.state_dict()
    assert state["config"]["config"]["bits"] == 5
    rebuilt = make_projector("optical", 30, 40, seed=9, **state["config"])
    assert rebuilt.opu == cfg
    with pytest.raises(OpticalConfigError, match="config must be an OPUConfig"):
        make_projector("optical", 30, 40, config=42)


@pytest.mark.parametrize("threshold", [2**22, 0], ids=["dense-T", "phase-screens"])
def test_parallel_chunks_repeat_the_serial_frames(inputs, threshold, monkeypatch):
    """Chunks draw from their own seeded streams: threads change the speed, never the frames."""
    import optical_backend.optical as optical

    monkeypatch.setattr(optical, "CHUNK_ELEMENTS", 4 * 2 * 512)  # 4 vectors per chunk: 12 chunks
    cfg = OPUConfig(dense_threshold=threshold)
    runs = {}
    threads = torch.get_num_threads()
    try:
        for workers in (1, 2):
            torch.set_num_threads(workers)
            proj = make_projector("optical", N_IN, N_OUT, seed=3, config=cfg)
            runs[workers] = (proj(inputs), proj(inputs))
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads  # the worker pool restores torch's setting
    first, second = runs[1]
    torch.testing.assert_close(runs[2][0], first, rtol=0, atol=0)
    torch.testing.assert_close(runs[2][1], second, rtol=0, atol=0)
    assert not torch.equal(first, second)  # each call is a fresh measurement: new dither and noise
    assert _relative_error(second, first) < 1.0  # ... of the same map
