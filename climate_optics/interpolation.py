"""Bilinear and bicubic interpolation between regular latitude-longitude grids, as matrices.

Interpolation on a lat-lon grid is separable, so it is two small matrices: a field
``x`` (..., n_lat_src, n_lon_src) becomes ``W_lat @ x @ W_lon.T`` (..., n_lat_dst, n_lon_dst).
Longitude wraps around the globe (for a global source); latitude beyond the outermost source
rows takes the edge value. ``linear`` is the usual bilinear baseline of downscaling studies;
``cubic`` uses the Keys (1981) cubic convolution kernel (a = -0.5), the usual "bicubic".
``conservative`` treats the source values as what they are after conservative coarsening,
area-weighted means over blocks of destination cells, and reconstructs a field whose block
means reproduce them exactly: ``P (A P)^-1`` with ``A`` the block mean and ``P`` band-limited
trigonometric interpolation along complete circles (no spectral images above the source's
Nyquist wavenumber): circles of latitude, and on a global grid whose latitude cells tile the
sphere the great circles through the poles (``great_circle_matrices``); linear interpolation
otherwise (extrapolated over the outer half cells). It needs each source cell to hold a whole
number of destination cells.
Works on numpy arrays and on torch tensors (see ``apply``).
"""

from __future__ import annotations

import numpy as np
import torch

from data_catalog.regrid import cell_area_weights

METHODS = ("linear", "cubic", "conservative")


def _keys_cubic(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys cubic convolution kernel at distances ``t`` (in grid steps)."""
    t = np.abs(t)
    near = (a + 2) * t**3 - (a + 3) * t**2 + 1
    far = a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _fractional_index(src: np.ndarray, dst: np.ndarray, periodic: bool) -> np.ndarray:
    """Position of every ``dst`` coordinate in units of source grid steps (float index)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if periodic:
        # Unroll one period on each side so np.interp sees a monotone axis.
        ext = np.concatenate([src[-1:] - 360.0, src, src[:1] + 360.0])
        idx = np.arange(-1, src.size + 1, dtype=np.float64)
        return np.interp(np.mod(dst - src[0], 360.0) + src[0], ext, idx)
    return np.interp(dst, src, np.arange(src.size, dtype=np.float64))  # clamps outside


def _trigonometric_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(n_dst, n_src) band-limited interpolation from ``n`` equally spaced points on a circle (degrees)."""
    n = len(src)
    theta = np.deg2rad(
        np.asarray(dst, dtype=np.float64)[:, None] - np.asarray(src, dtype=np.float64)[None, :]
    )  # (m, n)
    k = np.arange(1, (n - 1) // 2 + 1)  # wavenumbers below Nyquist
    kernel = 1.0 + 2.0 * np.cos(theta[..., None] * k).sum(axis=-1)  # Dirichlet kernel
    if n % 2 == 0:
        kernel += np.cos(theta * (n // 2))  # the Nyquist wavenumber, once
    return kernel / n


def _linear_extrapolating_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(n_dst, n_src) linear interpolation that continues the end slopes beyond the outermost points."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    n = len(src)
    if n == 1:
        return np.ones((len(dst), 1))
    pos = np.interp(dst, src, np.arange(n, dtype=np.float64))
    pos = np.where(dst < src[0], (dst - src[0]) / (src[1] - src[0]), pos)
    pos = np.where(dst > src[-1], n - 1 + (dst - src[-1]) / (src[-1] - src[-2]), pos)
    base = np.clip(np.floor(pos), 0, n - 2).astype(int)
    t = pos - base
    matrix = np.zeros((len(dst), n))
    rows = np.arange(len(dst))
    matrix[rows, base] = 1.0 - t
    matrix[rows, base + 1] += t
    return matrix


def conservative_matrix(
    src: np.ndarray, dst: np.ndarray, *, periodic: bool, weights: np.ndarray | None = None
) -> np.ndarray:
    """(n_dst, n_src) reconstruction whose ``weights``-weighted block means give back the source values.

    Destination cells ``f*i ... f*i + f - 1`` (``f = n_dst / n_src``) make source cell ``i``;
    ``weights`` (n_dst,) are their relative areas (equal if None).
    """
    n, m = len(src), len(dst)
    if n == 0 or m % n:
        raise ValueError(f"conservative interpolation needs whole blocks: {m} destination cells for {n} source cells")
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    blocks = w.reshape(n, m // n)
    mean = np.zeros((n, m))
    mean[np.repeat(np.arange(n), m // n), np.arange(m)] = (
        blocks / blocks.sum(axis=1, keepdims=True)
    ).ravel()  # A (n, m)
    spread = _trigonometric_matrix(src, dst) if periodic else _linear_extrapolating_matrix(src, dst)  # P (m, n)
    return spread @ np.linalg.inv(mean @ spread)


def _is_pole_to_pole(lat: np.ndarray) -> bool:
    """A regular latitude axis of cell centres whose cells tile -90..90 exactly (no point on a pole)."""
    lat = np.asarray(lat, dtype=np.float64)
    if lat.size < 2:
        return False
    step = np.diff(lat)
    spacing = abs(step[0])
    return bool(
        np.allclose(step, step[0], atol=1e-6 * spacing)
        and abs(lat.size * spacing - 180.0) < 1e-6 * 180.0
        and abs(abs(lat).max() - (90.0 - spacing / 2)) < 1e-6 * spacing
    )


def great_circle_matrices(
    src_lat: np.ndarray, dst_lat: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray | None:
    """Conservative meridional reconstruction along great circles through the poles: (2, n_dst, n_src), or None.

    A meridian and the one half a turn away form a circle of ``2 n`` equally spaced cell
    centres when the latitude cells tile the sphere from pole to pole; along it the
    reconstruction is band-limited like the zonal one (``conservative_matrix`` with periodic
    trigonometric interpolation). Returns ``[W_near, W_far]``: the destination column at
    longitude ``lon`` is ``W_near @ column(lon) + W_far @ column(lon + 180)``. None when
    either axis does not tile the sphere (use the linear reconstruction then).
    """
    if not (_is_pole_to_pole(src_lat) and _is_pole_to_pole(dst_lat)):
        return None
    src, dst = np.asarray(src_lat, dtype=np.float64), np.asarray(dst_lat, dtype=np.float64)
    n, m = src.size, dst.size
    # Positions on the circle (degrees): up one meridian from the south pole, down the other.
    src_circle = np.concatenate([src + 90.0, 270.0 - src])
    dst_circle = np.concatenate([dst + 90.0, 270.0 - dst])
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    circle = conservative_matrix(src_circle, dst_circle, periodic=True, weights=np.concatenate([w, w]))  # (2m, 2n)
    return np.stack([circle[:m, :n], circle[:m, n:]])


def interp_matrix(
    src: np.ndarray, dst: np.ndarray, *, periodic: bool, method: str = "linear", weights: np.ndarray | None = None
) -> np.ndarray:
    """(n_dst, n_src) matrix interpolating values on ``src`` coordinates to ``dst`` coordinates.

    ``weights``: relative areas of the destination cells, used by ``conservative`` only.
    """
    if method not in METHODS:
        raise ValueError(f"interpolation method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "conservative":
        return conservative_matrix(src, dst, periodic=periodic, weights=weights)
    n = len(src)
    pos = _fractional_index(src, dst, periodic)  # (n_dst,)
    base = np.floor(pos).astype(int)
    offsets = np.array([0, 1]) if method == "linear" else np.array([-1, 0, 1, 2])
    cols = base[:, None] + offsets[None, :]  # (n_dst, k)
    dist = pos[:, None] - cols  # (n_dst, k)
    weights = np.clip(1.0 - np.abs(dist), 0.0, None) if method == "linear" else _keys_cubic(dist)
    cols = np.mod(cols, n) if periodic else np.clip(cols, 0, n - 1)
    matrix = np.zeros((len(dst), n))
    np.add.at(matrix, (np.repeat(np.arange(len(dst)), cols.shape[1]), cols.ravel()), weights.ravel())
    return matrix


def grid_matrices(
    src_lat: np.ndarray,
    src_lon: np.ndarray,
    dst_lat: np.ndarray,
    dst_lon: np.ndarray,
    *,
    method: str = "linear",
    great_circles: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(W_lat (n_lat_dst, n_lat_src), W_lon (n_lon_dst, n_lon_src)); longitude wraps if the source is global.

    ``conservative`` weights the destination rows by their cell areas and, on a global grid
    whose latitude cells tile the sphere, reconstructs along great circles through the poles
    (``W_lat`` is then a (2, n_lat_dst, n_lat_src) pair, see ``great_circle_matrices``) unless
    ``great_circles`` is False.
    """
    src_lon = np.asarray(src_lon, dtype=np.float64)
    step = np.median(np.diff(src_lon)) if src_lon.size > 1 else 360.0
    periodic = bool(abs(src_lon.size * step - 360.0) < 1e-6 * 360.0)
    w_lon = interp_matrix(src_lon, dst_lon, periodic=periodic, method=method)
    if method != "conservative":
        return interp_matrix(src_lat, dst_lat, periodic=False, method=method), w_lon

    lat_weights = cell_area_weights(np.asarray(dst_lat, dtype=np.float64))
    half_turn = great_circles and periodic and len(dst_lon) % 2 == 0
    w_lat = great_circle_matrices(src_lat, dst_lat, lat_weights) if half_turn else None
    if w_lat is None:
        w_lat = interp_matrix(src_lat, dst_lat, periodic=False, method=method, weights=lat_weights)
    return w_lat, w_lon


def apply(x, w_lat, w_lon):
    """Interpolate the last two axes of ``x`` (numpy array or torch tensor): ``W_lat @ x @ W_lon.T``.

    A ``w_lat`` pair (2, n_lat_dst, n_lat_src) from ``great_circle_matrices`` adds the far
    meridians: ``W_near @ X + W_far @ X(lon + 180)`` with ``X = x @ W_lon.T``. Computed with
    torch either way (numpy's stacked matmul is slow for many small matrices).
    """

    is_numpy = not isinstance(x, torch.Tensor)
    xt = torch.from_numpy(np.ascontiguousarray(x)) if is_numpy else x
    wl = torch.as_tensor(
        np.asarray(w_lat) if not isinstance(w_lat, torch.Tensor) else w_lat, dtype=xt.dtype, device=xt.device
    )
    wn = torch.as_tensor(
        np.asarray(w_lon) if not isinstance(w_lon, torch.Tensor) else w_lon, dtype=xt.dtype, device=xt.device
    )
    if wl.ndim == 2:
        out = wl @ xt @ wn.T  # (..., n_lat_dst, n_lon_dst)
    else:
        zonal = xt @ wn.T  # (..., n_lat_src, n_lon_dst)
        out = wl[0] @ zonal + wl[1] @ torch.roll(zonal, shifts=-(zonal.shape[-1] // 2), dims=-1)
    return out.numpy() if is_numpy else out
