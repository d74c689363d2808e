"""The zonal energy spectrum of a field, per latitude (a diagnostic, not a skill score)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from climate_optics.evaluation.metric_base import is_dataset
from climate_optics.evaluation.spatial import whole_core
from data_catalog.errors import DataInputError
from data_catalog.schema import EARTH_RADIUS, LATITUDE, LONGITUDE


@dataclass
class ZonalEnergySpectrum:
    """Energy spectrum along circles of latitude, by zonal wavenumber.

    With F[k] the DFT of the L values on a circle (normalised by 1/L) and C its
    circumference, S[k] = C |F[k]|^2 for k = 0 and the Nyquist wavenumber (even L), and
    2 C |F[k]|^2 otherwise. Then sum_k S[k] = (C / L) sum_l f[l]^2 exactly (Parseval);
    WeatherBench 2 doubles the Nyquist term too. Coordinates ``wavelength`` [m] and
    ``frequency`` [1/m] vary with latitude.
    """

    earth_radius: float = EARTH_RADIUS

    def compute(self, data: Any) -> Any:

        if is_dataset(data):
            return xr.Dataset({v: self.compute(data[v]) for v in data.data_vars})
        if LONGITUDE not in data.dims or LATITUDE not in data.dims:
            raise DataInputError("zonal_energy_spectrum needs latitude and longitude dimensions", variable=data.name)
        n = data.sizes[LONGITUDE]
        n_k = n // 2 + 1
        factor = np.full(n_k, 2.0)
        factor[0] = 1.0
        if n % 2 == 0:
            factor[-1] = 1.0

        def power(x: np.ndarray) -> np.ndarray:
            fk = np.fft.rfft(x, axis=-1, norm="forward")  # (..., K)
            return (fk.real**2 + fk.imag**2) * factor.astype(fk.real.dtype)

        spec = xr.apply_ufunc(
            power,
            whole_core(data, [LONGITUDE]),
            input_core_dims=[[LONGITUDE]],
            output_core_dims=[["zonal_wavenumber"]],
            dask="parallelized",
            output_dtypes=[np.result_type(data.dtype, np.float32)],
            dask_gufunc_kwargs={"output_sizes": {"zonal_wavenumber": n_k}},
        )
        circumference = 2 * np.pi * self.earth_radius * np.cos(np.deg2rad(data[LATITUDE]))
        frequency = xr.DataArray(np.fft.rfftfreq(n), dims="zonal_wavenumber") / (circumference / n)
        spec = (spec * circumference).assign_coords(zonal_wavenumber=np.arange(n_k))
        return spec.assign_coords(
            frequency=frequency.assign_attrs(units="1 / m"), wavelength=(1 / frequency).assign_attrs(units="m")
        ).rename(data.name)
