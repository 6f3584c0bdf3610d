"""The C kernels of the contexts (srnsz/coding/_details.c: neighbour sums, their contexts) and of the quantizer
(srnsz/_quantizer.c) give the bits of the numpy code they replaced, kept here as the oracles: streams written
before them must decode, and the same input must write the same stream."""

from __future__ import annotations

import numpy as np
import pytest

from srnsz.coding.context import (
    ESCAPE_MAGNITUDE,
    magnitudes,
    multi_view_contexts,
    neighbour_contexts,
    neighbour_sums,
)
from srnsz.decomposition.grid import along
from srnsz.quantizer import ESCAPE, RADIUS, dequantize, quantize, reconstruct

_SUM_CAP = 2 * ESCAPE_MAGNITUDE
_LUT = np.minimum(np.ceil(np.log2(np.maximum(np.arange(_SUM_CAP + 1), 1))).astype(np.int64)
                  + (np.arange(_SUM_CAP + 1) > 0), 8).astype(np.uint8)


def numpy_neighbour_sums(mag_view: np.ndarray, axis: int) -> np.ndarray:
    """neighbour_sums as numpy computed it before the C kernel."""
    nd, m = mag_view.ndim, mag_view.shape[axis] // 2
    even = mag_view[along(nd, axis, slice(0, 2 * m + 1, 2))].astype(np.uint16)
    right = even[along(nd, axis, slice(1, m + 1))]
    if right.shape[axis] < m:
        right = np.concatenate([right, even[along(nd, axis, slice(m - 1, m))]], axis=axis)
    total = even[along(nd, axis, slice(0, m))] + right
    for other in range(nd):
        if other == axis or total.shape[other] < 2:
            continue
        head, tail = along(nd, other, slice(None, -1)), along(nd, other, slice(1, None))
        first, last = along(nd, other, slice(0, 1)), along(nd, other, slice(-1, None))
        across = np.empty_like(total)
        across[tail] = total[head]
        across[first] = total[first]
        across[head] += total[tail]
        across[last] += total[last]
        across //= 2
        total += across
    return total


def numpy_magnitudes(codes: np.ndarray) -> np.ndarray:
    mag = np.minimum(np.abs(codes.astype(np.int32)), ESCAPE_MAGNITUDE - 1).astype(np.uint8)
    mag[codes == ESCAPE] = ESCAPE_MAGNITUDE
    return mag


SHAPES = [(1,), (2,), (9,), (10,), (1, 7), (6, 1), (5, 8), (9, 11), (3, 4, 5), (4, 1, 6), (7, 6, 9), (2, 3, 4, 5)]


@pytest.mark.parametrize("shape", SHAPES)
def test_neighbour_sums_and_contexts_match_numpy_on_strided_views(shape):
    rng = np.random.default_rng(len(shape) * 100 + sum(shape))
    # magnitude maps: mostly quiet, some large and escaped points (sums up to the cap and past it)
    full = np.where(rng.random(tuple(2 * n + 1 for n in shape)) < 0.6, 0,
                    rng.choice([1, 2, 3, 7, 30, 254, 255], tuple(2 * n + 1 for n in shape))).astype(np.uint8)
    lattices = [full[tuple(slice(0, n) for n in shape)],  # contiguous-ish slice
                full[tuple(slice(1, None, 2) for _ in shape)][tuple(slice(0, n) for n in shape)]]  # strided
    for mag_view in lattices:
        for axis in range(len(shape)):
            expected = numpy_neighbour_sums(mag_view, axis)
            got = neighbour_sums(mag_view, axis)
            assert got.dtype == np.uint16 and got.shape == expected.shape
            assert np.array_equal(got, expected)
            assert np.array_equal(neighbour_contexts(mag_view, axis), _LUT[np.minimum(expected, _SUM_CAP)])
    if len(shape) >= 2:  # a multidim pass: one view per axis it is predicted along, each with the targets' shape
        views = [rng.integers(0, 256, tuple(2 * n + 1 if k == axis else n for k, n in enumerate(shape)))
                 .astype(np.uint8) for axis in (0, 1)]
        expected = numpy_neighbour_sums(views[0], 0) + numpy_neighbour_sums(views[1], 1)
        assert np.array_equal(multi_view_contexts(views, [0, 1]), _LUT[np.minimum(expected, _SUM_CAP)])


def test_neighbour_sums_reject_a_map_of_another_dtype_or_too_many_dimensions():
    with pytest.raises(ValueError, match="uint8"):
        neighbour_sums(np.zeros((4, 4), np.uint16), 0)
    with pytest.raises(ValueError, match="1 to 32 dimensions"):
        neighbour_sums(np.zeros((1,) * 33, np.uint8), 0)


def test_magnitudes_match_numpy_for_every_code():
    codes = np.arange(-32768, 32768).astype(np.int16)
    assert np.array_equal(magnitudes(codes), numpy_magnitudes(codes))
    strided = codes[::7]  # a non-contiguous input
    assert np.array_equal(magnitudes(strided), numpy_magnitudes(strided))


def numpy_quantize(x: np.ndarray, pred: np.ndarray, eb: float) -> tuple[np.ndarray, np.ndarray]:
    """quantize (nearest rounding) as numpy computed it before the C kernel: codes and reconstruction."""
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.rint((x - pred) / (2.0 * eb))
        ok = np.abs(q) <= RADIUS
        q[~ok] = 0
        codes = q.astype(np.int16)
        recon = (pred + codes * (2.0 * eb)).astype(x.dtype)
        ok &= np.abs(x.astype(np.float64) - recon) <= eb
    codes[~ok] = ESCAPE
    recon[~ok] = x[~ok]
    return codes, recon


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eb", [1e-3, 0.5, 3e-9, 1e30])
def test_quantize_and_reconstruct_match_numpy(dtype, eb):
    rng = np.random.default_rng(7)
    n = 5000
    pred = rng.normal(0, 10, n) * 10.0 ** rng.integers(-3, 4, n)
    x = (pred + rng.normal(0, 4 * eb, n) * 10.0 ** rng.integers(-1, 6, n)).astype(dtype)
    # half-way residuals (rint rounds them to even), the code radius's edges, NaN, infinities, huge values
    x[:8] = (pred[:8] + np.array([0.5, 1.5, 2.5, -0.5, -1.5, RADIUS, RADIUS + 1, -RADIUS - 1]) * 2 * eb).astype(dtype)
    x[8:14] = np.array([np.nan, np.inf, -np.inf, np.finfo(dtype).max, -np.finfo(dtype).max, 0.0], dtype)
    pred[14:17] = [np.nan, np.inf, 1e300]
    codes, recon = numpy_quantize(x, pred, eb)
    q = quantize(x, pred, eb)
    assert np.array_equal(q.codes, codes)
    assert np.array_equal(q.recon, recon, equal_nan=True) and q.recon.dtype == x.dtype
    assert np.array_equal(q.escaped, x[codes == ESCAPE], equal_nan=True)
    assert (codes == ESCAPE).any() and (codes != ESCAPE).any()
    back = reconstruct(pred, q.codes, eb, np.dtype(dtype), q.escaped)
    assert np.array_equal(back, recon, equal_nan=True)
    plain = codes != ESCAPE
    with np.errstate(invalid="ignore", over="ignore"):
        expected = (pred[plain] + codes[plain] * (2.0 * eb)).astype(dtype)
    assert np.array_equal(dequantize(pred[plain], codes[plain], eb, np.dtype(dtype)), expected, equal_nan=True)
