"""The generator: determinism, chunking, options, cache, grids, members, catalog access."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.synthetic import SyntheticConfig, config_from_options, generate, open_synthetic, store_path

TINY = {"days": 1.0, "spinup_days": 0.25}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_a_bit_identical_store_and_chunking_does_not_matter(tmp_path):
    config = SyntheticConfig(seed=7, **TINY)
    a = generate(config, tmp_path / "a.zarr", chunk_days=30)
    b = generate(config, tmp_path / "b.zarr", chunk_days=30)
    files_a, files_b = _files(a), _files(b)
    assert len(files_a) > 10 and files_a == files_b
    c = generate(config, tmp_path / "c.zarr", chunk_days=0.1)  # written in many appends
    da, dc = xr.open_zarr(a, consolidated=False), xr.open_zarr(c, consolidated=False)
    for name in da.data_vars:
        np.testing.assert_array_equal(da[name].values, dc[name].values)
    other = xr.open_zarr(generate(config.replace(seed=8), tmp_path / "d.zarr"), consolidated=False)
    assert not np.array_equal(other.geopotential.values, da.geopotential.values)


def test_store_layout_attributes_and_statics(tmp_path):
    config = SyntheticConfig(seed=1, **TINY)
    ds = xr.open_zarr(generate(config, tmp_path / "s.zarr"), consolidated=False)
    assert ds.sizes == {"time": 4, "level": 2, "latitude": 64, "longitude": 128}
    assert list(ds.level.values) == [500, 850]
    assert ds.latitude.values[0] == pytest.approx(-90 + 1.40625) and np.all(np.diff(ds.latitude) > 0)
    assert ds.longitude.values[0] == 0 and ds.longitude.values[-1] < 360
    assert (np.diff(ds.time.values) == np.timedelta64(6, "h")).all() and str(ds.time.values[0])[:10] == "2000-01-01"
    assert ds.land_sea_mask.dims == ("latitude", "longitude") and ds.geopotential_at_surface.dims == (
        "latitude",
        "longitude",
    )
    assert ds.geopotential.attrs["units"] == "m2 s-2" and ds["2m_temperature"].attrs["units"] == "K"
    assert json.loads(ds.attrs["synthetic_config"])["seed"] == 1 and ds.attrs["seed"] == 1
    assert ds.attrs["synthetic_config_digest"] == config.digest()
    assert ds.geopotential.encoding["chunks"][0] == 20


def test_options_map_to_configs_and_grids():
    config, factor = config_from_options({"years": 0.5, "seed": "3", "grid": "5.625deg"})
    assert (config.days, config.seed, config.grid, factor) == (182.5, 3, "2.8125deg", 2)
    hires, factor = config_from_options({"grid": "1.40625deg"})
    assert (hires.truncation, hires.output_shape, factor) == (85, (128, 256), 1)
    assert config_from_options({})[0] == SyntheticConfig()
    assert config.digest() != config.replace(forcing_amplitude=2e-11).digest()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"grid": "1deg"}, "grid"),
        ({"colour": 1}, "unknown synthetic option"),
        ({"years": 1, "days": 3}, "either 'years' or 'days'"),
        ({"years": "many"}, "'years' must be a number"),
        ({"seed": -1}, "seed"),
        ({"dt_seconds": 7000}, "dt_seconds"),
        ({"start": "yesterday-ish"}, "start"),
        ({"forcing_band": [30, 10]}, "forcing_band"),
    ],
)
def test_bad_options_name_the_option(options, message):
    with pytest.raises(DataInputError, match=message):
        config_from_options(options)


def test_cache_is_reused_and_keyed_by_configuration(tmp_path, monkeypatch):
    opts = {**TINY, "seed": 2}
    ds = open_synthetic(opts, cache_dir=tmp_path)
    path = store_path(config_from_options(opts)[0], tmp_path)
    assert path.exists() and ds.geopotential.chunks is not None  # lazy
    import data_catalog.synthetic.writer as gen

    monkeypatch.setattr(gen, "generate", lambda *a, **k: pytest.fail("regenerated a cached store"))
    again = open_synthetic({**opts, "grid": "5.625deg"}, cache_dir=tmp_path)
    assert again.sizes["latitude"] == 32 and again.attrs["grid"] == "5.625deg"
    monkeypatch.setenv("CLIMATE_OPTICS_CACHE", str(tmp_path))
    assert store_path(config_from_options(opts)[0]).parent == tmp_path / "synthetic"


def test_high_resolution_run_and_members(tmp_path):
    hires = xr.open_zarr(
        generate(SyntheticConfig.for_grid("1.40625deg", days=0.5, spinup_days=0.0), tmp_path / "h.zarr"),
        consolidated=False,
    )
    assert hires.sizes["latitude"] == 128 and hires.sizes["longitude"] == 256
    assert np.isfinite(hires.geopotential.values).all()
    ens = xr.open_zarr(generate(SyntheticConfig(members=2, **TINY), tmp_path / "e.zarr"), consolidated=False)
    assert ens.geopotential.dims == ("time", "realization", "level", "latitude", "longitude")
    z = ens.geopotential.sel(level=500).values
    assert not np.array_equal(z[:, 0], z[:, 1])


def test_open_dataset_through_the_catalog(tmp_path):
    from data_catalog import open_dataset

    ds = open_dataset(
        "synthetic-reanalysis",
        variables=["geopotential"],
        levels=[500],
        options={**TINY, "grid": "5.625deg", "cache_dir": str(tmp_path)},
    )
    assert ds.geopotential.shape == (4, 1, 32, 64)
    z = ds.geopotential.values / 9.80665
    assert 4000 < z.min() and z.max() < 6500
