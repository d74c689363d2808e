"""Cheap value checks on a canonical dataset at the point where data enters.

All-NaN fields: a variable (or one of its levels) can be entirely NaN only if its first and
last time steps are; those two slices are read (a few chunks), and only when both are
entirely NaN is the full, dask-reduced confirmation run. A field that is NaN only in the
middle of the record is not detected here (ingest sees it when computing statistics).
"""

from __future__ import annotations

import dask
import numpy as np
import xarray as xr

from data_catalog.errors import DataInputError
from data_catalog.schema import LEVEL, TIME


def check_not_all_nan(ds: xr.Dataset, source: str) -> None:
    """Raise DataInputError naming the variable (and level) whose values are all NaN."""
    samples = {}
    for name, da in ds.data_vars.items():
        sample = da.isel({TIME: [0, -1]}) if TIME in da.dims else da
        samples[name] = sample.isnull().all([d for d in sample.dims if d != LEVEL])
    computed = dict(zip(samples, dask.compute(*samples.values())))
    suspects = [name for name, flags in computed.items() if bool(np.any(flags.values))]
    for name in suspects:
        da = ds[name]
        empty = da.isnull().all([d for d in da.dims if d != LEVEL]).compute()
        if bool(np.any(empty.values)):
            where = ""
            if LEVEL in empty.dims:
                levels = empty[LEVEL].values[empty.values]
                where = f" at level(s) {', '.join(str(x) for x in levels)} hPa"
            raise DataInputError(f"all values are NaN{where}; expected a field with data",
                                 source=source, variable=str(name))
