"""Prequantization (dual quantization, cuSZ) and the Lorenzo operators on the integer grid.

Every value x is first snapped to the integer grid d = rint(x / 2eb), so the reconstruction 2eb * d is within eb
whatever predicts d; values that cannot be snapped (NaN, Inf, too large, or off after rounding to the output
dtype) are escaped, stored exactly and count as d = 0 for their neighbours. Predictors then only choose how the
integers d are coded: Lorenzo residuals are finite differences, and their inverse is a cumulative sum, so both
directions are vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAFE_MAGNITUDE = 2.0**50  # |x / 2eb| beyond this loses integer precision in float64


@dataclass(frozen=True)
class Prequantized:
    """d: int64 grid indices (0 where escaped); escaped: bool mask; raw: the escaped values, C order."""

    d: np.ndarray
    escaped: np.ndarray
    raw: np.ndarray


def prequantize(data: np.ndarray, eb: float) -> Prequantized:
    """Snap ``data`` to multiples of 2eb, checking |x - x'| <= eb in the output dtype."""
    x = data.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = x / (2 * eb)
        ok = np.isfinite(scaled) & (np.abs(scaled) < SAFE_MAGNITUDE)
        d = np.where(ok, np.rint(np.where(ok, scaled, 0.0)), 0.0).astype(np.int64)
        recon = (d * (2 * eb)).astype(data.dtype).astype(np.float64)
        ok &= np.abs(recon - x) <= eb
    d[~ok] = 0
    return Prequantized(d, ~ok, data[~ok])


def reconstruct(d: np.ndarray, eb: float, dtype: np.dtype, escaped: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """2eb * d in ``dtype`` with the escaped values put back bit for bit."""
    out = (d * (2 * eb)).astype(dtype)
    out[escaped] = raw
    return out


def difference(x: np.ndarray, layers: int) -> np.ndarray:
    """Lorenzo residual: the ``layers``-th order backward difference along every axis, zeros before the start."""
    r = x.astype(np.int64, copy=True)
    for axis in range(r.ndim):
        for _ in range(layers):
            shifted = np.zeros_like(r)
            dst = [slice(None)] * r.ndim
            src = [slice(None)] * r.ndim
            dst[axis], src[axis] = slice(1, None), slice(None, -1)
            shifted[tuple(dst)] = r[tuple(src)]
            r -= shifted
    return r


def integrate(r: np.ndarray, layers: int) -> np.ndarray:
    """Inverse of :func:`difference`: cumulative sums along every axis."""
    x = r.astype(np.int64, copy=True)
    for axis in range(x.ndim):
        for _ in range(layers):
            np.cumsum(x, axis=axis, out=x)
    return x


def integrate_block(residual: np.ndarray, d: np.ndarray, start: tuple[int, ...], layers: int) -> np.ndarray:
    """Decode one block of Lorenzo residuals given the already decoded values ``d`` before it.

    The block starting at ``start`` (shape of ``residual``) is extended by ``layers`` cells towards lower
    indices; those halo cells come from ``d`` (zero outside the array). Differencing the halo alone, putting the
    block's residuals inside and integrating gives exactly the values the global difference was taken from."""
    lo = [max(0, s - layers) for s in start]
    pad = [s - a for s, a in zip(start, lo)]
    ext_shape = tuple(p + n for p, n in zip(pad, residual.shape))
    ext = np.zeros(tuple(n + layers for n in ext_shape), dtype=np.int64)
    # Work in a frame with `layers` zero cells before the halo so outside-the-array reads are zeros.
    offset = [layers - p for p in pad]
    window = tuple(slice(o, o + n) for o, n in zip(offset, ext_shape))
    ext[window] = d[tuple(slice(a, s + n) for a, s, n in zip(lo, start, residual.shape))]
    inner = tuple(slice(o + p, o + p + n) for o, p, n in zip(offset, pad, residual.shape))
    ext[inner] = 0
    g = difference(ext, layers)
    g[inner] = residual
    return integrate(g, layers)[inner]
