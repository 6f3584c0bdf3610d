"""Round trips over shapes, dtypes, modes and awkward values; the bound is checked with no slack."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_bound, roundtrip, smooth_field

import srnsz
from srnsz.errors import InvalidInputError
from srnsz.predictors import PREDICTORS, list_predictors

SHAPES = [(1,), (2,), (7,), (1000,), (1, 1), (1, 9), (5, 1), (3, 3), (65, 130), (1, 1, 1), (2, 3, 4), (17, 1, 33),
          (33, 31, 29), (5, 6, 7, 8), (1, 3, 1, 9), (17, 9, 5, 3)]
LOSSY = [name for name in list_predictors() if name != "lossless" and PREDICTORS[name].holds_bound]
# Predictors that state the error they have instead of holding a bound: the psnr mode's alone.
PSNR_ONLY = [name for name in list_predictors() if not PREDICTORS[name].holds_bound]
# Every lossy predictor with option sets that exercise its choices; neural ones use the test weights.
PREDICTOR_OPTIONS = {
    "interp": [{}, {"tune": "best"}, {"kind": "linear"}, {"kind": "cubic", "tune": "off"},
               {"dim_order": (2, 0, 1), "anchor_stride": 8},
               {"traversal": "multidim", "alpha": 1.0, "beta": 1.0}, {"traversal": "sequential", "beta": 4.0},
               {"kind": "fitted", "tune": "off"}, {"kind": "fitted", "traversal": "multidim", "tune": "off"},
               {"profile": "fast"}, {"profile": "fast", "kind": "linear", "dim_order": (2, 0, 1)}],
    "hat": [{"model": "test_hat", "device": "cpu"}, {"model": "test_hat", "device": "cpu", "traversal": "multidim"},
            {"model": "test_hat", "device": "cpu", "hat_levels": 2, "block_size": 4, "kind": "linear", "tune": "off"},
            {"model": "test_hat", "device": "cpu", "kind": "fitted", "tune": "off"}],
    "ae": [{"model": "test_ae", "device": "cpu"}, {"model": "test_ae", "compete_interp": False, "latent_eb": 2.0}],
    "lorenzo": [{}, {"layers": 1}, {"layers": 2}],
}
CASES = [(name, options) for name, sets in PREDICTOR_OPTIONS.items() for options in sets]


def test_every_registered_predictor_is_covered():
    assert set(PREDICTOR_OPTIONS) == set(LOSSY)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("profile", list(srnsz.api.PROFILES))
def test_shapes_and_dtypes(shape, dtype, profile):
    data = smooth_field(shape, dtype)
    for eb in (1e-1, 1e-3):
        recon, _, eb_abs = roundtrip(data, eb, "rel", profile=profile)
        assert_bound(data, recon, eb_abs)


@pytest.mark.parametrize("predictor,options", CASES, ids=str)
def test_predictor_options(predictor, options, field3d, with_test_weights):
    planes = [] if "dim_order" in options else [field3d[7]]  # a 3D axis order does not apply to 2D
    for data in (field3d, field3d.astype(np.float64), *planes):
        recon, _, eb_abs = roundtrip(data, 1e-2, "rel", predictor=predictor, **options)
        assert_bound(data, recon, eb_abs)


@pytest.mark.parametrize("predictor", LOSSY)
@pytest.mark.parametrize("shape", [(1,), (7,), (1, 1), (3, 50), (1, 1, 1), (9, 1, 17), (5, 6, 7, 8)], ids=str)
def test_every_predictor_on_awkward_shapes(predictor, shape, with_test_weights):
    data = smooth_field(shape)
    for eb in (1e-1, 1e-4):
        recon, _, eb_abs = roundtrip(data, eb, "rel", predictor=predictor, **PREDICTOR_OPTIONS[predictor][0])
        assert_bound(data, recon, eb_abs)


@pytest.mark.parametrize("predictor", LOSSY)
def test_every_predictor_keeps_nonfinite_and_constants(predictor, field3d, with_test_weights):
    options = PREDICTOR_OPTIONS[predictor][-1]
    data = field3d.astype(np.float64)
    data[2:4, 5:9, :] = np.nan
    data[0, 0, 0], data[-1, -1, -1] = np.inf, -np.inf
    data[10:, 20:, 20:] = 1e20
    recon, _, eb_abs = roundtrip(data, 1e-3, "abs", predictor=predictor, **options)
    assert_bound(data, recon, eb_abs)
    constant = np.full((12, 40, 33), -2.5, np.float32)
    recon, _, _ = roundtrip(constant, 1e-3, "rel", predictor=predictor, **options)
    assert np.array_equal(recon, constant)


def test_psnr_only_predictors_are_listed():
    assert PSNR_ONLY == ["wavelet"]


@pytest.mark.parametrize("predictor", PSNR_ONLY)
@pytest.mark.parametrize("mode,eb", [("abs", 0.01), ("rel", 1e-3), ("abs_and_rel", 0.01)])
def test_psnr_only_predictors_refuse_the_bound_modes(predictor, mode, eb, field3d):
    with pytest.raises(InvalidInputError, match="quality modes"):
        srnsz.compress(field3d, eb, mode, predictor, rel=1e-3 if mode == "abs_and_rel" else None)


@pytest.mark.parametrize("predictor", PSNR_ONLY)
def test_psnr_only_predictors_serve_the_ssim_mode(predictor, field3d):
    from srnsz.metrics import ssim_over

    recon, stream, stated = roundtrip(field3d, 0.995, "ssim", predictor=predictor)
    assert srnsz.info(stream).predictor == predictor
    assert ssim_over(field3d, recon) >= 0.995
    assert_bound(field3d, recon, stated)


@pytest.mark.parametrize("predictor", PSNR_ONLY)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_psnr_only_predictors_state_their_error_on_every_shape(predictor, shape, dtype):
    data = smooth_field(shape, dtype)
    for target in (30.0, 80.0):
        recon, stream, stated = roundtrip(data, target, "psnr", predictor=predictor)
        assert_bound(data, recon, stated)  # the stated bound is the reconstruction's largest error or more
        assert srnsz.metrics.quality(data, recon).psnr_db >= target


@pytest.mark.parametrize("predictor", PSNR_ONLY)
def test_psnr_only_predictors_keep_nonfinite_fills_and_constants(predictor, field3d):
    data = field3d.astype(np.float64)
    data[2:4, 5:9, :] = np.nan
    data[0, 0, 0], data[-1, -1, -1] = np.inf, -np.inf
    data[10:, 20:, 20:] = 1e20
    recon, stream, stated = roundtrip(data, 60.0, "psnr", predictor=predictor)
    assert_bound(data, recon, stated)
    assert np.array_equal(recon[data == 1e20], data[data == 1e20])
    constant = np.full((12, 40, 33), -2.5, np.float32)
    recon, _, _ = roundtrip(constant, 60.0, "psnr", predictor=predictor)
    assert np.array_equal(recon, constant)


@pytest.mark.parametrize("mode,eb,rel", [("abs", 0.05, None), ("rel", 1e-4, None), ("psnr", 60.0, None),
                                         ("abs_and_rel", 0.05, 1e-3), ("abs_and_rel", 1e-4, 0.5)])
def test_modes(mode, eb, rel, field3d):
    recon, _, eb_abs = roundtrip(field3d, eb, mode, rel=rel)
    assert_bound(field3d, recon, eb_abs)
    value_range = float(field3d.max()) - float(field3d.min())
    if mode == "rel":
        assert eb_abs == pytest.approx(eb * value_range)
    if mode == "abs_and_rel":
        assert eb_abs == pytest.approx(min(eb, rel * value_range))
    if mode == "psnr":
        q = srnsz.metrics.quality(field3d, recon)
        assert q.psnr_db >= eb  # a uniform-error bound at the target PSNR keeps at least that PSNR


@pytest.mark.parametrize("scalar", [np.float32, np.float64, np.int64])
def test_numpy_scalar_bounds(scalar, field3d):
    """A bound taken from numpy arithmetic (e.g. 0.01 * np.ptp(x), a float32) works like a Python float."""
    eb = scalar(1) if scalar is np.int64 else scalar(0.01 * np.ptp(field3d))
    recon, stream, eb_abs = roundtrip(field3d, eb, "abs")
    assert_bound(field3d, recon, float(eb))
    assert srnsz.info(stream).error_bound["value"] == float(eb)
    recon, _, eb_abs = roundtrip(field3d, np.float32(1e-3), "abs_and_rel", rel=np.float32(1e-2))
    assert_bound(field3d, recon, eb_abs)


def test_zero_bound_is_lossless(field3d):
    for dtype in (np.float32, np.float64):
        data = field3d.astype(dtype)
        recon, stream, eb_abs = roundtrip(data, 0.0, "abs")
        assert eb_abs == 0 and srnsz.info(stream).predictor == "lossless"
        assert np.array_equal(recon.view(f"u{data.itemsize}"), data.view(f"u{data.itemsize}"))


def test_constant_field_is_tiny_and_exact():
    data = np.full((40, 50, 60), 3.25, dtype=np.float32)
    recon, stream, _ = roundtrip(data, 1e-3, "rel")
    assert np.array_equal(recon, data)
    assert len(stream) < 2000


@pytest.mark.parametrize("eb", [1e-2, 1e-6])
def test_constant_field_abs_bound(eb):
    data = np.full((30, 31), -7.5, dtype=np.float64)
    recon, _, eb_abs = roundtrip(data, eb, "abs")
    assert_bound(data, recon, eb_abs)


def test_nan_and_inf_come_back_bit_for_bit(field3d):
    data = field3d.copy()
    rng = np.random.default_rng(1)
    idx = rng.choice(data.size, 300, replace=False)
    data.flat[idx[:100]] = np.nan
    data.flat[idx[100:200]] = np.inf
    data.flat[idx[200:]] = -np.inf
    data[3:9, 4:20, 5:30] = np.nan  # a masked region
    recon, _, eb_abs = roundtrip(data, 1e-3, "rel")
    assert_bound(data, recon, eb_abs)


def test_all_nonfinite():
    data = np.array([[np.nan, np.inf], [-np.inf, np.nan]], dtype=np.float32)
    recon, _, _ = roundtrip(data, 1e-2, "rel")
    assert_bound(data, recon, 0.0)


def test_huge_dynamic_range():
    rng = np.random.default_rng(2)
    data = (10.0 ** rng.uniform(-30, 30, (20, 30, 40))) * rng.choice([-1, 1], (20, 30, 40))
    for dtype in (np.float32, np.float64):
        d = data.astype(dtype)
        for eb in (1e-3, 1e10, 1e-25):
            recon, _, eb_abs = roundtrip(d, eb, "abs")
            assert_bound(d, recon, eb_abs)


def test_extreme_float64_values():
    data = np.array([1e308, -1e308, 1e-308, 5e-324, 0.0, -0.0, 1.0], dtype=np.float64)
    recon, _, eb_abs = roundtrip(np.tile(data, 50), 1e-3, "rel")
    assert_bound(np.tile(data, 50), recon, eb_abs)


@pytest.mark.parametrize("mode,rel", [("rel", None), ("abs_and_rel", 1e-3)])
def test_a_relative_bound_on_values_spanning_beyond_the_largest_double_is_kept(mode, rel):
    data = np.sin(np.linspace(0, 20, 5000)) * 1.7e308  # max - min overflows float64
    recon, _, eb_abs = roundtrip(data, 1e-3 if rel is None else 1e306, mode, rel=rel)
    assert 0 < eb_abs <= 1e-3 * data.max() - 1e-3 * data.min()  # never wider than asked
    assert np.all(np.abs(recon / 2 - data / 2) <= eb_abs / 2)
    for quality, value in (("psnr", 60.0), ("ssim", 0.99)):  # squared errors would overflow: refused
        with pytest.raises(InvalidInputError, match="overflow"):
            srnsz.compress(data, value, quality)


def test_masked_arrays_bound_their_valid_values_and_give_back_the_masked_as_fills():
    rng = np.random.default_rng(3)
    valid = smooth_field((20, 30), np.float64)
    masked = rng.random(valid.shape) < 0.2
    garbage = np.where(masked, rng.uniform(-5e3, 5e3, valid.shape), valid)  # would set a relative bound's range
    for dtype in (np.float32, np.float64):
        array = np.ma.masked_array(garbage.astype(dtype), mask=masked)
        eb_abs = 1e-3 * float(np.ptp(valid[~masked].astype(dtype)))
        recon = srnsz.decompress(srnsz.compress(array, 1e-3, "rel"))
        assert type(recon) is np.ndarray and recon.dtype == dtype
        assert np.abs(recon[~masked].astype(np.float64) - valid[~masked].astype(dtype)).max() <= eb_abs
        assert np.all(recon[masked] == dtype(array.fill_value))
        recon = srnsz.decompress(srnsz.compress(array, 1e-3, "rel", fill_value=-999.0))
        assert np.all(recon[masked] == -999.0)
    recon = srnsz.decompress(srnsz.compress(np.ma.masked_array(garbage, mask=masked), 1e-3, fill_value=np.nan))
    assert np.isnan(recon[masked]).all()
    unmasked = np.ma.masked_array(valid, mask=np.zeros(valid.shape, bool))
    assert srnsz.compress(unmasked, 1e-3) == srnsz.compress(valid, 1e-3)
    with pytest.raises(InvalidInputError, match="does not fit"):
        srnsz.compress(np.ma.masked_array(valid.astype(np.float32), mask=masked), 1e-3, fill_value=1e39)


def test_fill_values_like_ocean_land_mask():
    data = smooth_field((12, 40, 50)) + 280
    data[:, 10:25, 5:20] = 1e20  # land cells hold a fill value
    recon, stream, eb_abs = roundtrip(data, 0.01, "abs")
    assert_bound(data, recon, eb_abs)
    assert data.nbytes / len(stream) > 4


def test_non_contiguous_and_big_endian_inputs(field3d):
    for data in (field3d[:, ::2, 1:], field3d.astype(">f4"), np.asfortranarray(field3d)):
        recon, _, eb_abs = roundtrip(data, 1e-3, "rel")
        assert_bound(np.asarray(data, dtype=np.float32), recon, eb_abs)


def test_deterministic_streams(field3d):
    assert srnsz.compress(field3d, 1e-3) == srnsz.compress(field3d, 1e-3)


def test_ratio_grows_with_bound(field3d):
    sizes = [len(srnsz.compress(field3d, eb)) for eb in (1e-5, 1e-3, 1e-1)]
    assert sizes[0] > sizes[1] > sizes[2]


def test_codec_object(field3d):
    codec = srnsz.Codec(1e-3, "rel", kind="linear")
    stream = codec.compress(field3d)
    recon = codec.decompress(stream)
    assert_bound(field3d, recon, srnsz.info(stream).error_bound["abs"])
    assert "linear" in repr(codec)
