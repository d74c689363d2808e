"""A small spherical-harmonic transform in numpy (triangular truncation, Gaussian quadrature).

Fields are expanded as ``f(lon, mu) = sum_{m=-M..M} sum_{l>=|m|} c[l, m] P[l, m](mu) exp(i m lon)``
with ``mu = sin(latitude)`` and fully normalised associated Legendre functions,
``int_{-1}^{1} P[l, m]^2 dmu = 1`` (no Condon-Shortley phase). Only ``m >= 0`` is stored
(real fields): spectral arrays have shape ``(..., M + 1, M + 1)`` indexed ``[m, l]`` and are
zero where ``l < m``.

Analysis uses Gauss-Legendre quadrature in latitude and the FFT in longitude, exact for
band-limited fields; with ``n_lat >= (3M + 1) / 2`` and ``n_lon >= 3M + 1`` quadratic
products are alias-free (the classic spectral transform method: Orszag 1970, Eliasen et al.
1970; see Durran, *Numerical Methods for Fluid Dynamics*, 2nd ed., ch. 6.6, and Hack & Jakob
1992, NCAR/TN-343, for the vector forms used below). Synthesis can target any latitudes,
which is how model states are written directly onto equiangular output grids.

Vector fields use the scaled components ``U = u cos(lat)``, ``V = v cos(lat)``;
``H[l, m] = (1 - mu^2) dP[l, m]/dmu`` gives the meridional derivatives.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LatitudeTables(NamedTuple):
    """Legendre tables for synthesis at a set of latitudes."""

    p: np.ndarray  # (M+1, J, M+1) P[l, m](mu_j) as [m, j, l]
    h: np.ndarray  # (M+1, J, M+1) (1 - mu^2) dP/dmu
    cos_lat: np.ndarray  # (J,)
    n_lon: int


def legendre_tables(mmax: int, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised P[l, m](mu) and H[l, m](mu) = (1 - mu^2) dP/dmu, each of shape (M+1, n_mu, M+1) as [m, j, l]."""
    mu = np.asarray(mu, dtype=np.float64)
    lmax = mmax + 1  # one extra degree for the derivative recurrence
    n = mu.size
    p = np.zeros((mmax + 1, n, lmax + 1))
    sin_theta = np.sqrt(np.clip(1.0 - mu * mu, 0.0, None))
    pmm = np.full(n, np.sqrt(0.5))
    for m in range(mmax + 1):
        if m > 0:
            pmm = pmm * sin_theta * np.sqrt((2.0 * m + 1.0) / (2.0 * m))
        p[m, :, m] = pmm
        if m + 1 <= lmax:
            p[m, :, m + 1] = np.sqrt(2.0 * m + 3.0) * mu * pmm
        for l in range(m + 2, lmax + 1):
            a = np.sqrt((4.0 * l * l - 1.0) / (l * l - m * m))
            b = np.sqrt(((l - 1.0) ** 2 - m * m) / (4.0 * (l - 1.0) ** 2 - 1.0))
            p[m, :, l] = a * (mu * p[m, :, l - 1] - b * p[m, :, l - 2])
    l_idx = np.arange(lmax + 1)[None, :]
    m_idx = np.arange(mmax + 1)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        eps = np.where(
            l_idx >= m_idx, np.sqrt(np.clip(l_idx**2 - m_idx**2, 0, None) / (4.0 * l_idx**2 - 1.0)), 0.0
        )  # (M+1, L+2)
    h = np.zeros((mmax + 1, n, mmax + 1))
    for l in range(mmax + 1):
        # (1 - mu^2) dP_l/dmu = -l eps_{l+1} P_{l+1} + (l + 1) eps_l P_{l-1}
        h[:, :, l] = -l * eps[:, l + 1, None] * p[:, :, l + 1]
        if l > 0:
            h[:, :, l] += (l + 1) * eps[:, l, None] * p[:, :, l - 1]
    mask = (l_idx[:, : mmax + 1] >= m_idx)[:, None, :]
    return p[:, :, : mmax + 1] * mask, h * mask


class SphericalHarmonics:
    """Transforms between a Gaussian grid (n_lat, n_lon) and triangular spectra of truncation ``mmax``.

    ``radius`` sets the metric of the derivative operators (metres for the Earth).
    """

    def __init__(self, mmax: int, n_lat: int, n_lon: int, radius: float = 1.0):
        if n_lon < 2 * mmax + 1 or n_lat < mmax + 1:
            raise ValueError(f"grid {n_lat}x{n_lon} too coarse for truncation T{mmax}")
        self.mmax, self.n_lat, self.n_lon, self.radius = mmax, n_lat, n_lon, float(radius)
        mu, w = np.polynomial.legendre.leggauss(n_lat)
        self.mu = mu  # (J,) ascending: south to north
        self.weights = w  # (J,) sum 2
        self.lat = np.rad2deg(np.arcsin(mu))
        self.lon = np.arange(n_lon) * 360.0 / n_lon
        self.cos_lat = np.sqrt(1.0 - mu * mu)  # (J,)
        self.p, self.h = legendre_tables(mmax, mu)  # (M+1, J, M+1)
        self.grid = LatitudeTables(self.p, self.h, self.cos_lat, n_lon)
        # analysis tables with the quadrature weights folded in: (M+1, M+1, J) as [m, l, j]
        self._pw = np.ascontiguousarray((self.p * w[None, :, None]).transpose(0, 2, 1))
        self._hw = np.ascontiguousarray((self.h * (w / (1.0 - mu * mu))[None, :, None]).transpose(0, 2, 1))
        self._pw_cos2 = np.ascontiguousarray((self.p * (w / (1.0 - mu * mu))[None, :, None]).transpose(0, 2, 1))
        l = np.arange(mmax + 1)
        m = np.arange(mmax + 1)
        self.l = np.broadcast_to(l[None, :], (mmax + 1, mmax + 1))  # (M+1, M+1) degree of each [m, l]
        self.m = np.broadcast_to(m[:, None], (mmax + 1, mmax + 1))  # order of each [m, l]
        self.valid = self.l >= self.m
        self.lap_eigen = -self.l * (self.l + 1.0) / self.radius**2  # Laplacian eigenvalues
        self._im = 1j * self.m  # d/dlon
        safe = np.where(self.valid & (self.l > 0), self.lap_eigen, -1.0)
        self.inverse_lap_eigen = np.where(self.valid & (self.l > 0), 1.0 / safe, 0.0)  # 0 for the mean

    # -- the two matrix products everything is made of -----------------------------------

    @staticmethod
    def _legendre_synth(table: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
        """sum_l table[m, j, l] c[..., m, l] -> (..., J, M+1) complex."""
        lead = coeffs.shape[:-2]
        mm, ll = coeffs.shape[-2:]
        c = np.ascontiguousarray(
            np.moveaxis(coeffs.astype(np.complex128, copy=False).reshape(-1, mm, ll), 0, -1)
        )  # (M+1, L, B)
        c = c.view(np.float64).reshape(mm, ll, -1)  # (M+1, L, 2B) real and imaginary parts interleaved
        out = np.matmul(table, c)  # (M+1, J, 2B)
        out = np.ascontiguousarray(out).view(np.complex128)  # (M+1, J, B)
        return np.moveaxis(out, -1, 0).transpose(0, 2, 1).reshape(*lead, table.shape[1], mm)

    @staticmethod
    def _legendre_analysis(table: np.ndarray, fourier: np.ndarray) -> np.ndarray:
        """sum_j table[m, l, j] F[..., j, m] -> (..., M+1, L) complex."""
        lead = fourier.shape[:-2]
        jj, mm = fourier.shape[-2:]
        f = np.ascontiguousarray(
            fourier.astype(np.complex128, copy=False).reshape(-1, jj, mm).transpose(2, 1, 0)
        )  # (M+1, J, B)
        f = f.view(np.float64).reshape(mm, jj, -1)  # (M+1, J, 2B)
        out = np.ascontiguousarray(np.matmul(table, f)).view(np.complex128)  # (M+1, L, B)
        return np.moveaxis(out, -1, 0).reshape(*lead, mm, table.shape[1])

    def _to_fourier(self, grid: np.ndarray) -> np.ndarray:
        return np.fft.rfft(grid, axis=-1, norm="forward")[..., : self.mmax + 1]  # (..., J, M+1)

    def _from_fourier(self, fourier: np.ndarray, n_lon: int) -> np.ndarray:
        return np.fft.irfft(fourier, n=n_lon, axis=-1, norm="forward")

    # -- public transforms -------------------------------------------------------------------

    def analysis(self, grid: np.ndarray) -> np.ndarray:
        """(..., J, I) grid -> (..., M+1, M+1) spectrum."""
        return self._legendre_analysis(self._pw, self._to_fourier(grid))

    def synthesis(self, coeffs: np.ndarray, at: LatitudeTables | None = None) -> np.ndarray:
        """(..., M+1, M+1) spectrum -> (..., J, I) grid (default the Gaussian grid; others via ``tables_at``)."""
        at = at or self.grid
        return self._from_fourier(self._legendre_synth(at.p, coeffs), at.n_lon)

    def scaled_gradient(self, coeffs: np.ndarray, at: LatitudeTables | None = None) -> tuple[np.ndarray, np.ndarray]:
        """cos(lat) * grad f: (df/dlon / a, cos(lat) df/dlat / a), each (..., J, I)."""
        at = at or self.grid
        east = self._from_fourier(self._legendre_synth(at.p, coeffs * self._im), at.n_lon) / self.radius
        north = self._from_fourier(self._legendre_synth(at.h, coeffs), at.n_lon) / self.radius
        return east, north

    def winds_from_streamfunction(
        self, psi: np.ndarray, at: LatitudeTables | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Non-divergent wind (u, v) = k x grad psi, each (..., J, I)."""
        at = at or self.grid
        east, north = self.scaled_gradient(psi, at)
        return -north / at.cos_lat[:, None], east / at.cos_lat[:, None]

    def divergence(self, a_scaled: np.ndarray, b_scaled: np.ndarray) -> np.ndarray:
        """Spectrum of div(A, B) from Gaussian-grid A cos(lat), B cos(lat) (eastward, northward)."""
        fa = self._to_fourier(a_scaled)
        fb = self._to_fourier(b_scaled)
        out = self._legendre_analysis(self._pw_cos2, fa) * self._im - self._legendre_analysis(self._hw, fb)
        return out / self.radius

    def vorticity(self, u_scaled: np.ndarray, v_scaled: np.ndarray) -> np.ndarray:
        """Spectrum of the relative vorticity from Gaussian-grid u cos(lat), v cos(lat)."""
        return self.divergence(v_scaled, -u_scaled)

    def invert_laplacian(self, coeffs: np.ndarray) -> np.ndarray:
        """Solve lap x = coeffs with zero global mean."""
        return coeffs * self.inverse_lap_eigen

    def tables_at(self, lat_deg: np.ndarray, n_lon: int) -> LatitudeTables:
        """Tables for synthesis at other latitudes (degrees, poles excluded) and ``n_lon`` longitudes."""
        mu = np.sin(np.deg2rad(np.asarray(lat_deg, dtype=np.float64)))
        p, h = legendre_tables(self.mmax, mu)
        return LatitudeTables(p, h, np.sqrt(1.0 - mu * mu), int(n_lon))
