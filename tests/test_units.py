"""Contracts of the individual stages."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from conftest import assert_bound, smooth_field
from legacy_adaptive import encode_adaptive

import srnsz
from srnsz.coding.batch import METHOD_ADAPTIVE, CodeBatch
from srnsz.coding.context_mixing import BINARISATION_2, BINARISATIONS, MixingDecoder, MixingEncoder, encode_mixing
from srnsz.coding.entropy import (
    METHODS,
    WRITTEN_BINARISATION,
    CodeReader,
    ContextCodeWriter,
    format_minor,
    open_substream,
)
from srnsz.coding.static import encode_static
from srnsz.decomposition.grid import TRAVERSALS, make_plan
from srnsz.decomposition.interpolation import KINDS, predict_odd
from srnsz.errors import StreamFormatError
from srnsz.quantizer import ESCAPE, RADIUS, quantize, reconstruct


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


def test_quantizer_contract():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(10000).astype(np.float32)
    x[:3] = [np.nan, np.inf, 1e30]
    pred = x.astype(np.float64) + rng.normal(0, 0.1, x.size)
    pred[2] = 0.0  # 1e30 away: far beyond the code radius
    q = quantize(x, pred, 1e-3)
    assert q.codes[0] == ESCAPE and q.codes[1] == ESCAPE and q.codes[2] == ESCAPE
    assert np.abs(q.codes[q.codes != ESCAPE]).max() <= RADIUS
    finite = np.isfinite(x)
    assert np.abs(x[finite].astype(np.float64) - q.recon[finite]).max() <= 1e-3
    back = reconstruct(pred, q.codes, 1e-3, np.dtype(np.float32), q.escaped)
    assert np.array_equal(back.view(np.uint32), q.recon.view(np.uint32))


@pytest.mark.parametrize("scale", [0.01, 3, 3000])
def test_entropy_coder_round_trip(scale):
    rng = np.random.default_rng(1)
    writer = ContextCodeWriter()
    batches = []
    for table in (0, 1, 1, 2):
        codes = np.rint(rng.laplace(0, scale, 5000)).clip(-30000, 30000).astype(np.int16)
        codes[::97] = ESCAPE
        contexts = rng.integers(0, 9, 5000).astype(np.uint8)
        writer.write(codes, contexts, table)
        batches.append((codes, contexts, table))
    reader = CodeReader(writer.finish())
    for codes, contexts, table in batches:
        assert np.array_equal(reader.read(contexts, table), codes)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_coding_method_round_trips_extreme_codes_and_details(method):
    record = METHODS[method]
    encode = record.writer or {METHOD_ADAPTIVE: encode_adaptive}[method]  # read-only methods: the legacy writer
    rng = np.random.default_rng(3)
    batches = []
    for n, shape in ((0, ()), (1, (1, 1)), (7, ()), (3000, (30, 100)), (20000, (5, 40, 100)), (4096, (2, 2, 1024))):
        codes = np.rint(rng.laplace(0, 4, n)).astype(np.int16)
        codes[::13] = rng.choice([ESCAPE, 32767, -32767, 255, -256, 16, -17, 100], codes[::13].size)
        contexts = rng.integers(0, 16, n).astype(np.uint8)
        detail = rng.integers(0, 16, n).astype(np.uint8)
        batches.append(CodeBatch(codes, contexts, 4, detail, shape))
    if record.name.startswith("row differences"):  # their differences must stay in the code range
        batches = [CodeBatch(np.cumsum(np.clip(b.codes, -50, 50), dtype=np.int16) if b.codes.size else b.codes,
                             b.contexts, 4, b.detail, b.shape) for b in batches]
    body = encode(batches)
    assert body is not None and body[0] == method
    capacity = record.capacity(body[1:])
    assert capacity is None or capacity >= sum(b.codes.size for b in batches)
    assert format_minor(struct.pack("<III", 1, 4, len(body)) + body) == (record.format_minor
                                                                          if record.format_minor > 2 else None)
    reader = open_substream(body)
    for b in batches:
        empty = np.empty(0, np.int16)
        assert np.array_equal(reader.read(CodeBatch(empty, b.contexts, 4, b.detail, b.shape)), b.codes)


def test_context_mixing_uses_details_and_is_chosen():
    # Codes that follow the detail, one context: the writer must see it (about 4 bits per code without it).
    rng = np.random.default_rng(4)
    detail = rng.integers(0, 16, 200000).astype(np.uint8)
    codes = (detail.astype(np.int16) - 8) * 5
    writer = ContextCodeWriter()
    writer.write(codes, np.zeros(codes.size, np.uint8), 0, detail)
    blob = writer.finish()
    assert blob[12] == WRITTEN_BINARISATION.method  # after the table count, table id and size
    assert len(blob) < 0.02 * codes.size
    assert writer.estimated_bytes() < 0.02 * codes.size
    assert np.array_equal(CodeReader(blob).read(np.zeros(codes.size, np.uint8), 0, detail), codes)


def test_context_mixing_sees_the_neighbours_in_the_batch():
    # Every row repeats the one above and rows are random: only a coder that knows the layout sees the repeat.
    rng = np.random.default_rng(5)
    rows = np.repeat(rng.integers(-12, 13, (40, 1, 500)), 10, axis=1).astype(np.int16)  # (40, 10, 500)
    codes, zeros = rows.ravel(), np.zeros(rows.size, np.uint8)
    knowing = len(encode_mixing([CodeBatch(codes, zeros, 0, None, rows.shape)]))
    blind = len(encode_mixing([CodeBatch(codes, zeros, 0, None, ())]))
    static = len(encode_static([CodeBatch(codes, zeros, 0)]))
    assert static > 0.9 * rows.size * np.log2(25) / 8  # uniform codes: ~4.6 bits each without neighbours
    assert blind > 0.9 * static
    assert knowing < 0.2 * static  # 9 of 10 rows are free: ~0.46 bits per code plus learning


def test_context_mixing_tables_are_the_format_s():
    # Built from floating-point log/exp at import, which checks them against the format's digest.
    from srnsz.coding import context_mixing as cm

    assert cm.tables_digest() == cm.TABLES_SHA256
    assert cm.STRETCH[2048] == 0 and cm.SQUASH[2047] == 2048 and cm.RATE[0] == 43690


@pytest.mark.parametrize("binarisation", BINARISATIONS.values(), ids=lambda b: f"binarisation{b.ident}")
def test_context_mixing_decoder_survives_garbage(binarisation):
    # Damaged payloads decode to some codes without reading out of bounds (the container's CRC and the
    # reconstruction checksum reject them later).
    rng = np.random.default_rng(6)
    for size in (0, 1, 5, 1000, 100000):
        decoder = MixingDecoder(rng.integers(0, 256, size).astype(np.uint8).tobytes(), binarisation)
        try:
            codes = decoder.decode(rng.integers(0, 16, 5000).astype(np.uint8), None, (50, 100))
        except StreamFormatError:
            continue  # a code beyond the quantizer's radius: refused
        assert codes.dtype == np.int16 and codes.size == 5000


@pytest.mark.parametrize("shape", [(0,), (4, 0), (-1, 12), (2, -6), (5,), (2, 2, 2), (2**62, 4)])
def test_context_mixing_refuses_layouts_that_do_not_fit_the_batch(shape):
    # The compiled loop indexes neighbours by the layout: a wrong one must never reach it.
    codes, contexts = np.zeros(12, np.int16), np.zeros(12, np.uint8)
    with pytest.raises(ValueError, match="layout"):
        MixingEncoder(BINARISATION_2).encode(codes, contexts, None, shape)
    with pytest.raises(ValueError, match="layout"):
        MixingDecoder(b"\0" * 8, BINARISATION_2).decode(contexts, None, shape)


@pytest.mark.parametrize("seed", range(4))
def test_static_size_lower_bound_is_below_every_static_payload(seed):
    # The writer skips the static coder where this bound exceeds the mixing bytes: it must never exceed the real size.
    from srnsz.coding.static import size_lower_bound

    rng = np.random.default_rng(seed)
    batches = []
    for n in (1, 50, 3000, 40000):
        codes = np.rint(rng.laplace(0, [0.3, 2, 40, 900][seed], n)).clip(-32767, 32767).astype(np.int16)
        codes[:: 17] = 0
        batches.append(CodeBatch(codes, rng.integers(0, 16 if seed % 2 else 2, n).astype(np.uint8), 0))
        assert size_lower_bound(batches) <= 8 * len(encode_static(batches))
    assert size_lower_bound([CodeBatch(np.zeros(100, np.int16), np.zeros(100, np.uint8), 0)]) == 0.0


def test_context_coding_beats_order0_on_quiet_regions():
    # Zero codes with zero contexts, busy codes with busy contexts: context coding must exploit it.
    rng = np.random.default_rng(2)
    quiet = np.zeros(100000, np.int16)
    busy = rng.integers(-20, 21, 100000).astype(np.int16)
    writer = ContextCodeWriter()
    writer.write(np.concatenate([quiet, busy]), np.repeat(np.array([0, 8], np.uint8), 100000), 0)
    size = len(writer.finish())
    p0, p = 0.5 + 0.5 / 41, 0.5 / 41
    order0_bits = 200000 * -(p0 * np.log2(p0) + 40 * p * np.log2(p))  # about 3.6 bits per code
    context_bits = 100000 * np.log2(41)  # quiet half free, busy half uniform: about 2.7 bits per code
    assert size * 8 < 1.01 * context_bits < 0.8 * order0_bits


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


def test_tune_modes_search_what_they_say_and_keep_fixed_options():
    from srnsz.predictors.interp import (
        FAST_KINDS,
        LEVEL_BOUND_OPTIONS,
        LONE_SLACK_OPTIONS,
        ROUND_BIAS_OPTIONS,
        SIZE_KINDS,
        InterpPredictor,
    )

    fast, best = InterpPredictor("fast")._tuning_stages(3), InterpPredictor("best")._tuning_stages(3)
    assert [o["kind"] for o in fast[0]] == list(FAST_KINDS) and [o["kind"] for o in best[0]] == list(SIZE_KINDS)
    # the psnr mode adds the quintic spline, and at low rates lone codes and the dead zone (first) and level-wise
    # bounds
    high, low = (InterpPredictor("fast")._tuning_stages(3, for_psnr=True, low_rate=r) for r in (False, True))
    assert [o["kind"] for o in high[0]] == [*FAST_KINDS, "quintic"] and len(high) == 2
    assert low[0] == [{}, *LONE_SLACK_OPTIONS] and low[1] == list(ROUND_BIAS_OPTIONS)
    assert low[2:4] == high and low[4] == [{}, *LEVEL_BOUND_OPTIONS]
    assert len(InterpPredictor("fast", round_bias=0.1)._tuning_stages(3, for_psnr=True, low_rate=True)) == 4
    assert len(InterpPredictor("fast", round_bias=0.1, lone_slack=0.0)._tuning_stages(3, for_psnr=True,
                                                                                      low_rate=True)) == 3
    assert len(fast) == 2 and fast[1] == best[1]  # traversal and order; level-wise bounds only in best
    assert best[2] == [{}, *LEVEL_BOUND_OPTIONS]
    fixed = InterpPredictor("best", kind="cubic", alpha=1.5)._tuning_stages(3)
    assert len(fixed) == 1 and all(o.keys() == {"traversal", "dim_order"} for o in fixed[0])
    plain = InterpPredictor("off")
    assert plain.tuned(np.zeros((4, 4, 4)), 1.0) is plain


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


def test_target_psnr_and_ratio_are_met_with_a_hard_bound():
    from srnsz.metrics import quality
    from srnsz.pipeline.targets import compress_to_target

    data = smooth_field((40, 64, 48))
    for kw in ({"psnr": 70.0}, {"ratio": 30.0}):
        result = compress_to_target(data, **kw)
        recon = srnsz.decompress(result.stream)
        assert result.met
        assert_bound(data, recon, srnsz.info(result.stream).error_bound["abs"])
        q = quality(data, recon)
        assert q.psnr_db == pytest.approx(result.psnr_db)
        assert data.nbytes / len(result.stream) == pytest.approx(result.ratio)
        if "psnr" in kw:
            assert q.psnr_db >= 70.0
        else:
            assert result.ratio >= 30.0
    unreachable = compress_to_target(np.random.default_rng(0).random((32, 32)), ratio=1e6)
    assert not unreachable.met
    assert not compress_to_target(np.ones(50, np.float32), ratio=1e6).met  # constant fields too
    with pytest.raises(srnsz.SrnszError, match="exactly one"):
        compress_to_target(data, psnr=50, ratio=10)


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


def numpy_curvature_details(cubic: list[np.ndarray], linear: list[np.ndarray], bin_width: float) -> np.ndarray:
    """The details as numpy computed them before the C kernel (the reference the streams were written with)."""
    with np.errstate(invalid="ignore", over="ignore"):
        gaps = [c - lin for c, lin in zip(cubic, linear)]
        for gap in gaps:
            gap[~np.isfinite(gap)] = np.nan
        gap = sum(gaps) / (len(gaps) * bin_width)
        bucket = np.clip(np.frexp(np.minimum(np.abs(gap), 8.0) * 8.0)[1], 0, 6)
        detail = np.where(gap > 0, 8 + bucket, 8 - bucket)
    detail[np.isnan(gap)] = 15
    return detail.astype(np.uint8)


@pytest.mark.parametrize("n_views", [1, 2, 3])
def test_curvature_details_match_numpy(n_views):
    from srnsz.coding.context import curvature_details

    rng = np.random.default_rng(n_views)
    shape = (7, 301)
    # gaps around every bucket edge (2^-3..2^2 bins and their float neighbours), zeros of both signs, huge values
    # (overflowing sums), NaN and infinities
    edges = np.array([0.0, -0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 1e300, np.inf, -np.inf, np.nan])
    specials = np.concatenate([edges, -edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf)])
    cubic, linear = [], []
    for _ in range(n_views):
        c = rng.normal(0, 3, shape) * 10.0 ** rng.integers(-3, 3, shape)
        c.flat[rng.choice(c.size, specials.size, replace=False)] = specials
        lin = np.where(rng.random(shape) < 0.7, 0.0, rng.normal(0, 1, shape))
        lin.flat[rng.choice(lin.size, 5, replace=False)] = [np.nan, np.inf, -np.inf, 1e300, -1e300]
        cubic.append(c)
        linear.append(lin)
    for bin_width in (0.5, 1.0, 3e-7):
        got = curvature_details(lambda i, kind: (cubic if kind == "cubic" else linear)[i], n_views, bin_width)
        assert np.array_equal(got, numpy_curvature_details(cubic, linear, bin_width))


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
