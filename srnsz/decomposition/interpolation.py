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

import numpy as np

from srnsz.decomposition.grid import along

KINDS = ("linear", "cubic")  # the splines the fitted kind blends; predict_odd also takes "quintic"
F64 = np.float64


def predict_odd(v: np.ndarray, axis: int, kind: str) -> np.ndarray:
    """Predict ``v[..., 1::2, ...]`` (odd indices along ``axis``) from the even ones.

    v: lattice view, any dtype, n = v.shape[axis] >= 2. Returns float64 with the shape of the odd slice.
    """
    if kind == "quintic":
        return _predict_quintic(v, axis)
    n = v.shape[axis]
    shape = list(v.shape)
    shape[axis] = n // 2
    out = np.empty(shape, dtype=F64)
    # Odd point j = 2i + 1; the vectorised range [lo, stop) of i has its whole stencil inside the line.
    if kind == "cubic":
        lo, stop = 1, (n - 5) // 2 + 1 if n >= 7 else 1
        if stop > lo:
            dst = out[along(out.ndim, axis, slice(lo, stop))]
            np.add(v[along(v.ndim, axis, slice(2 * lo, 2 * stop, 2))],
                   v[along(v.ndim, axis, slice(2 * lo + 2, 2 * stop + 2, 2))], out=dst, dtype=F64)
            dst *= 9.0
            dst -= v[along(v.ndim, axis, slice(2 * lo - 2, 2 * stop - 2, 2))]
            dst -= v[along(v.ndim, axis, slice(2 * lo + 4, 2 * stop + 4, 2))]
            dst /= 16.0
    else:
        lo, stop = 0, (n - 1) // 2
        if stop > lo:
            dst = out[along(out.ndim, axis, slice(lo, stop))]
            np.add(v[along(v.ndim, axis, slice(0, 2 * stop, 2))], v[along(v.ndim, axis, slice(2, 2 * stop + 2, 2))],
                   out=dst, dtype=F64)
            dst *= 0.5
    half = n // 2
    for i in [*range(min(lo, half)), *range(max(stop, lo), half)]:  # the points outside [lo, stop)
        _predict_boundary(v, axis, n, 2 * i + 1, kind, out[along(out.ndim, axis, i)])
    return out


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


def _predict_boundary(v: np.ndarray, axis: int, n: int, j: int, kind: str, dst: np.ndarray) -> None:
    def at(k: int) -> np.ndarray:
        return v[along(v.ndim, axis, k)].astype(F64)

    has_r1, has_l3, has_r3 = j + 1 <= n - 1, j >= 3, j + 3 <= n - 1
    if has_r1 and kind == "cubic" and has_l3 and has_r3:
        dst[...] = (-at(j - 3) + 9.0 * at(j - 1) + 9.0 * at(j + 1) - at(j + 3)) / 16.0
    elif has_r1 and kind == "cubic" and has_r3:
        dst[...] = (3.0 * at(j - 1) + 6.0 * at(j + 1) - at(j + 3)) / 8.0
    elif has_r1 and kind == "cubic" and has_l3:
        dst[...] = (-at(j - 3) + 6.0 * at(j - 1) + 3.0 * at(j + 1)) / 8.0
    elif has_r1:
        dst[...] = (at(j - 1) + at(j + 1)) * 0.5
    elif has_l3 and kind == "cubic" and j >= 5:
        dst[...] = (3.0 * at(j - 5) - 10.0 * at(j - 3) + 15.0 * at(j - 1)) / 8.0
    elif has_l3:
        dst[...] = 1.5 * at(j - 1) - 0.5 * at(j - 3)
    else:
        dst[...] = at(j - 1)
