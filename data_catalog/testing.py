"""Small datasets for tests: canonical ones, and the native layouts readers must understand.

Native builders take a canonical dataset and write it the way the source distributes it
(names, units, coordinate order and spellings, time encodings), so a test can check that
``open_dataset`` maps it back exactly. Nothing here downloads anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.schema import GRAVITY, VARIABLES

LEVEL_VARIABLES = ("geopotential", "temperature", "u_component_of_wind", "v_component_of_wind", "specific_humidity")
SURFACE_VARIABLES = ("2m_temperature", "10m_u_component_of_wind", "10m_v_component_of_wind", "mean_sea_level_pressure")

# Typical magnitudes: (mean at 1000 hPa or surface, change per hPa, noise std)
_CLIMATE = {
    "geopotential": (1000.0, -55.0 * 1.0, 300.0),
    "temperature": (288.0, 0.06, 3.0),
    "u_component_of_wind": (2.0, -0.01, 5.0),
    "v_component_of_wind": (0.0, 0.0, 4.0),
    "specific_humidity": (1e-2, 1e-5, 1e-3),
    "2m_temperature": (288.0, 0.0, 5.0),
    "10m_u_component_of_wind": (1.0, 0.0, 3.0),
    "10m_v_component_of_wind": (0.0, 0.0, 3.0),
    "mean_sea_level_pressure": (101325.0, 0.0, 800.0),
    "total_precipitation_6hr": (1e-3, 0.0, 5e-4),
}


def grid(n_lat: int = 32, n_lon: int = 64, *, poles: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Equiangular latitudes (ascending, cell centres or with poles) and longitudes 0..360."""
    if poles:
        lat = np.linspace(-90.0, 90.0, n_lat)
    else:
        step = 180.0 / n_lat
        lat = np.linspace(-90.0 + step / 2, 90.0 - step / 2, n_lat)
    lon = np.arange(n_lon) * (360.0 / n_lon)
    return lat, lon


def canonical_dataset(
    n_time: int = 4,
    n_lat: int = 32,
    n_lon: int = 64,
    levels: Sequence[int] = (500, 850),
    seed: int = 0,
    *,
    variables: Sequence[str] | None = None,
    start: str = "2020-01-01",
    freq: str = "6h",
    poles: bool = False,
    members: int = 0,
) -> xr.Dataset:
    """A small canonical dataset (float32, numpy-backed) with plausible values.

    ``members`` > 0 adds a ``realization`` dimension (after ``time``): member k is member 0
    plus k times a small perturbation of every time-dependent field.
    """
    rng = np.random.default_rng(seed)
    names = list(variables) if variables is not None else list(LEVEL_VARIABLES + SURFACE_VARIABLES)
    lat, lon = grid(n_lat, n_lon, poles=poles)
    time = pd.date_range(start, periods=n_time, freq=freq).values.astype("datetime64[ns]")
    level = np.asarray(levels, dtype="int64")
    data = {}
    for name in names:
        var = VARIABLES[name]
        mean, per_hpa, std = _CLIMATE.get(name, (0.5, 0.0, 0.2))
        if var.has_level:
            shape = (n_time, level.size, n_lat, n_lon)
            base = (mean + per_hpa * (level - 1000.0))[None, :, None, None]
            if name == "geopotential":
                base = GRAVITY * 7000.0 * np.log(1000.0 / level)[None, :, None, None]
            dims = ("time", "level", "latitude", "longitude")
        else:
            shape, base, dims = (n_time, n_lat, n_lon), mean, ("time", "latitude", "longitude")
        values = base + std * rng.standard_normal(shape)
        if name in ("specific_humidity", "total_precipitation_6hr"):
            values = np.abs(values)
        if name == "land_sea_mask":
            values = np.clip(values, 0.0, 1.0)
        if var.static:
            values, dims = values[0], dims[1:]
        attrs = {"units": var.units, "long_name": var.long_name}
        if var.standard_name:
            attrs["standard_name"] = var.standard_name
        data[name] = xr.Variable(dims, values.astype("float32"), attrs)
    coords = {"time": time, "latitude": lat, "longitude": lon}
    if any(VARIABLES[n].has_level for n in names):
        coords["level"] = level
    ds = xr.Dataset(data, coords=coords)
    return with_members(ds, members, rng) if members else ds


def with_members(ds: xr.Dataset, members: int, rng: np.random.Generator) -> xr.Dataset:
    """``ds`` as ``members`` ensemble members (dims time, realization, ...); static fields unchanged."""
    out = ds.copy()
    for name, da in ds.data_vars.items():
        if "time" not in da.dims:
            continue
        _, _, std = _CLIMATE.get(str(name), (0.5, 0.0, 0.2))
        nudge = 0.1 * std * np.abs(rng.standard_normal(da.shape)).astype(da.dtype)  # positive: q stays >= 0
        stacked = np.stack([da.values + k * nudge for k in range(members)], axis=1)
        out[name] = (("time", "realization", *da.dims[1:]), stacked.astype(da.dtype), da.attrs)
    return out.assign_coords(realization=np.arange(members))


def _flip(ds: xr.Dataset, *dims: str) -> xr.Dataset:
    return ds.isel({d: slice(None, None, -1) for d in dims if d in ds.dims})


# ERA5 short names and the units the CDS/ecCodes write.
ERA5_NAMES = {
    "geopotential": ("z", "m**2 s**-2"),
    "temperature": ("t", "K"),
    "u_component_of_wind": ("u", "m s**-1"),
    "v_component_of_wind": ("v", "m s**-1"),
    "specific_humidity": ("q", "kg kg**-1"),
    "2m_temperature": ("t2m", "K"),
    "10m_u_component_of_wind": ("u10", "m s**-1"),
    "10m_v_component_of_wind": ("v10", "m s**-1"),
    "mean_sea_level_pressure": ("msl", "Pa"),
    "geopotential_at_surface": ("z", "m**2 s**-2"),
    "land_sea_mask": ("lsm", "(0 - 1)"),
}


def _era5_vars(ds: xr.Dataset) -> xr.Dataset:
    out = ds.rename({n: ERA5_NAMES[n][0] for n in ds.data_vars})
    for canonical, (short, units) in ERA5_NAMES.items():
        if canonical in ds.data_vars:
            out[short].attrs = {"units": units, "long_name": VARIABLES[canonical].long_name, "GRIB_shortName": short}
    return out


def era5_cds_netcdf(ds: xr.Dataset, *, members_first: bool = True) -> xr.Dataset:
    """The new CDS NetCDF layout: ``valid_time``, ``pressure_level`` (descending), latitude
    descending, scalar ``number``, ``expver`` strings along ``valid_time``.

    An ensemble (``realization`` in ``ds``) becomes a ``number`` dimension, first as the CDS
    writes it (``members_first``) or after ``valid_time`` as the legacy CDS NetCDF did.
    """
    out = _era5_vars(_flip(ds, "latitude", "level"))
    out = out.rename({"time": "valid_time", **({"level": "pressure_level"} if "level" in out.dims else {})})
    if "realization" in out.dims:
        out = out.rename({"realization": "number"})
        first = ("number", "valid_time") if members_first else ("valid_time", "number")
        out = out.transpose(*[d for d in first if d in out.dims], ...)
    else:
        out = out.assign_coords(number=0)
    out = out.assign_coords(expver=("valid_time", np.full(out.sizes["valid_time"], "0001")))
    if "pressure_level" in out.coords:
        out["pressure_level"] = out["pressure_level"].astype("float64").assign_attrs(units="hPa")
    out["valid_time"].encoding = {"units": "seconds since 1970-01-01", "dtype": "int64"}
    out.attrs = {
        "GRIB_centre": "ecmf",
        "Conventions": "CF-1.7",
        "institution": "European Centre for Medium-Range Weather Forecasts",
    }
    return out


def era5_cfgrib(ds: xr.Dataset, *, members: int = 0) -> xr.Dataset:
    """What cfgrib decodes from an ERA5 GRIB file: ``time`` + scalar ``step`` + ``valid_time``,
    ``isobaricInhPa`` (descending), latitude descending, ``number`` (a dimension if ``members``)."""
    out = _era5_vars(_flip(ds, "latitude", "level"))
    if "level" in out.dims:
        out = out.rename({"level": "isobaricInhPa"})
        out["isobaricInhPa"] = out["isobaricInhPa"].astype("float64").assign_attrs(units="hPa")
    out = out.assign_coords(step=np.timedelta64(0, "ns"), valid_time=("time", out["time"].values))
    if members:
        out = out.expand_dims(number=np.arange(members)).transpose("time", "number", ...)
    else:
        out = out.assign_coords(number=0)
    return out


# NCEP/NCAR Reanalysis (PSL) names and units: hgt in geopotential metres, air in degC.
NCEP_NAMES = {
    "geopotential": ("hgt", "m", lambda x: x / GRAVITY),
    "temperature": ("air", "degC", lambda x: x - 273.15),
    "u_component_of_wind": ("uwnd", "m/s", lambda x: x),
    "v_component_of_wind": ("vwnd", "m/s", lambda x: x),
    "specific_humidity": ("shum", "kg/kg", lambda x: x),
    "2m_temperature": ("air", "degK", lambda x: x),
    "10m_u_component_of_wind": ("uwnd", "m/s", lambda x: x),
    "10m_v_component_of_wind": ("vwnd", "m/s", lambda x: x),
    "mean_sea_level_pressure": ("slp", "Pa", lambda x: x),
}
NCEP_SURFACE_STEMS = {
    "2m_temperature": "air.2m",
    "10m_u_component_of_wind": "uwnd.10m",
    "10m_v_component_of_wind": "vwnd.10m",
    "mean_sea_level_pressure": "slp",
}


def ncep_psl(ds: xr.Dataset, *, time_units: str = "hours since 1800-01-01 00:00:0.0") -> dict[str, xr.Dataset]:
    """One dataset per NCEP file stem (``hgt``, ``air``, ``air.2m``, ...): ``lat``/``lon``/``level``
    (millibar, descending), latitude descending, native units, ``time_bnds``, awkward time units."""
    flipped = _flip(ds, "latitude", "level").rename({"latitude": "lat", "longitude": "lon"})
    files = {}
    for canonical in ds.data_vars:
        name, units, convert = NCEP_NAMES[str(canonical)]
        da = convert(flipped[canonical].astype("float64")).astype("float32")
        da.attrs = {"units": units, "long_name": f"NCEP {name}", "var_desc": name, "dataset": "NCEP Reanalysis"}
        out = da.rename(name).to_dataset()
        if "level" in out.dims:
            out["level"] = out["level"].astype("float32").assign_attrs(units="millibar", positive="down")
        out["lat"].attrs = {"units": "degrees_north", "long_name": "Latitude"}
        out["lon"].attrs = {"units": "degrees_east", "long_name": "Longitude"}
        step = out["time"].values[1] - out["time"].values[0] if out.sizes["time"] > 1 else np.timedelta64(6, "h")
        out["time_bnds"] = (("time", "nbnds"), np.stack([out["time"].values, out["time"].values + step], axis=1))
        out["time"].attrs = {"bounds": "time_bnds", "long_name": "Time"}
        out["time"].encoding = {"units": time_units, "calendar": "standard", "dtype": "float64"}
        out["time_bnds"].encoding = {"units": time_units, "calendar": "standard", "dtype": "float64"}
        out.attrs = {
            "Conventions": "COARDS",
            "title": "4x daily NMC reanalysis",
            "dataset_title": "NCEP-NCAR Reanalysis 1",
        }
        files[NCEP_SURFACE_STEMS.get(str(canonical), name)] = out
    return files


def wb2_zarr(ds: xr.Dataset) -> xr.Dataset:
    """The WeatherBench 2 Zarr layout: canonical names, dims (time, level, longitude, latitude)."""
    out = ds.copy()
    for name, da in out.data_vars.items():
        order = [d for d in ("time", "level", "longitude", "latitude") if d in da.dims]
        out[name] = da.transpose(*order)
    return out


def write_netcdf(datasets: dict[str, xr.Dataset], directory: Path | str, *, suffix: str = ".nc") -> list[Path]:
    """Write each dataset as ``directory/NAME.nc``; returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, ds in datasets.items():
        path = directory / f"{name}{suffix}"
        ds.to_netcdf(path)
        paths.append(path)
    return paths


# GRIB parameters: canonical name -> (shortName, typeOfLevel, level) for surface fields.
_GRIB_SURFACE = {
    "2m_temperature": ("2t", "heightAboveGround", 2),
    "10m_u_component_of_wind": ("10u", "heightAboveGround", 10),
    "10m_v_component_of_wind": ("10v", "heightAboveGround", 10),
    "mean_sea_level_pressure": ("msl", "meanSea", 0),
}


def write_era5_grib(ds: xr.Dataset, path: Path | str) -> Path:
    """Write ``ds`` as ERA5-style GRIB 2 (IEEE floats, so values survive exactly; needs eccodes).

    Latitude is written north to south and levels from the bottom up, as ECMWF does. An
    ensemble (``realization`` in ``ds``) is written as perturbed members (``number`` 0..n-1).
    """
    from data_catalog.grib_support import import_eccodes

    eccodes = import_eccodes()
    lat, lon = ds["latitude"].values, ds["longitude"].values
    keys = {
        "centre": "ecmf",
        "packingType": "grid_ieee",
        "Ni": lon.size,
        "Nj": lat.size,
        "latitudeOfFirstGridPointInDegrees": float(lat[-1]),
        "latitudeOfLastGridPointInDegrees": float(lat[0]),
        "longitudeOfFirstGridPointInDegrees": float(lon[0]),
        "longitudeOfLastGridPointInDegrees": float(lon[-1]),
        "iDirectionIncrementInDegrees": float(lon[1] - lon[0]),
        "jDirectionIncrementInDegrees": float(lat[1] - lat[0]),
    }
    members = ds["realization"].values if "realization" in ds.dims else [None]
    path = Path(path)
    with path.open("wb") as out:
        for t, member in ((t, m) for t in ds["time"].values for m in members):
            stamp = pd.Timestamp(t)
            when = {"dataDate": int(stamp.strftime("%Y%m%d")), "dataTime": stamp.hour * 100}
            if member is not None:
                when |= {
                    "productDefinitionTemplateNumber": 1,
                    "perturbationNumber": int(member),
                    "numberOfForecastsInEnsemble": len(members),
                }
            for name, da in ds.data_vars.items():
                field = da.sel(time=t) if member is None else da.sel(time=t, realization=member)
                if "level" in da.dims:
                    items = [
                        (ERA5_NAMES[name][0], "isobaricInhPa", int(lev), field.sel(level=lev))
                        for lev in ds["level"].values[::-1]
                    ]
                else:
                    items = [(*_GRIB_SURFACE[name], field)]
                for short, level_type, level, values in items:
                    handle = eccodes.codes_grib_new_from_samples("regular_ll_pl_grib2")
                    try:
                        eccodes.codes_set_key_vals(
                            handle, {**keys, **when, "typeOfLevel": level_type, "level": level, "shortName": short}
                        )
                        eccodes.codes_set_values(handle, values.values[::-1].astype("float64").ravel())
                        eccodes.codes_write(handle, out)
                    finally:
                        eccodes.codes_release(handle)
    return path
