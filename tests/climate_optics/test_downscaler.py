"""Downscaler building blocks: interpolation matrices, tiling, model stages, configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from climate_optics import interpolation
from climate_optics.errors import UsageInputError
from climate_optics.inference.tiling import ramp, tile_starts, tiled_apply
from climate_optics.models.downscaler import Downscaler, DownscalerConfig, count_parameters

pytestmark = pytest.mark.usefixtures("torch_single_thread")  # small models: one thread is fastest on 2 shared cores


def _coarse_and_fine(n_lat=16, n_lon=32):
    fine_lat = -90 + 180 / n_lat * (np.arange(n_lat) + 0.5)
    fine_lon = np.arange(n_lon) * 360 / n_lon
    return 0.5 * (fine_lat[::2] + fine_lat[1::2]), 0.5 * (fine_lon[::2] + fine_lon[1::2]), fine_lat, fine_lon


@pytest.mark.parametrize("method", ["linear", "cubic"])
def test_interpolation_rows_sum_to_one_and_reproduce_linear_fields(method):
    c_lat, c_lon, f_lat, f_lon = _coarse_and_fine()
    w_lat, w_lon = interpolation.grid_matrices(c_lat, c_lon, f_lat, f_lon, method=method)
    np.testing.assert_allclose(w_lat.sum(axis=1), 1.0)
    np.testing.assert_allclose(w_lon.sum(axis=1), 1.0)
    # A field linear in latitude is reproduced exactly away from the edge rows.
    field = np.repeat(c_lat[:, None], c_lon.size, axis=1)
    out = interpolation.apply(field, w_lat, w_lon)
    inner = slice(4, -4)  # the cubic stencil reaches two coarse rows out
    np.testing.assert_allclose(out[inner], np.repeat(f_lat[:, None], f_lon.size, axis=1)[inner], atol=1e-9)


def test_interpolation_wraps_longitude_on_a_global_grid():
    c_lat, c_lon, f_lat, f_lon = _coarse_and_fine()
    _, w_lon = interpolation.grid_matrices(c_lat, c_lon, f_lat, f_lon)
    # Fine longitude 0 lies between the last coarse longitude (343.125 = -16.875) and the first (5.625).
    assert w_lon[0, -1] == pytest.approx(0.25) and w_lon[0, 0] == pytest.approx(0.75)
    # A regional source does not wrap: the same point clamps to the first column.
    w_region = interpolation.interp_matrix(c_lon[:4], f_lon[:8], periodic=False)
    assert w_region[0, 0] == pytest.approx(1.0) and w_region[0, -1] == 0


def test_interpolation_works_on_numpy_and_torch_alike():
    c_lat, c_lon, f_lat, f_lon = _coarse_and_fine()
    w_lat, w_lon = interpolation.grid_matrices(c_lat, c_lon, f_lat, f_lon, method="cubic")
    x = np.random.default_rng(0).standard_normal((2, 3, c_lat.size, c_lon.size))
    np.testing.assert_allclose(
        interpolation.apply(torch.from_numpy(x), w_lat, w_lon).numpy(), interpolation.apply(x, w_lat, w_lon), rtol=1e-12
    )
    with pytest.raises(ValueError, match="method"):
        interpolation.interp_matrix(c_lat, f_lat, periodic=False, method="spline")


def _block_means(fine, f_lat):
    """Area-weighted 2x2 block means of (..., H, W), as data_catalog.regrid.coarsen_conservative."""
    from data_catalog.regrid import cell_area_weights

    w = np.broadcast_to(cell_area_weights(f_lat)[:, None], fine.shape[-2:])

    def blocks(a):  # (..., H, W) -> (..., H / 2, W / 2) sums of 2 x 2 blocks
        return a.reshape(*a.shape[:-2], a.shape[-2] // 2, 2, a.shape[-1] // 2, 2).sum(axis=(-3, -1))

    return blocks(fine * w) / blocks(w)


def test_conservative_interpolation_reproduces_the_coarse_cell_means_without_spectral_images():
    c_lat, c_lon, f_lat, f_lon = _coarse_and_fine()
    coarse = np.random.default_rng(1).standard_normal((3, c_lat.size, c_lon.size))
    spectra = {}
    for method in ("linear", "conservative"):
        fine = interpolation.apply(coarse, *interpolation.grid_matrices(c_lat, c_lon, f_lat, f_lon, method=method))
        spectra[method] = np.abs(np.fft.rfft(fine, axis=-1)) ** 2  # (3, H, W // 2 + 1)
        if method == "conservative":
            np.testing.assert_allclose(_block_means(fine, f_lat), coarse, atol=1e-12)
        else:
            assert np.abs(_block_means(fine, f_lat) - coarse).max() > 0.1
    above = slice(c_lon.size // 2 + 1, None)  # zonal wavenumbers above the coarse Nyquist
    assert spectra["conservative"][..., above].sum() < 1e-20 * spectra["conservative"].sum()
    assert spectra["linear"][..., above].sum() > 1e-3 * spectra["linear"].sum()
    # A region (no wrap): block means still hold, with linear reconstruction and extrapolated edges.
    w_region = interpolation.interp_matrix(c_lon[:4], f_lon[:8], periodic=False, method="conservative")
    np.testing.assert_allclose(w_region.reshape(4, 2, 4).mean(axis=1), np.eye(4), atol=1e-12)
    with pytest.raises(ValueError, match="whole blocks"):
        interpolation.interp_matrix(c_lon[:4], f_lon[:7], periodic=False, method="conservative")


def _great_circle_sequence(field):
    """(..., H, W) -> (..., W // 2, 2H): each meridian up from the south pole, then down the one half a turn away."""
    half = field.shape[-1] // 2
    near = np.moveaxis(field[..., :half], -1, -2)  # (..., W/2, H)
    far = np.moveaxis(field[..., half:], -1, -2)[..., ::-1]
    return np.concatenate([near, far], axis=-1)


def test_conservative_interpolation_is_band_limited_along_great_circles_on_a_global_grid():
    c_lat, c_lon, f_lat, f_lon = _coarse_and_fine()
    w_lat, w_lon = interpolation.grid_matrices(c_lat, c_lon, f_lat, f_lon, method="conservative")
    assert w_lat.shape == (2, f_lat.size, c_lat.size)
    # A smooth field on the sphere (degree <= 3 spherical harmonics) comes back exactly from its
    # cell means; the linear meridional reconstruction misses it.
    lat, lon = np.meshgrid(np.deg2rad(f_lat), np.deg2rad(f_lon), indexing="ij")
    smooth = np.sin(lat) + np.cos(lat) ** 3 * np.cos(3 * lon) + np.sin(lat) * np.cos(lat) * np.sin(lon)
    cell_means = _block_means(smooth, f_lat)
    np.testing.assert_allclose(interpolation.apply(cell_means, w_lat, w_lon), smooth, atol=1e-12)
    w_linear, _ = interpolation.grid_matrices(c_lat, c_lon, f_lat, f_lon, method="conservative", great_circles=False)
    assert w_linear.shape == (f_lat.size, c_lat.size)
    assert np.abs(interpolation.apply(cell_means, w_linear, w_lon) - smooth).max() > 1e-3
    # Random cell means: block means kept, and no power along the great circles above the
    # coarse grid's Nyquist wavenumber (the linear reconstruction leaves images there).
    coarse = np.random.default_rng(2).standard_normal((3, c_lat.size, c_lon.size))
    above = slice(c_lat.size + 1, None)  # the coarse great circle holds 2 * n_lat cells
    for w, images in ((w_lat, False), (w_linear, True)):
        fine = interpolation.apply(coarse, w, w_lon)
        np.testing.assert_allclose(_block_means(fine, f_lat), coarse, atol=1e-12)
        power = np.abs(np.fft.rfft(_great_circle_sequence(fine), axis=-1)) ** 2
        assert (power[..., above].sum() > 1e-3 * power.sum()) == images
    # The same on torch tensors, and a latitude band (not pole to pole) falls back to linear meridians.
    np.testing.assert_allclose(
        interpolation.apply(torch.from_numpy(coarse), w_lat, w_lon).numpy(),
        interpolation.apply(coarse, w_lat, w_lon),
        atol=1e-12,
    )
    band, _ = interpolation.grid_matrices(c_lat[2:-2], c_lon, f_lat[4:-4], f_lon, method="conservative")
    assert band.shape == (f_lat.size - 8, c_lat.size - 4)


def test_tile_starts_cover_the_axis():
    assert tile_starts(40, 16, 6, periodic=False) == [0, 10, 20, 24]
    assert tile_starts(72, 16, 6, periodic=True) == [0, 10, 20, 30, 40, 50, 60, 70]
    assert tile_starts(10, 16, 6, periodic=False) == [0]
    w = ramp(16, 6, 1, "cosine")
    assert w[0] == 0 and w[-1] == 0 and torch.all(w[6:10] == 1) and torch.all(torch.diff(w[:6]) > 0)


class CircularConv(torch.nn.Module):
    """A translation-equivariant stand-in: 3x3 conv, zero padding in latitude, periodic in longitude."""

    def __init__(self, periodic: bool):
        super().__init__()
        self.weight = torch.nn.Parameter(
            torch.randn(3, 2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        )
        self.periodic = periodic

    def forward(self, x):
        if self.periodic:
            return torch.tanh(F.conv2d(F.pad(x, (1, 1, 0, 0), mode="circular"), self.weight, padding=(1, 0)))
        return torch.tanh(F.conv2d(x, self.weight, padding=1))


@pytest.mark.parametrize("window", ["cosine", "linear"])
@pytest.mark.parametrize("periodic", [True, False])
def test_tiling_with_overlap_reproduces_a_global_pass(window, periodic):
    x = torch.randn(2, 2, 40, 72, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    net = CircularConv(periodic)
    direct = net(x)
    # Tiles see zero padding at their inner edges, wrong by one cell; margin=1 gives those cells no weight.
    tiled = tiled_apply(net, x, tile=16, overlap=6, margin=1, window=window, periodic_lon=periodic, max_batch=7)
    torch.testing.assert_close(tiled, direct, rtol=0, atol=1e-12)
    # Without the margin the seams show: the check above can fail.
    seams = tiled_apply(net, x, tile=16, overlap=6, margin=0, window=window, periodic_lon=periodic)
    assert (seams - direct).abs().max() > 1e-3


def test_tiling_a_region_smaller_than_a_tile():
    x = torch.randn(1, 2, 10, 12, dtype=torch.float64)
    net = CircularConv(False)
    out = tiled_apply(net, x, tile=16, overlap=6, margin=1, periodic_lon=False)
    assert out.shape == (1, 3, 10, 12)
    # Replicate-padded to the tile, so only the cells next to the padded border may differ.
    torch.testing.assert_close(out[..., :-1, :-1], net(x)[..., :-1, :-1])


@pytest.mark.parametrize("backbone", ["vit", "unet"])
def test_model_stages_shapes_and_feedback_points(backbone):
    config = DownscalerConfig.from_preset(
        "tiny", channels=("2m_temperature", "geopotential@500"), backbone=backbone, tile=16, overlap=6
    )
    model = Downscaler(config)
    names = dict(model.named_modules())
    cond = torch.randn(3, config.n_cond, 16, 16)
    mean = model(cond)  # regression stage
    assert mean.shape == (3, 2, 16, 16)
    assert all(p in names for p in model.feedback_points()) and model.feedback_points()[0].startswith("regression.")
    model.set_stage("diffusion")
    assert all(p in names for p in model.feedback_points()) and model.feedback_points()[0].startswith("denoiser.")
    assert not any(p.requires_grad for p in model.regression.parameters())
    denoised = model(torch.randn(3, 2, 16, 16), torch.rand(3) + 0.1, torch.cat([cond, mean.detach()], dim=1))
    assert denoised.shape == (3, 2, 16, 16)
    # At sigma -> 0 the preconditioned denoiser returns its input.
    r = torch.randn(3, 2, 16, 16)
    torch.testing.assert_close(
        model(r, torch.full((3,), 1e-6), torch.cat([cond, mean.detach()], dim=1)), r, atol=1e-4, rtol=0
    )


@pytest.mark.parametrize("backbone", ["vit", "unet"])
def test_networks_start_as_interpolation_and_as_the_optimal_gaussian_denoiser(backbone):
    config = DownscalerConfig.from_preset("tiny", channels=("a", "b"), tile=16, overlap=6, backbone=backbone)
    model = Downscaler(config)
    cond = torch.randn(2, config.n_cond, 16, 16)
    # mean = interpolated coarse fields + a learned correction whose output layer starts at zero.
    torch.testing.assert_close(model.regress(cond), cond[:, :2])
    # F = 0 leaves D = c_skip * x: the exact denoiser of a unit-variance Gaussian residual.
    r, sigma = torch.randn(2, 2, 16, 16), torch.tensor([0.5, 2.0])
    expected = r / (1 + sigma.reshape(-1, 1, 1, 1) ** 2)
    torch.testing.assert_close(model.denoise(r, sigma, torch.cat([cond, cond[:, :2]], dim=1)), expected)


def test_regression_correction_is_scaled_per_channel_and_old_checkpoints_load_unscaled():
    config = DownscalerConfig.from_preset("tiny", channels=("a", "b"), tile=16, overlap=6)
    model = Downscaler(config)
    torch.nn.init.normal_(model.regression.out.weight)
    cond = torch.randn(2, config.n_cond, 16, 16)
    unscaled = model.regress(cond) - cond[:, :2]  # (2, 2, 16, 16)
    model.correction_std.copy_(torch.tensor([0.5, 0.01]))
    torch.testing.assert_close(
        model.regress(cond) - cond[:, :2], unscaled * torch.tensor([0.5, 0.01]).reshape(1, 2, 1, 1)
    )
    state = {k: v for k, v in model.state_dict().items() if k != "correction_std"}  # saved before the buffer existed
    restored = Downscaler(config)
    restored.correction_std.fill_(3.0)
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.correction_std, torch.ones(2))
    torch.testing.assert_close(restored.regress(cond), cond[:, :2] + unscaled)


def test_presets_and_validation():
    tiny = DownscalerConfig.from_preset("tiny", channels=("a", "b", "c"))
    base = DownscalerConfig.from_preset("base", channels=("a", "b", "c"))
    with torch.device("meta"):
        n_tiny, n_base = count_parameters(Downscaler(tiny)), count_parameters(Downscaler(base))
    assert n_tiny < 1_000_000 < 20_000_000 < n_base
    assert DownscalerConfig.from_dict(tiny.to_dict()) == tiny and tiny.great_circles
    saved_before_great_circles = {k: v for k, v in tiny.to_dict().items() if k != "great_circles"}
    assert not DownscalerConfig.from_dict(saved_before_great_circles).great_circles  # its conditioning stays as trained
    with pytest.raises(UsageInputError, match="preset"):
        DownscalerConfig.from_preset("huge")
    with pytest.raises(UsageInputError, match="overlap"):
        DownscalerConfig(channels=("a",), overlap=40)
    with pytest.raises(UsageInputError, match="backbone"):
        DownscalerConfig(channels=("a",), backbone="mlp")
    with pytest.raises(UsageInputError, match="channels"):
        Downscaler(DownscalerConfig())
