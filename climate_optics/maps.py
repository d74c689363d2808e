"""Maps of forecasts and downscaled ensembles, with Natural Earth coastlines drawn offline.

- ``forecast_maps``: a forecast field, the verifying truth and their difference.
- ``downscaling_maps``: the coarse forecast, downscaled members, their mean and spread, and the
  fine truth.

Coastlines: the package ships ``data/ne_110m_coastline.geojson``, the outlines of the Natural
Earth 1:110m land polygons (version 4.1.0, public domain; taken from the ``world-atlas`` 2.0.2
redistribution, with the closing edges along the antimeridian and the bottom of Antarctica
removed, coordinates rounded to 0.001 degree). They are drawn through cartopy as a shapely
geometry, so cartopy never downloads its own Natural Earth files.
Every function returns a ``matplotlib.figure.Figure`` on the Agg canvas (see ``plots.new_figure``).
matplotlib and cartopy are imported inside the drawing functions, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from climate_optics.errors import UsageInputError
from climate_optics.plots import _lead, _open, _pick, new_figure

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

COASTLINE_FILE = Path(__file__).with_name("data") / "ne_110m_coastline.geojson"
COASTLINE_STYLE = {"edgecolor": "black", "facecolor": "none", "linewidth": 0.7}


@functools.lru_cache(maxsize=1)
def coastlines() -> Any:
    """The shipped coastlines as one shapely ``MultiLineString`` (longitude -180..180, latitude)."""
    from shapely.geometry import shape
    from shapely.ops import unary_union

    collection = json.loads(COASTLINE_FILE.read_text())
    return unary_union([shape(feature["geometry"]) for feature in collection["features"]])


def draw_coastlines(ax: Any) -> Any:
    """Add the shipped coastlines to a cartopy ``GeoAxes``; returns the feature artist."""
    import cartopy.crs as ccrs

    return ax.add_geometries([coastlines()], crs=ccrs.PlateCarree(), **COASTLINE_STYLE)


def draw_field(ax: Any, field: "xr.DataArray", **style: Any) -> Any:
    """A (latitude, longitude) field as a mesh with coastlines; global grids get the whole globe."""
    import cartopy.crs as ccrs
    from cartopy.util import add_cyclic_point

    field = field.transpose("latitude", "longitude")
    lon = np.asarray(field["longitude"].values, dtype=float)
    lat = np.asarray(field["latitude"].values, dtype=float)
    values = np.asarray(field.values)
    spacing = float(np.median(np.diff(lon))) if lon.size > 1 else 360.0
    is_global = lon.size * spacing >= 359.0
    if is_global:  # close the seam at the last longitude
        values, lon = add_cyclic_point(values, coord=lon)
    image = ax.pcolormesh(lon, lat, values, transform=ccrs.PlateCarree(), shading="nearest", **style)
    draw_coastlines(ax)
    if is_global:
        ax.set_global()
    else:
        ax.set_extent([lon.min(), lon.max(), lat.min(), lat.max()], crs=ccrs.PlateCarree())
    return image


def _map_axes(fig: "Figure", rows: int, cols: int, index: int) -> Any:
    import cartopy.crs as ccrs

    return fig.add_subplot(
        rows, cols, index, projection=ccrs.PlateCarree()
    )  # the data's own CRS: no reprojection of the mesh


def _panel(fig: "Figure", ax: Any, title: str, field: "xr.DataArray", units: str, **style: Any) -> None:
    image = draw_field(ax, field, **style)
    fig.colorbar(image, ax=ax, orientation="horizontal", shrink=0.8, pad=0.04, label=units)
    ax.set_title(title, fontsize=10)


def _error_style(field: "xr.DataArray") -> dict[str, Any]:
    span = float(np.nanmax(np.abs(field.values))) or 1.0
    return {"cmap": "RdBu_r", "vmin": -span, "vmax": span}


def _label(variable: str, level: float | None, lead: Any, init_time: Any) -> str:
    label = variable if level is None else f"{variable} {level:g} hPa"
    when = "" if init_time is None else f", init {np.datetime_as_string(init_time, unit='h')}"
    return f"{label}, lead {_lead(lead) / np.timedelta64(1, 'h'):g} h{when}"


def _forecast_field(store: Any, variable: str, lead: Any, init: Any, level: float | None, what: str) -> "xr.DataArray":
    """(latitude, longitude[, realization]) field of ``variable`` at one init and lead."""
    ds = _open(store)
    if variable not in ds.data_vars:
        raise UsageInputError(f"{what} has no variable {variable!r} (has: {', '.join(map(str, ds.data_vars))})")
    da = _pick(ds[variable], "time", init, what)
    if "prediction_timedelta" in da.dims:
        da = da.sel(prediction_timedelta=_lead(lead))
    return _pick(da, "level", level, variable)


def _truth_at(truth: Any, variable: str, valid: Any, level: float | None) -> "xr.DataArray":
    truth_ds = _open(truth)
    if valid not in truth_ds.indexes["time"]:
        raise UsageInputError(f"truth has no time {valid} (valid time of the forecast)")
    return _pick(truth_ds[variable].sel(time=valid), "level", level, variable).load()


def forecast_maps(
    forecast: Any,
    variable: str,
    *,
    truth: Any = None,
    lead: Any = "24h",
    init: Any = 0,
    level: float | None = None,
    member: int | None = None,
    cmap: str = "viridis",
) -> "Figure":
    """Maps of ``variable`` at ``lead`` from init ``init`` (index or time): forecast, truth, error.

    ``truth``: a canonical dataset or store verified at valid time = init + lead (omit for the
    forecast alone). Ensembles: member ``member``, else the ensemble mean.
    """
    da = _forecast_field(forecast, variable, lead, init, level, "forecast")
    if "realization" in da.dims:
        da = da.mean("realization") if member is None else da.isel(realization=member)
    init_time = np.datetime64(da["time"].values) if "time" in da.coords else None
    panels = [("forecast", da.load())]
    if truth is not None:
        if init_time is None:
            raise UsageInputError("forecast has no init time coordinate to align the truth with")
        t = _truth_at(truth, variable, init_time + _lead(lead), level)
        panels += [("truth", t), ("forecast - truth", panels[0][1] - t)]
    units = str(da.attrs.get("units", ""))
    fig = new_figure(4.6 * len(panels), 3.0)
    lo = min(float(p[1].min()) for p in panels[:2])
    hi = max(float(p[1].max()) for p in panels[:2])
    for i, (title, field) in enumerate(panels):
        style = _error_style(field) if title.startswith("forecast -") else {"cmap": cmap, "vmin": lo, "vmax": hi}
        _panel(fig, _map_axes(fig, 1, len(panels), i + 1), title, field, units, **style)
    fig.suptitle(_label(variable, level, lead, init_time), fontsize=11)
    return fig


def downscaling_maps(
    forecast: Any,
    downscaled: Any,
    truth: Any,
    variable: str,
    *,
    lead: Any = "24h",
    init: Any = 0,
    level: float | None = None,
    members: int = 2,
    cmap: str = "viridis",
) -> "Figure":
    """Coarse forecast, the first ``members`` downscaled members, ensemble mean, ensemble spread and fine truth.

    ``downscaled``: an ensemble forecast store (``realization``) on the fine grid of ``truth``.
    """
    coarse = _forecast_field(forecast, variable, lead, init, level, "forecast").load()
    ensemble = _forecast_field(downscaled, variable, lead, init, level, "downscaled forecast").load()
    if "realization" not in ensemble.dims:
        raise UsageInputError("downscaled forecast has no realization dimension (not an ensemble)")
    init_time = np.datetime64(ensemble["time"].values)
    fine = _truth_at(truth, variable, init_time + _lead(lead), level)
    shown = min(members, ensemble.sizes["realization"])
    panels = [("coarse forecast", coarse)]
    panels += [(f"member {m}", ensemble.isel(realization=m)) for m in range(shown)]
    panels += [("ensemble mean", ensemble.mean("realization")), ("fine truth", fine)]
    lo = min(float(field.min()) for _, field in panels)
    hi = max(float(field.max()) for _, field in panels)
    spread = ensemble.std("realization")
    units = str(ensemble.attrs.get("units", ""))
    cols = 3
    rows = -(-(len(panels) + 1) // cols)
    fig = new_figure(4.4 * cols, 2.9 * rows)
    for i, (title, field) in enumerate(panels):
        _panel(fig, _map_axes(fig, rows, cols, i + 1), title, field, units, cmap=cmap, vmin=lo, vmax=hi)
    _panel(fig, _map_axes(fig, rows, cols, len(panels) + 1), "ensemble spread (std)", spread, units, cmap="magma")
    fig.suptitle("downscaled " + _label(variable, level, lead, init_time), fontsize=11)
    return fig
