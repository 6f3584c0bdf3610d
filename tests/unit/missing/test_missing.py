"""Missing values (srnsz.missing): the rule, the detector of undeclared fills, exact restoration for every
predictor, bounds relative to the valid values only, the cost of the mask, and damaged missing-value streams."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import SHARED_DATA, rewritten, smooth_field

import srnsz
from srnsz import missing
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.format.container import NEWEST_MINOR, read_container
from srnsz.io import chunked
from srnsz.missing import Extremes, MissingRule, detect_fills, find_missing

FILL = np.float32(1e20)


def ocean(shape=(12, 40, 56), fill=FILL, dtype=np.float32, seed=3) -> tuple[np.ndarray, np.ndarray]:
    """A smooth field with a 'land' mask (two blobs touching the edges, ~30%) set to ``fill``."""
    data = smooth_field(shape, dtype, seed) * 10 + 285
    grid = np.meshgrid(*[np.linspace(0, 1, n) for n in shape[-2:]], indexing="ij")
    land2d = ((grid[0] - 0.2) ** 2 + (grid[1] - 0.1) ** 2 < 0.12) | (grid[0] + 0.6 * grid[1] > 1.3)
    land = np.broadcast_to(land2d, shape).copy()
    data[land] = fill
    return data, land


def assert_missing_exact(original: np.ndarray, recon: np.ndarray, mask: np.ndarray) -> None:
    bits = f"u{original.itemsize}"
    assert np.array_equal(original[mask].view(bits), recon[mask].view(bits))


def test_rule_masks_nan_inf_declared_fills_and_out_of_range_values():
    x = np.array([1.0, np.nan, np.inf, -np.inf, -999.0, 40.0, -2.0, 3.0], np.float32)
    mask = MissingRule((-999.0,), -1.8, 35.0).declared_mask(x)
    assert mask.tolist() == [False, True, True, True, True, True, True, False]
    # fills are compared in the data's dtype: a float64 1e20 declared for float32 data matches
    assert MissingRule((1e20,)).declared_mask(np.array([FILL, 1.0], np.float32)).tolist() == [True, False]


@pytest.mark.parametrize("bad", [{"fill_value": "x"}, {"valid_range": (3.0, 1.0)}, {"valid_range": (0.0,)},
                                 {"valid_range": (0.0, np.inf)}])
def test_bad_rules_are_clear_errors(bad):
    with pytest.raises(InvalidInputError):
        MissingRule.of(**bad)
    with pytest.raises(InvalidInputError):
        srnsz.compress(smooth_field((8, 8)), 1e-2, **bad)


def test_detector_finds_fills_and_leaves_data_alone():
    rng = np.random.default_rng(0)
    sst = rng.uniform(-1.8, 35, 5000).astype(np.float32)
    sst[:1500] = -999
    assert detect_fills(Extremes.of(sst)) == ((-999.0,), ())
    spike = rng.uniform(0, 300, 5000)
    spike[7] = 1e20  # a single huge value would set a relative bound's range by itself
    assert detect_fills(Extremes.of(spike)) == ((1e20,), ())
    both = rng.uniform(0, 300, 5000)
    both[:40], both[40:50] = 1e20, -1e30
    assert set(detect_fills(Extremes.of(both))[0]) == {1e20, -1e30}
    # borderline: -9999 beside data reaching 1e4 could be a value of the field: kept, reported as a suspect
    topography = rng.uniform(0, 1e4, 5000)
    topography[:100] = -9999
    assert detect_fills(Extremes.of(topography)) == ((), (-9999.0,))
    # data, not fills: a two-valued field, a field whose values are all huge, repeated zeros at the edge
    assert detect_fills(Extremes.of(np.r_[np.zeros(50), np.ones(50)])) == ((), ())
    assert detect_fills(Extremes.of(rng.uniform(1e15, 1e16, 500))) == ((), ())
    rain = np.r_[np.zeros(3000), rng.exponential(2.0, 2000)]
    assert detect_fills(Extremes.of(rain)) == ((), ())


def test_extremes_of_parts_merge_to_those_of_the_whole():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 50, 4000).astype(np.float64)
    x[::97] = 1e20
    whole, parts = Extremes.of(x), Extremes.of(x[:1234]).merge(Extremes.of(x[1234:]))
    for i in range(missing.PROFILE_DEPTH):
        assert whole.top(i) == parts.top(i) and whole.bottom(i) == parts.bottom(i)


@pytest.mark.parametrize("predictor,options", [("interp", {}), ("lorenzo", {}), ("interp", {"profile": "fast"})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fills_come_back_exactly_and_the_bound_is_relative_to_the_valid_values(predictor, options, dtype):
    data, land = ocean(dtype=dtype)
    data[0, 0, 0] = np.float32(np.nan) if dtype == np.float32 else np.nan
    data.view(f"u{data.itemsize}")[1, 0, 0] = data.view(f"u{data.itemsize}")[0, 0, 0] | 1  # a NaN payload
    land |= np.isnan(data)
    stream = srnsz.compress(data, 1e-3, "rel", predictor, **options)
    recon = srnsz.decompress(stream)
    valid = data[~land].astype(np.float64)
    eb = srnsz.info(stream).error_bound["abs"]
    assert eb == pytest.approx(1e-3 * (valid.max() - valid.min()), rel=1e-12)
    assert np.abs(recon[~land] - valid).max() <= eb
    assert_missing_exact(data, recon, land)
    assert srnsz.info(stream).missing["points"] == int(land.sum())
    # missing values need 1.3; binarisation 2 of the codes 1.7, the fast profile's coder 1.8; this land is the same
    # on every level: stored once, 1.12; every new stream is 1.14 (compact framing)
    assert srnsz.info(stream).format_version == "1.14"
    assert read_container(stream).sections["MASK"][0] == missing.MASK_REPEATED


def test_every_registered_predictor_restores_missing_values(with_test_weights):
    data, land = ocean((6, 36, 40))
    for name in srnsz.list_predictors():
        options = {"model": "test_hat"} if name == "hat" else {"model": "test_ae"} if name == "ae" else {}
        bound = (1e-2, "rel") if srnsz.predictors.PREDICTORS[name].holds_bound else (40.0, "psnr")
        stream = srnsz.compress(data, *bound, name, **options)
        recon = srnsz.decompress(stream)
        eb = srnsz.info(stream).error_bound["abs"]
        assert np.abs(recon[~land].astype(np.float64) - data[~land]).max() <= eb, name
        assert_missing_exact(data, recon, land)


def test_declared_fill_valid_range_and_detection_switch():
    data, land = ocean(fill=np.float32(-999.0))
    data[2, 20, 20:23] = 50.0  # outside the valid range: missing too
    rule = {"fill_value": -999.0, "valid_range": (200.0, 400.0)}
    recon = srnsz.decompress(srnsz.compress(data, 1e-3, **rule))
    assert_missing_exact(data, recon, land | (data == 50.0))
    record = srnsz.info(srnsz.compress(data, 1e-3, **rule)).missing
    assert record["fill_values"] == [-999.0] and record["valid_min"] == 200.0 and "detected" not in record
    # without a declaration -999 is detected (~40 spans away); with detection off it is data and sets the range
    data[data == 50.0] = 290.0
    assert srnsz.info(srnsz.compress(data, 1e-3)).missing["detected"] == [-999.0]
    plain = srnsz.info(srnsz.compress(data, 1e-3, detect_fills=False))
    assert plain.error_bound["abs"] == pytest.approx(1e-3 * (float(data.max()) + 999.0))


def test_an_undeclared_1e20_never_sets_the_bound():
    data, land = ocean()
    for mode, value in (("rel", 1e-3), ("psnr", 60.0), ("abs_and_rel", 10.0)):
        kw = {"rel": 1e-3} if mode == "abs_and_rel" else {}
        stream = srnsz.compress(data, value, mode, **kw)
        eb = srnsz.info(stream).error_bound["abs"]
        assert eb < 1.0, (mode, eb)
        recon = srnsz.decompress(stream)
        assert np.abs(recon[~land].astype(np.float64) - data[~land]).max() <= eb
        assert_missing_exact(data, recon, land)
        if mode == "psnr":
            assert srnsz.metrics.quality(data, recon, ~land).psnr_db >= 60.0


def test_missing_points_cost_little_and_do_not_hurt_their_neighbours():
    # Same absolute bound: fills masked vs the same field with the fills replaced by the valid mean (which costs
    # nothing on land, but jumps at every coast).
    data, land = ocean((16, 64, 80))
    eb = 1e-3 * float(np.ptp(data[~land]))
    mean = data.copy()
    mean[land] = data[~land].mean()
    masked = len(srnsz.compress(data, eb, "abs"))
    assert masked <= len(srnsz.compress(mean, eb, "abs")) / 0.95
    assert masked < len(srnsz.compress(data, eb, "abs", detect_fills=False))


def test_extension_fills_only_the_missing_points_smoothly():
    data, land = ocean((5, 30, 31))
    filled = missing.extend_into_missing(data, land)
    assert np.array_equal(filled[~land], data[~land]) and np.isfinite(filled).all()
    assert filled.min() >= data[~land].min() - 1e-3 and filled.max() <= data[~land].max() + 1e-3


@pytest.mark.parametrize("case", ["all_missing", "one_nan", "eb_zero", "constant_valid", "tiny"])
def test_edge_cases(case):
    if case == "all_missing":
        data = np.full((7, 9), FILL)
        data[0, 0] = np.nan
    elif case == "one_nan":
        data = np.array([np.nan], np.float64)
    elif case == "constant_valid":
        data, _ = ocean((4, 20, 20))
        data[data != FILL] = 7.0
    elif case == "tiny":
        data = np.array([1.0, 1e20, 2.0, np.nan, 1e20], np.float32)
    else:
        data, _ = ocean((4, 20, 20))
    eb = 0.0 if case == "eb_zero" else 1e-2
    recon = srnsz.decompress(srnsz.compress(data, eb))
    valid = np.isfinite(data) & (data != FILL)
    span = float(np.ptp(data[valid].astype(np.float64))) if valid.any() else 0.0
    assert np.all(np.abs(recon[valid].astype(np.float64) - data[valid]) <= eb * span)
    assert_missing_exact(data, recon, ~valid)


@pytest.mark.parametrize("damage", [
    lambda s: rewritten(s, lambda h: h["missing"].update(points=h["missing"]["points"] + 1)),
    lambda s: rewritten(s, lambda h: h["missing"].update(points=-3)),
    lambda s: rewritten(s, lambda h: h.update(missing=[1, 2])),
    lambda s: rewritten(s, None, lambda x: x.pop("MASK")),
    lambda s: rewritten(s, None, lambda x: x.update(MVAL=x["MVAL"][:-2])),
    lambda s: rewritten(s, None, lambda x: x.update(MASK=missing.lossless.pack(b"\xff" * 5))),
])
def test_damaged_missing_value_records_are_clear_errors(damage):
    data, _ = ocean((4, 20, 24))
    with pytest.raises(StreamFormatError):
        srnsz.decompress(damage(srnsz.compress(data, 1e-2)))


def test_a_newer_minor_version_is_refused_before_decoding():
    stream = bytearray(srnsz.compress(smooth_field((8, 8)), 1e-2))
    stream[10] = NEWEST_MINOR + 1
    with pytest.raises(StreamFormatError, match="newer"):
        srnsz.decompress(bytes(stream))


def test_chunked_rel_bound_ignores_fills_found_in_any_chunk():
    data, land = ocean((8, 40, 48))
    data[7, 39, 47] = FILL  # a lone fill in a chunk of its own
    land[7, 39, 47] = True
    buf = io.BytesIO()
    index = chunked.compress_chunked(data, buf, eb=1e-3, mode="rel", chunk=(4, 20, 24))
    recon = chunked.decompress_chunked(io.BytesIO(buf.getvalue()))
    eb = index.error_bound["abs"]
    assert eb == pytest.approx(1e-3 * float(np.ptp(data[~land].astype(np.float64))))
    assert np.abs(recon[~land].astype(np.float64) - data[~land]).max() <= eb
    assert_missing_exact(data, recon, land)


def test_codec_carries_the_rule_in_its_config():
    numcodecs = pytest.importorskip("numcodecs")
    data, land = ocean((4, 20, 24), fill=np.float32(-5.0))
    codec = numcodecs.get_codec({"id": "srnsz", "eb": 0.01, "fill_value": np.float32(-5.0)})
    config = codec.get_config()
    assert config["fill_value"] == [-5.0]
    recon = numcodecs.get_codec(config).decode(codec.encode(data))
    assert_missing_exact(data, recon, land)
    assert np.abs(recon[~land] - data[~land]).max() <= 0.01


def test_find_missing_reports_what_it_detected():
    data, land = ocean((3, 10, 12))
    found = find_missing(data, MissingRule())
    assert np.array_equal(found.mask, land) and found.detected == (float(FILL),)
    assert find_missing(smooth_field((5, 5)), MissingRule()).mask is None


@pytest.mark.skipif(not (SHARED_DATA / "ipsl_tos_24x170x180.npy").exists(), reason="shared data absent")
def test_ipsl_tos_with_its_1e20_fills_costs_no_more_than_mean_filled():
    data = np.load(SHARED_DATA / "ipsl_tos_24x170x180.npy")
    land = data == FILL
    mean = data.copy()
    mean[land] = data[~land].mean()
    for rel in (1e-2, 1e-3):
        eb = rel * float(np.ptp(data[~land]))
        stream = srnsz.compress(data, eb, "abs", fill_value=1e20)
        assert len(stream) <= len(srnsz.compress(mean, eb, "abs")) / 0.95
        assert_missing_exact(data, srnsz.decompress(stream), land)


@pytest.mark.parametrize("shape", [(1,), (37,), (5, 9), (4, 6, 7), (2, 3, 4, 5)])
def test_every_mask_layout_decodes(shape):
    rng = np.random.default_rng(len(shape))
    mask = rng.random(shape) < 0.3
    data = np.where(mask, np.float32(-5), np.float32(1))
    data[mask.nonzero()[0][:1]] = np.nan if mask.any() else data[mask.nonzero()[0][:1]]
    sections = missing.encode(mask, data)
    values = data[mask]
    writer = missing.ContextCodeWriter()
    writer.write(mask.ravel().astype(np.int16), np.zeros(mask.size, np.uint8), 0, None, mask.shape)
    layouts = [bytes([missing.MASK_PLAIN]) + missing.lossless.pack(np.packbits(mask.ravel()).tobytes()),
               bytes([missing.MASK_MIXED]) + writer.finish()]
    if mask.ndim >= 2:
        layouts.append(bytes([missing.MASK_DELTA]) + missing.lossless.pack(
            np.packbits(missing.delta_layout(mask).ravel()).tobytes()))
    for layout in layouts:
        got, got_values = missing.decode({**sections, "MASK": layout}, shape, data.dtype, int(mask.sum()))
        assert np.array_equal(got, mask)
        assert np.array_equal(got_values.view(np.uint32), values.view(np.uint32))


def test_fields_with_nothing_valid_are_stored_bit_for_bit():
    rng = np.random.default_rng(0)
    outside = (rng.random((20, 20)) + 2).astype(np.float32)
    recon = srnsz.decompress(srnsz.compress(outside, 0.1, "abs", valid_range=(0, 1)))
    assert np.array_equal(recon.view(np.uint32), outside.view(np.uint32))
    fills = np.full((64, 64), -999.0, np.float32)
    fills[rng.random(fills.shape) < 0.1] = -9999.0
    for predictor in ("interp", "lorenzo"):
        recon = srnsz.decompress(srnsz.compress(fills, 3.0, "abs", predictor, fill_value=[-999, -9999]))
        assert np.array_equal(recon, fills)


def test_a_suspect_alone_leaves_the_stream_as_before():
    data = (smooth_field((30, 30), seed=2) * 5000 + 5000).astype(np.float32)
    data[0, :3] = -9999.0
    stream = srnsz.compress(data, 1e-3)
    assert srnsz.info(stream).missing == {} and "MASK" not in read_container(stream).sections
    assert stream == srnsz.compress(data, 1e-3, detect_fills=False)


def test_a_field_of_huge_values_is_data():
    data = np.where(smooth_field((16, 16)) > 0, 2e20, 1e20)
    assert find_missing(data, MissingRule()).mask is None
    assert detect_fills(Extremes.of(np.r_[np.zeros(10), [1e20] * 3])) == ((1e20,), ())  # fills over a constant


def test_fills_the_dtype_cannot_hold_are_ignored():
    data = smooth_field((8, 8))
    data[0, 0] = 0.0
    mask = MissingRule((1e39, 1e-46)).declared_mask(data)
    assert not mask.any()


@pytest.mark.parametrize("record", [{"points": 3, "fill_values": ["abc"]}, {"points": 3, "detected": [None]},
                                    {"points": 3, "suspects": "xy"}, {"points": 3, "valid_min": "a"}])
def test_garbled_missing_records_are_refused(record):
    data, _ = ocean((4, 20, 24))
    stream = rewritten(srnsz.compress(data, 1e-2), lambda h: h.update(missing=record))
    with pytest.raises(StreamFormatError):
        srnsz.info(stream)


def test_a_decompression_bomb_in_the_missing_values_is_refused():
    import zstandard

    data, _ = ocean((4, 20, 24))
    data[0, 0, 0] = np.nan  # two distinct missing values: stored as planes
    bomb = zstandard.ZstdCompressor().compress(bytes(1 << 22))
    stream = rewritten(srnsz.compress(data, 1e-2), None, lambda x: x.update(MVAL=bytes([1]) + bomb))
    with pytest.raises(StreamFormatError):
        srnsz.decompress(stream)


@pytest.mark.parametrize("shape", [(5, 30), (6, 20, 24), (3, 4, 10, 12)])
def test_a_mask_the_same_along_axis_0_is_stored_once_and_read_back(shape):
    rng = np.random.default_rng(1)
    one = rng.random(shape[1:]) < 0.3
    mask = np.broadcast_to(one, shape).copy()
    section = missing.encode_mask(mask)
    assert section[0] == missing.MASK_REPEATED
    assert np.array_equal(missing.decode_mask(section, shape), mask)
    assert missing.format_minor({"MASK": section}) == 12
    mask[-1].flat[0] ^= True  # one level differs: stored whole, in a layout of before
    section = missing.encode_mask(mask)
    assert section[0] != missing.MASK_REPEATED and np.array_equal(missing.decode_mask(section, shape), mask)
    with pytest.raises(StreamFormatError):
        missing.decode_mask(bytes([missing.MASK_REPEATED]) + section, (int(np.prod(shape)),))  # no axis to repeat
    with pytest.raises(StreamFormatError):
        missing.decode_mask(bytes([missing.MASK_REPEATED, 9]), shape)
