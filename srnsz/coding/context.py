"""Contexts for the quantization codes, computed from what the decoder already holds.

The code-magnitude map keeps min(|code|, 254) (255 for escapes, 0 for anchors) for every point coded so far.
A point predicted along an axis takes its context from the magnitudes of its lattice neighbours on that axis
and of their neighbours across: quiet surroundings (all zero) mean a quiet point. Its detail is how far the
cubic and the linear spline through its neighbours disagree, in quantization bins: where they agree the data is
locally linear and the point is almost surely predicted within its bin, whatever the neighbours' codes were;
where they disagree, the sign says which way the residual of either spline tends to lean.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np

from srnsz.compiled import load_function
from srnsz.decomposition.grid import along
from srnsz.quantizer import ESCAPE

ESCAPE_MAGNITUDE = 255
# neighbour magnitude sum -> context: 0, 1, 2, 3-4, 5-8, 9-16, 17-32, 33-64, 65+
_SUM_CAP = 2 * ESCAPE_MAGNITUDE
_LUT = np.minimum(np.ceil(np.log2(np.maximum(np.arange(_SUM_CAP + 1), 1))).astype(np.int64)
                  + (np.arange(_SUM_CAP + 1) > 0), 8).astype(np.uint8)


def magnitudes(codes: np.ndarray) -> np.ndarray:
    """uint8 magnitude of int16 codes for the map (the codes' shape): min(|code|, 254), 255 for ESCAPE. In C."""
    codes = np.ascontiguousarray(codes, np.int16)
    out = np.empty(codes.shape, np.uint8)
    _MAGNITUDES_KERNEL(codes.ctypes.data, codes.size, ESCAPE, ESCAPE_MAGNITUDE, out.ctypes.data)
    return out


def neighbour_contexts(mag_view: np.ndarray, axis: int) -> np.ndarray:
    """Contexts (uint8) for the odd indices along ``axis`` of a lattice view of the magnitude map.

    Sums the magnitudes of the two neighbours along ``axis`` (the points the prediction leans on), plus half
    of the same sums one lattice step away on every other axis (all even along ``axis``, hence known).
    """
    return to_context(neighbour_sums(mag_view, axis))


def to_context(sums: np.ndarray) -> np.ndarray:
    """Context (uint8, the shape of ``sums``) of neighbour magnitude sums (uint16)."""
    sums = np.ascontiguousarray(sums, np.uint16)
    out = np.empty(sums.shape, np.uint8)
    _SUM_CONTEXTS_KERNEL(sums.ctypes.data, sums.size, _LUT.ctypes.data, _SUM_CAP, out.ctypes.data)
    return out


def multi_view_contexts(mag_views: list[np.ndarray], axes: list[int]) -> np.ndarray:
    """Contexts for the targets of a multidim pass: the neighbour sums of all its views added up (a target
    with quiet neighbours along every axis it is predicted along is quiet)."""
    return to_context(sum(neighbour_sums(v, a) for v, a in zip(mag_views, axes)))


def neighbour_sums(mag_view: np.ndarray, axis: int) -> np.ndarray:
    """uint16 magnitude sums behind :func:`neighbour_contexts` (before the context table): for each odd index along
    ``axis`` (shape: ``mag_view``'s with ``n // 2`` along ``axis``), the magnitudes of its two neighbours along
    ``axis`` (the left one twice where the last odd point has no right one); then, axis by axis (each step sees the
    previous ones), plus half the sum of the two neighbours across (edges repeated). In C
    (srnsz/coding/_details.c)."""
    nd, m = mag_view.ndim, mag_view.shape[axis] // 2
    if mag_view.dtype != np.uint8 or not 1 <= nd <= _MAX_DIMS:
        raise ValueError(f"expected a uint8 magnitude map of 1 to {_MAX_DIMS} dimensions, got {mag_view.dtype}, "
                         f"{nd} dimensions")
    even = mag_view[along(nd, axis, slice(0, 2 * m + 1, 2))]  # m or m + 1 along axis; a view, read in place
    shape = list(even.shape)
    shape[axis] = m
    out = np.empty(shape, np.uint16)
    if out.size == 0:
        return out
    layout = np.array([*shape, *even.strides], np.int64)
    if _NEIGHBOUR_SUMS_KERNEL(even.ctypes.data, nd, layout.ctypes.data, layout.ctypes.data + nd * 8, axis,
                              even.shape[axis], out.ctypes.data):
        raise MemoryError("no memory for the context sums' row scratch")  # the only failure left
    return out


_MAX_DIMS = 32  # as srnsz_neighbour_sums

# |cubic - linear| in bins (2 eb) -> 0..6 (edges 2^-3..2^2), signed -> detail 2..14 (8 = agree); not finite -> 15
N_DETAILS = 16


Splines = Callable[[int, str], np.ndarray]  # (view index, kind) -> that view's spline prediction of the targets


def curvature_details(splines: Splines, n_views: int, bin_width: float) -> np.ndarray:
    """Details (uint8, < N_DETAILS) for the targets of a pass from the spline predictions of its ``n_views``
    lattice views of the reconstruction (``splines``, as predict_odd gives them): the mean disagreement over the
    views (cubic - linear, NaN where not finite), in units of ``bin_width`` (2 eb of the level), bucketed with
    sign: 8 +- the number of edges (2^-3..2^2) at or below its magnitude, 15 where NaN. In C (srnsz/coding/_details.c;
    a numpy version took 10 passes over the data, a quarter of the fast profile's decoding)."""
    cubic = [np.ascontiguousarray(splines(i, "cubic"), np.float64) for i in range(n_views)]
    linear = [np.ascontiguousarray(splines(i, "linear"), np.float64) for i in range(n_views)]
    if any(a.shape != cubic[0].shape for a in (*cubic, *linear)):  # the kernel reads out.size values of each
        raise ValueError("the spline predictions of a pass's views must have one shape")
    out = np.empty(cubic[0].shape, np.uint8)
    pointers = np.array([a.ctypes.data for a in (*cubic, *linear)], np.uintp)
    _DETAILS_KERNEL(pointers.ctypes.data, pointers.ctypes.data + n_views * pointers.itemsize, n_views, out.size,
                    float(n_views * bin_width), out.ctypes.data)
    return out


def _kernel(symbol: str, argtypes: list, restype: type | None) -> ctypes._CFuncPtr:
    return load_function("srnsz.coding._details", "srnsz/coding/_details.c", symbol, argtypes, restype)


_P, _I = ctypes.c_void_p, ctypes.c_int64
_DETAILS_KERNEL = _kernel("srnsz_curvature_details", [_P, _P, _I, _I, ctypes.c_double, _P], None)
_SUM_CONTEXTS_KERNEL = _kernel("srnsz_sum_contexts", [_P, _I, _P, _I, _P], None)
_MAGNITUDES_KERNEL = _kernel("srnsz_code_magnitudes", [_P, _I, ctypes.c_int16, ctypes.c_uint8, _P], None)
_NEIGHBOUR_SUMS_KERNEL = _kernel("srnsz_neighbour_sums", [_P, _I, _P, _P, _I, _I, _P], ctypes.c_int)
