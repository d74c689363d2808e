"""The forecast store writer: allocate once, write step by step, rename into place when complete.

Layout (docs/architecture.md): every variable has dims
``(time, prediction_timedelta, [realization,] [level,] latitude, longitude)`` with ``time`` the
initialisation time, chunked ``(1, 1, all, ...)``, in physical units, with provenance attributes
and CF attributes (``data_catalog.cf``: ``time`` is the ``forecast_reference_time``,
``prediction_timedelta`` the ``forecast_period``).
Channels are named ``"variable"`` or ``"variable@level"``; variables on levels share one ``level``
coordinate (the union of their levels; levels a variable lacks stay NaN).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from climate_optics.io.channels import parse_channel
from data_catalog.cf import cf_attributes
from data_catalog.faults import pause_point
from data_catalog.schema import VARIABLES
from data_catalog.store import atomic_store, check_target, consolidate


class ForecastStoreWriter:
    """``with ForecastStoreWriter(path, ...) as w: w.write(i_time, i_lead, fields)``.

    ``fields`` is ``(C, H, W)`` (or ``(M, C, H, W)`` with ``realizations=M``) in channel order.
    Nothing appears at ``path`` unless the block completes; an existing store is only replaced
    with ``overwrite=True``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        channels: Sequence[str],
        init_times: np.ndarray,
        lead_times: np.ndarray,
        latitude: np.ndarray,
        longitude: np.ndarray,
        realizations: int | None = None,
        attrs: dict[str, Any] | None = None,
        overwrite: bool = False,
    ):
        self.path = check_target(path, overwrite=overwrite)
        self.overwrite = overwrite
        self.channels = list(channels)
        self.init_times = np.asarray(init_times, dtype="datetime64[ns]")
        self.lead_times = np.asarray(lead_times, dtype="timedelta64[ns]")
        self.latitude, self.longitude = np.asarray(latitude), np.asarray(longitude)
        self.realizations = realizations
        self.attrs = dict(attrs or {})
        parsed = [parse_channel(c) for c in self.channels]
        self.levels = sorted({level for _, level in parsed if level is not None})
        self.variables: dict[str, list[tuple[int, int | None]]] = {}  # name -> [(channel index, level index)]
        for index, (var, level) in enumerate(parsed):
            self.variables.setdefault(var, []).append((index, None if level is None else self.levels.index(level)))
        self._stack: ExitStack | None = None
        self._group = None

    def dims(self, name: str) -> tuple[str, ...]:
        has_level = self.variables[name][0][1] is not None
        return (
            "time",
            "prediction_timedelta",
            *(("realization",) if self.realizations else ()),
            *(("level",) if has_level else ()),
            "latitude",
            "longitude",
        )

    def _template(self):

        sizes = {
            "time": self.init_times.size,
            "prediction_timedelta": self.lead_times.size,
            "realization": self.realizations or 0,
            "level": len(self.levels),
            "latitude": self.latitude.size,
            "longitude": self.longitude.size,
        }
        data = {}
        for name in self.variables:
            dims = self.dims(name)
            shape = tuple(sizes[d] for d in dims)
            chunks = (1, 1) + shape[2:]
            attrs = (
                {"units": VARIABLES[name].units, "long_name": VARIABLES[name].long_name} if name in VARIABLES else {}
            )
            data[name] = xr.Variable(dims, da.full(shape, np.nan, chunks=chunks, dtype=np.float32), attrs)
        coords: dict[str, Any] = {
            "time": self.init_times,
            "prediction_timedelta": self.lead_times,
            "latitude": ("latitude", self.latitude, {"units": "degrees_north"}),
            "longitude": ("longitude", self.longitude, {"units": "degrees_east"}),
        }
        if self.levels:
            coords["level"] = ("level", np.asarray(self.levels, dtype=np.int64), {"units": "hPa"})
        if self.realizations:
            coords["realization"] = np.arange(self.realizations)
        return cf_attributes(xr.Dataset(data, coords=coords, attrs=self.attrs), forecast=True)  # time: initialisation

    def __enter__(self) -> "ForecastStoreWriter":

        self._stack = ExitStack()
        tmp = self._stack.enter_context(atomic_store(self.path, overwrite=self.overwrite))
        try:
            ds = self._template()
            ds.to_zarr(
                tmp,
                compute=False,
                consolidated=False,
                encoding={n: {"chunks": ds[n].data.chunksize} for n in ds.data_vars},
            )
            self._group = zarr.open_group(str(tmp), mode="r+")
            self._tmp = tmp
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def write(self, time_index: int, lead_index: int, fields: np.ndarray) -> None:
        """Write one (init time, lead) field set: (C, H, W), or (M, C, H, W) for ensembles."""
        fields = np.asarray(fields, dtype=np.float32)
        for name, members in self.variables.items():
            channel_index = [c for c, _ in members]
            block = fields[..., channel_index, :, :]  # ([M,] C_var, H, W)
            level_index = [lev for _, lev in members]
            if level_index[0] is None:
                self._group[name][time_index, lead_index] = block[..., 0, :, :]
            else:
                full = np.full(block.shape[:-3] + (len(self.levels),) + block.shape[-2:], np.nan, dtype=np.float32)
                full[..., level_index, :, :] = block
                self._group[name][time_index, lead_index] = full
        pause_point("forecast-step", self.path)  # kill tests stop a writer here

    def __exit__(self, *exc: Any) -> bool:
        stack, self._stack, self._group = self._stack, None, None
        assert stack is not None
        if exc[0] is None:
            consolidate(self._tmp)
        return bool(stack.__exit__(*exc))
