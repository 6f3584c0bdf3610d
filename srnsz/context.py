"""Contexts for the quantization codes, computed from what the decoder already holds.

The code-magnitude map keeps min(|code|, 254) (255 for escapes, 0 for anchors) for every point coded so far.
A point predicted along an axis takes its context from the magnitudes of its lattice neighbours on that axis
and of their neighbours across: quiet surroundings (all zero) mean a quiet point.
"""

from __future__ import annotations

import numpy as np

from srnsz.quantizer import ESCAPE

ESCAPE_MAGNITUDE = 255
# neighbour magnitude sum -> context: 0, 1, 2, 3-4, 5-8, 9-16, 17-32, 33-64, 65+
_SUM_CAP = 2 * ESCAPE_MAGNITUDE
_LUT = np.minimum(np.ceil(np.log2(np.maximum(np.arange(_SUM_CAP + 1), 1))).astype(np.int64)
                  + (np.arange(_SUM_CAP + 1) > 0), 8).astype(np.uint8)
N_USED = int(_LUT.max()) + 1


def magnitudes(codes: np.ndarray) -> np.ndarray:
    """uint8 magnitude of int16 codes for the map."""
    mag = np.minimum(np.abs(codes.astype(np.int32)), ESCAPE_MAGNITUDE - 1).astype(np.uint8)
    mag[codes == ESCAPE] = ESCAPE_MAGNITUDE
    return mag


def neighbour_contexts(mag_view: np.ndarray, axis: int) -> np.ndarray:
    """Contexts (uint8) for the odd indices along ``axis`` of a lattice view of the magnitude map.

    Sums the magnitudes of the two neighbours along ``axis`` (the points the prediction leans on), plus half
    of the same sums one lattice step away on every other axis (all even along ``axis``, hence known).
    """
    return to_context(neighbour_sums(mag_view, axis))


def to_context(sums: np.ndarray) -> np.ndarray:
    """Context (uint8) of neighbour magnitude sums."""
    return _LUT[np.minimum(sums, _SUM_CAP)]


def multi_view_contexts(mag_views: list[np.ndarray], axes: list[int]) -> np.ndarray:
    """Contexts for the targets of a multidim pass: the neighbour sums of all its views added up (a target
    with quiet neighbours along every axis it is predicted along is quiet)."""
    return to_context(sum(neighbour_sums(v, a) for v, a in zip(mag_views, axes)))


def neighbour_sums(mag_view: np.ndarray, axis: int) -> np.ndarray:
    """uint16 magnitude sums behind :func:`neighbour_contexts` (before the context table)."""
    n = mag_view.shape[axis]
    m = n // 2
    key = [slice(None)] * mag_view.ndim
    key[axis] = slice(0, 2 * m + 1, 2)
    even = mag_view[tuple(key)].astype(np.uint16)  # (.., m or m+1, ..)
    if even.shape[axis] == m:  # last odd point has no right neighbour: repeat the left one
        pad = [(0, 0)] * even.ndim
        pad[axis] = (0, 1)
        even = np.pad(even, pad, mode="edge")
    lo = [slice(None)] * even.ndim
    hi = [slice(None)] * even.ndim
    lo[axis], hi[axis] = slice(0, m), slice(1, m + 1)
    total = even[tuple(lo)] + even[tuple(hi)]
    for other in range(mag_view.ndim):
        if other == axis or total.shape[other] < 2:
            continue
        padded = np.pad(total, [(1, 1) if a == other else (0, 0) for a in range(total.ndim)], mode="edge")
        a = [slice(None)] * total.ndim
        b = [slice(None)] * total.ndim
        a[other], b[other] = slice(0, -2), slice(2, None)
        total = total + (padded[tuple(a)] + padded[tuple(b)]) // 2
    return total
