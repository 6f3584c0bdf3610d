"""Spline prediction of the odd-indexed points of a lattice along one axis (SZ3 formulas).

A lattice line holds n points x[0..n-1] at equal spacing; the even points are known, the odd ones are
predicted. Interior points use the cubic (-x[j-3] + 9 x[j-1] + 9 x[j+1] - x[j+3]) / 16; points near the ends
use SZ3's quadratic boundary formulas; a last point with no right neighbour is extrapolated (quadratically
for cubic, linearly for linear, a copy when the line is too short). ``quintic`` (format 1.4) uses the 6-point
Lagrange formula where its stencil fits and the cubic formulas elsewhere: a third fewer residuals on smooth
fields (Gray-Scott), more on sharp ones (CTH), so the psnr tuner tries it.
All arithmetic is float64, so inputs of equal value predict that value exactly (fill values, constant fields).
"""

from __future__ import annotations

import ctypes

import numpy as np

from srnsz.compiled import load_function
from srnsz.decomposition.grid import along

KINDS = ("linear", "cubic")  # the splines the fitted kind blends; predict_odd also takes "quintic"
F64 = np.float64
MAX_DIMS = 32  # as srnsz/decomposition/_interpolation.c


def predict_odd(v: np.ndarray, axis: int, kind: str) -> np.ndarray:
    """Predict ``v[..., 1::2, ...]`` (odd indices along ``axis``) from the even ones.

    v: lattice view, any dtype, n = v.shape[axis] >= 2. Returns float64 with the shape of the odd slice.
    Linear and cubic run in C (srnsz/decomposition/_interpolation.c, the formulas of the module docstring in the
    order numpy evaluated them before: the same bits, but for the sign and payload of a NaN, which no stream sees:
    non-finite predictions are replaced before use); quintic adds its interior in numpy.
    """
    if kind == "quintic":
        return _predict_quintic(v, axis)
    if kind not in KINDS or v.ndim > MAX_DIMS:
        raise ValueError(f"cannot predict along a {v.ndim}-D view with spline kind {kind!r}")
    if v.dtype not in (np.float32, np.float64):
        v = v.astype(F64)  # exact for the integers and float16 this ever sees
    shape = list(v.shape)
    shape[axis] = v.shape[axis] // 2
    out = np.empty(shape, dtype=F64)
    dims = np.array([v.shape, v.strides, out.strides], np.int64)
    _PREDICT_KERNEL(v.ctypes.data, v.itemsize, v.ndim, dims[0].ctypes.data, dims[1].ctypes.data, axis,
                    int(kind == "cubic"), out.ctypes.data, dims[2].ctypes.data)
    return out


_PREDICT_KERNEL = load_function(
    "srnsz.decomposition._interpolation", "srnsz/decomposition/_interpolation.c", "srnsz_predict_odd",
    [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
     ctypes.c_void_p, ctypes.c_void_p], None)


def _predict_quintic(v: np.ndarray, axis: int) -> np.ndarray:
    """The quintic (3 x[j-5] - 25 x[j-3] + 150 x[j-1] + 150 x[j+1] - 25 x[j+3] + 3 x[j+5]) / 256 where the
    whole stencil is inside the line, the cubic prediction elsewhere."""
    out = predict_odd(v, axis, "cubic")
    n = v.shape[axis]
    lo, stop = 2, (n - 7) // 2 + 1 if n >= 11 else 2  # odd j = 2i + 1 with j - 5 >= 0 and j + 5 <= n - 1
    if stop > lo:
        def even(offset: int) -> np.ndarray:
            return v[along(v.ndim, axis, slice(2 * lo + offset, 2 * stop + offset, 2))]

        dst = out[along(out.ndim, axis, slice(lo, stop))]
        np.add(even(0), even(2), out=dst, dtype=F64)
        dst *= 150.0
        dst -= 25.0 * (even(-2).astype(F64) + even(4))
        dst += 3.0 * (even(-4).astype(F64) + even(6))
        dst /= 256.0
    return out
