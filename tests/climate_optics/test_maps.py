"""Maps with the shipped Natural Earth coastlines: drawn offline, and not blank."""

from __future__ import annotations

import socket

import numpy as np
import pytest


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Any connection attempt fails the test; cartopy's download directory is an empty temporary one."""
    import cartopy

    def refuse(self, address, *args, **kwargs):
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setitem(cartopy.config, "data_dir", str(tmp_path / "cartopy"))
    yield
    assert not (tmp_path / "cartopy").exists()  # nothing fetched


@pytest.fixture(scope="module")
def fields():
    """A 2 m temperature analysis (32x64), a 24 h forecast of it and a 3-member ensemble around it."""
    from data_catalog.testing import canonical_dataset

    truth = canonical_dataset(n_time=8, n_lat=32, n_lon=64, variables=["2m_temperature"])
    lead = np.timedelta64(24, "h")
    forecast = (
        truth.isel(time=slice(0, 2))
        .expand_dims(prediction_timedelta=[lead])
        .transpose("time", "prediction_timedelta", ...)
    )
    forecast = forecast + 1.5  # a biased forecast: the error panel is not zero
    noise = np.random.default_rng(0).normal(0.0, 2.0, size=(3, *forecast["2m_temperature"].shape))
    ensemble = forecast.expand_dims(realization=3).copy()
    ensemble["2m_temperature"] = ensemble["2m_temperature"] + noise
    return truth, forecast, ensemble


def map_axes_and_colorbars(fig):
    maps = [ax for ax in fig.axes if hasattr(ax, "projection")]
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    return maps, bars


def check_not_blank(fig, panels):
    """Every map panel shows coastline pixels and a varying field, and has its colour bar."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)  # (H, W, 3)
    height = rgba.shape[0]
    maps, bars = map_axes_and_colorbars(fig)
    assert len(maps) == panels and len(bars) == panels
    for ax in maps:
        box = ax.get_window_extent()
        inner = rgba[int(height - box.y1) + 4 : int(height - box.y0) - 4, int(box.x0) + 4 : int(box.x1) - 4]
        black = (inner.max(axis=-1) < 40).sum()  # coastlines are black; no colour map used here reaches black
        colours = len(np.unique(inner.reshape(-1, 3), axis=0))
        assert black > 300, f"{ax.get_title()}: {black} coastline pixels"
        assert colours > 30, f"{ax.get_title()}: {colours} colours (blank field?)"
    assert all(bar.get_xlabel() == "K" for bar in bars)


def test_shipped_coastlines_are_where_the_continents_end():
    from shapely.geometry import Point

    from climate_optics.maps import coastlines

    coast = coastlines()
    lon0, lat0, lon1, lat1 = coast.bounds
    assert lon0 < -170 and lon1 > 170 and lat0 < -75 and lat1 > 80
    for lon, lat in ((-5.6, 36.0), (18.47, -34.36), (-70.0, -54.9), (151.2, -33.9), (-74.0, 40.6)):
        assert coast.distance(Point(lon, lat)) < 1.0, (
            lon,
            lat,
        )  # Gibraltar, Cape of Good Hope, Tierra del Fuego, Sydney, New York
    for lon, lat in ((-150.0, 0.0), (-30.0, 30.0), (80.0, -20.0)):
        assert coast.distance(Point(lon, lat)) > 5.0, (lon, lat)  # open Pacific, Atlantic, Indian Ocean


def test_forecast_maps_draw_coastlines_offline(fields, no_network):
    from climate_optics import maps

    truth, forecast, _ = fields
    fig = maps.forecast_maps(forecast, "2m_temperature", truth=truth, lead="24h", init=0)
    assert [ax.get_title() for ax in map_axes_and_colorbars(fig)[0]] == ["forecast", "truth", "forecast - truth"]
    check_not_blank(fig, 3)
    check_not_blank(maps.forecast_maps(forecast, "2m_temperature", lead="24h", init=1), 1)


def test_downscaling_maps_draw_coastlines_offline(fields, no_network):
    from climate_optics import maps

    truth, forecast, ensemble = fields
    fig = maps.downscaling_maps(forecast, ensemble, truth, "2m_temperature", lead="24h", members=2)
    titles = [ax.get_title() for ax in map_axes_and_colorbars(fig)[0]]
    assert titles == ["coarse forecast", "member 0", "member 1", "ensemble mean", "fine truth", "ensemble spread (std)"]
    check_not_blank(fig, 6)


def test_regional_field_is_drawn_on_its_extent(fields, no_network):
    from climate_optics import maps

    _, forecast, _ = fields
    europe = forecast.sel(latitude=slice(30, 72), longitude=slice(0, 40))
    fig = maps.forecast_maps(europe, "2m_temperature", lead="24h", init=0)
    check_not_blank(fig, 1)
    lon0, lon1, lat0, lat1 = map_axes_and_colorbars(fig)[0][0].get_extent()
    assert lat0 > 25 and lat1 < 80 and lon1 - lon0 < 60
