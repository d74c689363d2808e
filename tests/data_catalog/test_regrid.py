"""Regridding at ingest: WeatherBench 2 grids, conservative remapping against an exact overlap computation."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_catalog import testing
from data_catalog.errors import DataInputError
from data_catalog.regrid import coarsen_conservative, grid_from_spec, regrid


def edges(centres: np.ndarray, poles: bool) -> np.ndarray:
    """Cell edges: midpoints between centres; pole rows end at the pole, other outer cells are full width."""
    mid = list((centres[1:] + centres[:-1]) / 2)
    if poles:
        return np.array([-90.0] + mid + [90.0])
    step = centres[1] - centres[0]
    return np.array([centres[0] - step / 2] + mid + [centres[-1] + step / 2])


def arc_overlap(a0: float, a1: float, b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    """Length in degrees of the intersection of arc [a0, a1] with arcs [b0, b1] on the circle (each < 360 long)."""
    total = np.zeros_like(b0)
    for shift in (-360.0, 0.0, 360.0):
        total += np.clip(np.minimum(a1, b1 + shift) - np.maximum(a0, b0 + shift), 0, None)
    return total


def exact_remap(values: np.ndarray, src_lat, src_lon, dst_lat, dst_lon, src_poles, dst_poles, rows=None) -> np.ndarray:
    """Cell by cell: the mean of the valid source values weighted by the spherical area of each overlap
    (destination ``rows`` only, NaN elsewhere, when given)."""
    s_lat, d_lat = edges(src_lat, src_poles), edges(dst_lat, dst_poles)
    s_lon, d_lon = edges(src_lon, False), edges(dst_lon, False)
    south, north = (
        np.meshgrid(s_lat[:-1], s_lon[:-1], indexing="ij")[0],
        np.meshgrid(s_lat[1:], s_lon[:-1], indexing="ij")[0],
    )
    west, east = (
        np.meshgrid(s_lat[:-1], s_lon[:-1], indexing="ij")[1],
        np.meshgrid(s_lat[:-1], s_lon[1:], indexing="ij")[1],
    )
    out = np.full((len(dst_lat), len(dst_lon)), np.nan)
    valid = ~np.isnan(values)
    for i in range(len(dst_lat)) if rows is None else rows:
        lo, hi = np.clip(d_lat[i], -90, 90), np.clip(d_lat[i + 1], -90, 90)
        band = np.clip(np.sin(np.deg2rad(np.minimum(hi, north))) - np.sin(np.deg2rad(np.maximum(lo, south))), 0, None)
        for j in range(len(dst_lon)):
            area = band * np.deg2rad(arc_overlap(d_lon[j], d_lon[j + 1], west, east)) * valid
            if area.sum() > 0:
                out[i, j] = (area * np.where(valid, values, 0)).sum() / area.sum()
    return out


def area_mean(field: np.ndarray, lat: np.ndarray, poles: bool) -> float:
    e = np.clip(edges(lat, poles), -90, 90)
    weights = np.sin(np.deg2rad(e[1:])) - np.sin(np.deg2rad(e[:-1]))
    return float((field * weights[:, None]).sum() / (weights.sum() * field.shape[1]))


def smooth_field(lat, lon, seed=0):
    rng = np.random.default_rng(seed)
    la, lo = np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]
    return 280 + 20 * np.cos(la) + 5 * np.sin(3 * lo) * np.cos(la) ** 2 + rng.normal(0, 1, (lat.size, lon.size))


def as_dataset(field, lat, lon):
    return xr.Dataset(
        {"2m_temperature": (("latitude", "longitude"), field, {"units": "K"})},
        coords={"latitude": lat, "longitude": lon},
    )


@pytest.mark.parametrize(
    "spec, n_lon, n_lat, first",
    [
        ("64x32", 64, 32, -87.1875),
        ("5.625deg", 64, 32, -87.1875),
        ("128x64", 128, 64, -88.59375),
        ("240x121", 240, 121, -90.0),
        ("1.5deg", 240, 121, -90.0),
        ("360x181", 360, 181, -90.0),
        ("0.25deg", 1440, 721, -90.0),
    ],
)
def test_weatherbench2_grids(spec, n_lon, n_lat, first):
    lat, lon = grid_from_spec(spec)
    assert (lat.size, lon.size) == (n_lat, n_lon) and lat[0] == first and lat[-1] == -first
    np.testing.assert_allclose(np.diff(lon), 360 / n_lon) and np.testing.assert_allclose(np.diff(lat), np.diff(lat)[0])


@pytest.mark.parametrize("spec", ["64by32", "7deg", "x32", "deg"])
def test_bad_grid_names(spec):
    with pytest.raises(DataInputError, match="expected LONxLAT"):
        grid_from_spec(spec)


@pytest.mark.parametrize(
    "source",
    [("3deg", 61, 120, True), ("2.5deg NCEP", 73, 144, True), ("2.8125deg", 64, 128, False)],
    ids=lambda s: s[0],
)
@pytest.mark.parametrize("target", ["64x32", "240x121"])
def test_conservative_equals_exact_overlap_computation(source, target):
    _, n_lat, n_lon, poles = source
    src_lat, src_lon = testing.grid(n_lat, n_lon, poles=poles)
    dst_lat, dst_lon = grid_from_spec(target)
    field = smooth_field(src_lat, src_lon)
    out = regrid(as_dataset(field, src_lat, src_lon), dst_lat, dst_lon)["2m_temperature"].values
    rows = None if target == "64x32" else [0, 1, 37, 60, 119, 120]  # poles, equator and between (the loop is slow)
    expected = exact_remap(field, src_lat, src_lon, dst_lat, dst_lon, poles, target == "240x121", rows)
    checked = slice(None) if rows is None else rows
    np.testing.assert_allclose(out[checked], expected[checked], rtol=1e-12)
    assert abs(area_mean(out, dst_lat, target == "240x121") - area_mean(field, src_lat, poles)) < 1e-9


def test_missing_values_are_renormalised(tmp_path):
    src_lat, src_lon = testing.grid(61, 120, poles=True)
    dst_lat, dst_lon = grid_from_spec("64x32")
    field = smooth_field(src_lat, src_lon, seed=1)
    land = (np.sin(np.deg2rad(2 * src_lon))[None, :] + np.cos(np.deg2rad(src_lat))[:, None]) > 0.8
    masked = np.where(land, field, np.nan)
    out = regrid(as_dataset(masked, src_lat, src_lon), dst_lat, dst_lon)["2m_temperature"].values
    expected = exact_remap(masked, src_lat, src_lon, dst_lat, dst_lon, True, False)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert np.isnan(out).any() and not np.isnan(out).all()  # cells with no land stay missing
    constant = regrid(as_dataset(np.where(land, 7.0, np.nan), src_lat, src_lon), dst_lat, dst_lon)["2m_temperature"]
    np.testing.assert_allclose(constant.values[~np.isnan(out)], 7.0, rtol=1e-14)  # not diluted by the missing area


def test_area_mean_conserved_from_quarter_degree():
    src_lat, src_lon = grid_from_spec("0.25deg")
    field = smooth_field(src_lat, src_lon, seed=2)
    ds = as_dataset(field, src_lat, src_lon)
    for target, poles in (("64x32", False), ("240x121", True), ("128x64", False)):
        lat, lon = grid_from_spec(target)
        out = regrid(ds, lat, lon)["2m_temperature"].values
        assert abs(area_mean(out, lat, poles) - area_mean(field, src_lat, True)) < 1e-9, target


def test_whole_blocks_equal_coarsen_conservative():
    lat, lon = testing.grid(64, 128)
    ds = as_dataset(smooth_field(lat, lon, seed=3), lat, lon)
    coarse = coarsen_conservative(ds, 2)
    out = regrid(ds, coarse["latitude"].values, coarse["longitude"].values)
    np.testing.assert_allclose(out["2m_temperature"].values, coarse["2m_temperature"].values, rtol=1e-12)


def block_means(field: np.ndarray, lat: np.ndarray, lon: np.ndarray, factor: int, poles: bool) -> np.ndarray:
    """Directly, block by block: the spherical-area-weighted mean of the valid fine values of each block."""
    lat_edges, lon_edges = np.clip(edges(lat, poles), -90, 90), edges(lon, False)
    area = (np.sin(np.deg2rad(lat_edges[1:])) - np.sin(np.deg2rad(lat_edges[:-1])))[:, None] * np.diff(lon_edges)[
        None, :
    ]
    out = np.full((lat.size // factor, lon.size // factor), np.nan)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = (slice(i * factor, (i + 1) * factor), slice(j * factor, (j + 1) * factor))
            valid = ~np.isnan(field[block])
            if valid.any():
                out[i, j] = (area[block] * np.where(valid, field[block], 0)).sum() / (area[block] * valid).sum()
    return out


@pytest.mark.parametrize("grid", ["gaussian", "region"])
def test_coarsening_is_the_area_weighted_block_mean(grid):
    """The downscaler's coarse fields (training, inference, skill) come from the regridding path: exact on
    Gaussian latitudes (the blocks' own bounds, not midpoints of the coarse centres) and on a regional grid
    (its outer columns as wide as the others)."""
    if grid == "gaussian":
        lat, lon = np.rad2deg(np.arcsin(np.polynomial.legendre.leggauss(94)[0])), np.arange(192) * 1.875
    else:
        lat, lon = np.arange(20.0, 52.0), np.arange(10.0, 42.0)
    field = smooth_field(lat, lon, seed=4)
    field[5, 7] = np.nan  # left out, the rest of its block renormalised
    out = coarsen_conservative(as_dataset(field, lat, lon), 2)["2m_temperature"].values
    np.testing.assert_allclose(out, block_means(field, lat, lon, 2, poles=False), rtol=1e-12)
    array = coarsen_conservative(as_dataset(field, lat, lon)["2m_temperature"], 2)  # a DataArray keeps its name
    assert array.name == "2m_temperature" and np.allclose(array.values, out, rtol=1e-12, equal_nan=True)


def test_lazy_regridding_equals_eager():
    ds = testing.canonical_dataset(
        n_time=4, n_lat=61, n_lon=120, poles=True, levels=(500, 850), variables=["temperature", "land_sea_mask"]
    )
    lat, lon = grid_from_spec("64x32")
    eager = regrid(ds, lat, lon)
    lazy = regrid(ds.chunk({"time": 2, "latitude": 20, "longitude": 40}), lat, lon)
    assert lazy["temperature"].chunks is not None
    xr.testing.assert_allclose(eager, lazy.compute(), rtol=1e-6)
    assert eager["temperature"].dims == ds["temperature"].dims and eager["land_sea_mask"].dims == (
        "latitude",
        "longitude",
    )


def test_bilinear_is_linear_periodic_and_holds_the_edge_rows():
    src_lat, src_lon = testing.grid(61, 120, poles=True)
    lat, lon = grid_from_spec("64x32")
    tilted = as_dataset(np.broadcast_to(src_lat[:, None] * 2.0 + 100, (61, 120)).copy(), src_lat, src_lon)
    np.testing.assert_allclose(
        regrid(tilted, lat, lon, "bilinear")["2m_temperature"].values,
        np.broadcast_to(lat[:, None] * 2.0 + 100, (32, 64)),
        rtol=1e-12,
    )
    wave = as_dataset(np.broadcast_to(np.cos(np.deg2rad(src_lon)), (61, 120)).copy(), src_lat, src_lon)
    seam = regrid(wave, lat, np.array([358.5, 1.5]), "bilinear")["2m_temperature"].values[0]
    between = np.cos(np.deg2rad(357.0)) * 0.5 + np.cos(0.0) * 0.5  # halfway between 357 and 0 (= 360) degrees
    assert seam[0] == pytest.approx(between, rel=1e-12) and seam[1] == pytest.approx(
        np.cos(0.0) * 0.5 + np.cos(np.deg2rad(3.0)) * 0.5, rel=1e-12
    )
    coarse = as_dataset(smooth_field(lat, lon), lat, lon)
    poles = regrid(coarse, np.array([-90.0, 90.0]), lon, "bilinear")["2m_temperature"].values
    np.testing.assert_allclose(poles, coarse["2m_temperature"].values[[0, -1]], rtol=1e-12)


@pytest.fixture(scope="module")
def native_files(tmp_path_factory):
    """ERA5-layout files at 3 degrees (poles) and 0.25 degrees."""
    root = tmp_path_factory.mktemp("grids")
    three = testing.canonical_dataset(
        n_time=3, n_lat=61, n_lon=120, poles=True, levels=(500, 850), variables=["temperature", "2m_temperature"]
    )
    quarter = testing.canonical_dataset(n_time=2, n_lat=721, n_lon=1440, poles=True, variables=["2m_temperature"])
    testing.write_netcdf({"three": testing.era5_cds_netcdf(three), "quarter": testing.era5_cds_netcdf(quarter)}, root)
    return {"three": (root / "three.nc", three), "quarter": (root / "quarter.nc", quarter), "root": root}


def test_ingest_grid_64x32_of_a_3_degree_file_is_the_exact_remap(native_files, run_cli):
    path, truth = native_files["three"]
    out = native_files["root"] / "three-64x32.zarr"
    status, _, stderr = run_cli("ingest", path, "--out", out, "--grid", "64x32")
    assert status == 0, stderr
    store = xr.open_zarr(out)
    lat, lon = grid_from_spec("64x32")
    np.testing.assert_array_equal(store["latitude"].values, lat)
    np.testing.assert_array_equal(store["longitude"].values, lon)
    field = truth["temperature"].isel(time=2, level=1).values.astype(np.float64)
    expected = exact_remap(field, truth.latitude.values, truth.longitude.values, lat, lon, True, False)
    np.testing.assert_allclose(store["temperature"].isel(time=2, level=1).values, expected, rtol=1e-6)  # float32 store
    assert "conservative from 120x61 to 64x32" in store.attrs["regridding"]


def test_ingest_grid_of_a_quarter_degree_file_conserves_the_area_mean(native_files, run_cli):
    path, truth = native_files["quarter"]
    out = native_files["root"] / "quarter-1.5deg.zarr"
    status, _, stderr = run_cli("ingest", path, "--out", out, "--grid", "1.5deg")
    assert status == 0, stderr
    store = xr.open_zarr(out)
    assert (store.sizes["latitude"], store.sizes["longitude"]) == (121, 240)
    for t in range(2):
        fine = truth["2m_temperature"].isel(time=t).values.astype(np.float64)
        coarse = store["2m_temperature"].isel(time=t).values.astype(np.float64)
        assert abs(area_mean(coarse, store.latitude.values, True) - area_mean(fine, truth.latitude.values, True)) < 1e-4


def test_ingest_grid_64x32_of_a_quarter_degree_file_is_the_exact_remap(native_files, run_cli):
    path, truth = native_files["quarter"]
    out = native_files["root"] / "quarter-64x32.zarr"
    status, _, stderr = run_cli("ingest", path, "--out", out, "--grid", "64x32")
    assert status == 0, stderr
    store = xr.open_zarr(out)
    lat, lon = grid_from_spec("64x32")
    field = truth["2m_temperature"].isel(time=1).values.astype(np.float64)
    rows = [0, 16, 31]  # the southernmost row (over the pole cell), the equator's, the northernmost
    expected = exact_remap(field, truth.latitude.values, truth.longitude.values, lat, lon, True, False, rows)
    np.testing.assert_allclose(store["2m_temperature"].isel(time=1).values[rows], expected[rows], rtol=1e-6)


def test_ingest_grid_of_a_store_and_bilinear(native_files, run_cli):
    path, _ = native_files["three"]
    root = native_files["root"]
    like = root / "three-64x32.zarr"
    if not like.exists():
        assert run_cli("ingest", path, "--out", like, "--grid", "64x32")[0] == 0
    status, _, stderr = run_cli(
        "ingest", path, "--out", root / "matched.zarr", "--grid", like, "--regrid-method", "bilinear"
    )
    assert status == 0, stderr
    matched, reference = xr.open_zarr(root / "matched.zarr"), xr.open_zarr(like)
    np.testing.assert_array_equal(matched["latitude"].values, reference["latitude"].values)
    assert "bilinear" in matched.attrs["regridding"]
    assert not np.allclose(matched["temperature"].values, reference["temperature"].values)  # a different method


@pytest.mark.parametrize(
    "args, match",
    [
        (["--grid", "7deg"], "expected LONxLAT"),
        (["--grid", "64x32", "--regrid-method", "cubic"], "regridding method 'cubic'"),
    ],
)
def test_bad_grid_is_one_line_status_2(native_files, run_cli, args, match):
    path, _ = native_files["three"]
    out = native_files["root"] / "bad.zarr"
    status, _, stderr = run_cli("ingest", path, "--out", out, *args)
    assert status == 2 and len(stderr.strip().splitlines()) == 1 and match in stderr
    assert not out.exists()


def test_synthetic_grid_keeps_its_meaning(monkeypatch, tmp_path):
    import data_catalog
    from data_catalog import ingest as ingest_module

    seen = {}

    def fake_open(source, *, options=None, **kwargs):
        seen.update(options or {})
        raise DataInputError("stop here")

    monkeypatch.setattr(data_catalog, "open_dataset", fake_open)
    with pytest.raises(DataInputError, match="stop here"):
        ingest_module.ingest("synthetic-reanalysis", tmp_path / "s.zarr", grid="5.625deg")
    assert seen["grid"] == "5.625deg"  # the generator's view, not a regridding
