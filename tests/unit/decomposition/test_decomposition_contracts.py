"""Contracts of the decomposition stage: splines, traversal plans, blend weights."""

from __future__ import annotations

import numpy as np
import pytest

from srnsz.decomposition.grid import TRAVERSALS, make_plan
from srnsz.decomposition.interpolation import KINDS, predict_odd


@pytest.mark.parametrize("n", range(2, 20))
def test_splines_are_exact_on_their_polynomials(n):
    x = np.arange(n, dtype=np.float64)
    np.testing.assert_allclose(predict_odd(2 * x + 1, 0, "linear")[: (n - 1) // 2], (2 * x + 1)[1::2][: (n - 1) // 2])
    if n >= 5:
        cube = x**3 - 2 * x**2
        interior = slice(1, (n - 5) // 2 + 1)
        np.testing.assert_allclose(predict_odd(cube, 0, "cubic")[interior], cube[1::2][interior])


@pytest.mark.parametrize("kind", KINDS)
def test_spline_along_each_axis_has_odd_shape(kind):
    v = np.random.default_rng(0).random((5, 8, 3))
    for axis in range(3):
        expected = list(v.shape)
        expected[axis] //= 2
        assert predict_odd(v, axis, kind).shape == tuple(expected)


def test_constant_lines_predict_exactly():
    v = np.full(11, 1.0000000200408773e20, dtype=np.float32)
    for kind in KINDS:
        assert (predict_odd(v, 0, kind) == np.float64(v[0])).all()


@pytest.mark.parametrize("traversal", TRAVERSALS)
def test_plan_visits_every_point_once_after_its_neighbours(traversal):
    for shape in [(1,), (9,), (5, 1, 7), (33, 17), (6, 5, 4, 3), (17, 9, 12)]:
        plan = make_plan(shape, anchor_stride=4, traversal=traversal)
        seen = np.zeros(shape, np.int32)
        seen[plan.anchor_key] += 1
        for p in plan.passes():
            targets = None
            for key, axis in p.views:
                view = seen[key]
                odd = [slice(None)] * len(shape)
                even = [slice(None)] * len(shape)
                odd[axis], even[axis] = slice(1, None, 2), slice(0, None, 2)
                assert (view[tuple(even)] == 1).all()  # every view predicts from known points only
                mine = np.zeros(shape, bool)
                mine[key][tuple(odd)] = True
                assert targets is None or (mine == targets).all()  # all views mean the same targets
                targets = mine
            seen[targets] += 1
        assert (seen == 1).all(), shape


def test_blend_weights_sum_to_one_on_the_grid_and_pick_the_better_axis():
    from srnsz.decomposition.blend import choose_weights, snap, valid_weights

    for raw in ([1, 0, 0], [0.3, 0.3, 0.4], [2.0, -1.0], [0.1, 0.1, 0.1, 0.7]):
        w = snap(np.array(raw, float))
        assert valid_weights(list(w), len(raw)) and sum(w) == 1.0
    assert not valid_weights([0.5, 0.25], 2) and not valid_weights([0.3, 0.7], 2) and not valid_weights("x", 1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=1000)
    good, bad = x + 0.01 * rng.normal(size=1000), x + rng.normal(size=1000)
    samples = lambda: iter([(np.stack([bad, good], 1), x)])  # noqa: E731
    assert choose_weights(samples, 2)[1] > 0.9


def test_quintic_spline_reproduces_quintics_inside_and_is_cubic_near_the_ends():
    from srnsz.decomposition.interpolation import predict_odd

    t = np.arange(41.0)
    poly = 1e-4 * t**5 - 0.02 * t**3 + t - 4
    lines = np.stack([poly, 2 * poly])
    quintic, cubic = predict_odd(lines, 1, "quintic"), predict_odd(lines, 1, "cubic")
    inside = slice(2, (41 - 7) // 2 + 1)  # odd j = 2i + 1 with j - 5 >= 0 and j + 5 <= 40
    assert np.allclose(quintic[:, inside], lines[:, 1::2][:, inside], rtol=0, atol=1e-9)
    assert not np.allclose(cubic[:, inside], lines[:, 1::2][:, inside], rtol=0, atol=1e-3)
    outside = np.ones(quintic.shape[1], bool)
    outside[inside] = False
    assert np.array_equal(quintic[:, outside], cubic[:, outside])
    for n in (2, 3, 6, 10, 11, 12):  # short lines: the cubic (boundary) formulas throughout
        assert predict_odd(lines[:, :n], 1, "quintic").shape == cubic[:, : n // 2].shape
    assert np.array_equal(predict_odd(np.full((3, 30), 0.1, np.float32), 1, "quintic"),
                          np.full((3, 15), np.float32(0.1), np.float64))  # constants stay exact


def numpy_predict_odd(v: np.ndarray, axis: int, kind: str) -> np.ndarray:
    """predict_odd as numpy computed it before the C kernel (the bits the streams were written with)."""
    from srnsz.decomposition.grid import along

    f64 = np.float64
    n = v.shape[axis]
    shape = list(v.shape)
    shape[axis] = n // 2
    out = np.empty(shape, dtype=f64)
    if kind == "cubic":
        lo, stop = 1, (n - 5) // 2 + 1 if n >= 7 else 1
        if stop > lo:
            dst = out[along(out.ndim, axis, slice(lo, stop))]
            np.add(v[along(v.ndim, axis, slice(2 * lo, 2 * stop, 2))],
                   v[along(v.ndim, axis, slice(2 * lo + 2, 2 * stop + 2, 2))], out=dst, dtype=f64)
            dst *= 9.0
            dst -= v[along(v.ndim, axis, slice(2 * lo - 2, 2 * stop - 2, 2))]
            dst -= v[along(v.ndim, axis, slice(2 * lo + 4, 2 * stop + 4, 2))]
            dst /= 16.0
    else:
        lo, stop = 0, (n - 1) // 2
        if stop > lo:
            dst = out[along(out.ndim, axis, slice(lo, stop))]
            np.add(v[along(v.ndim, axis, slice(0, 2 * stop, 2))], v[along(v.ndim, axis, slice(2, 2 * stop + 2, 2))],
                   out=dst, dtype=f64)
            dst *= 0.5

    def at(k: int) -> np.ndarray:
        return v[along(v.ndim, axis, k)].astype(f64)

    for i in [*range(min(lo, n // 2)), *range(max(stop, lo), n // 2)]:
        j, dst = 2 * i + 1, out[along(out.ndim, axis, i)]
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
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.dtype(">f4"), np.int16])
@pytest.mark.parametrize("kind", KINDS)
def test_predict_odd_matches_numpy_bit_for_bit(dtype, kind):
    rng = np.random.default_rng(7)
    for n in range(2, 20):
        base = rng.normal(0, 1, (2 * n + 1, 5, 2 * n)) * 10.0 ** rng.integers(-6, 6, (2 * n + 1, 5, 2 * n))
        if np.dtype(dtype).kind == "f":
            base.flat[rng.choice(base.size, 6, replace=False)] = [np.nan, np.inf, -np.inf, 1e300, -1e300, -0.0]
        with np.errstate(over="ignore", invalid="ignore"):  # 1e300 -> inf in float32, clipped integers
            base = base.astype(dtype)
        # strided lattice views (as the passes see them), reversed and transposed ones, along every axis
        for view in (base[:n], base[::2, :, ::2], base[::-1, 1:, :n], base.transpose(2, 0, 1)[:n, ::3]):
            for axis in range(view.ndim):
                if view.shape[axis] < 2:
                    continue
                with np.errstate(invalid="ignore", over="ignore"):
                    expected = numpy_predict_odd(view, axis, kind)
                got = predict_odd(view, axis, kind)
                assert got.dtype == np.float64 and got.shape == expected.shape
                # the same bits (signed zeros included) except a NaN's sign and payload, which C compilers may
                # change (-a + b as b - a); no stream sees them: non-finite predictions are replaced before use
                nan = np.isnan(expected)
                assert np.array_equal(np.isnan(got), nan), (n, axis, view.strides)
                assert np.array_equal(got.view(np.uint64)[~nan], expected.view(np.uint64)[~nan]), (n, axis)
