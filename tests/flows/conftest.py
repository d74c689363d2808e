"""Fixtures shared by the flow, demo and notebook tests: one tiny demo run per session."""

from __future__ import annotations

import pytest
import yaml

# A tiny but complete pipeline: 10 days of 6-hourly 16x32 fields, a 1-block ViT, two steps.
TINY = {
    "model": {"dim": 32, "depth": 1, "heads": 2},
    "steps": 2,
    "batch_size": 2,
    "lead_hours": [6, 12],
    "max_inits": 3,
    "regions": ["global", "tropics"],
}


def copy_settings() -> dict:
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in TINY.items()}


@pytest.fixture(scope="session")
def tiny_settings_factory():
    """Returns fresh copies of the tiny run's pipeline settings (safe to mutate)."""
    return copy_settings


@pytest.fixture
def tiny_settings(tiny_settings_factory):
    return tiny_settings_factory()


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory):
    from data_catalog.testing import canonical_dataset

    ds = canonical_dataset(
        n_time=40,
        n_lat=16,
        n_lon=32,
        levels=(500, 850),
        variables=["geopotential", "temperature", "2m_temperature", "land_sea_mask"],
    )
    path = tmp_path_factory.mktemp("source") / "tiny.nc"
    ds.to_netcdf(path)
    return path


@pytest.fixture(scope="session")
def tiny_config(tiny_source, tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump({"source": str(tiny_source), **TINY}))
    return path


@pytest.fixture(scope="session")
def demo_run(tiny_config, tmp_path_factory):
    """``climate-optics demo --no-prefect`` (direct calls) on the tiny settings, both default modes: its run directory."""
    from flows.cli import main

    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--no-prefect", "--config", str(tiny_config), "--out", str(out)]) == 0
    return out
