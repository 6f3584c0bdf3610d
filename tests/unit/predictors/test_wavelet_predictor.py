"""The wavelet predictor in the psnr mode: it competes with interpolation, states its error, and its streams refuse
damage and hostile headers cleanly."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_bound, rewritten, smooth_field

import srnsz
from srnsz.coding import lossless
from srnsz.errors import InvalidInputError, SrnszError, StreamFormatError
from srnsz.format.container import read_container
from srnsz.metrics import quality
from srnsz.predictors.wavelet import ESCAPE_SECTION, FORMAT_MINOR, WaveletPredictor


@pytest.fixture
def smooth3d() -> np.ndarray:
    return smooth_field((24, 40, 48), noise=0.0)


def test_psnr_mode_keeps_the_smaller_of_interpolation_and_wavelet(smooth3d):
    with_wavelet = srnsz.compress(smooth3d, 30.0, "psnr")
    without = srnsz.compress(smooth3d, 30.0, "psnr", wavelet=False)
    made = srnsz.info(with_wavelet)
    assert made.predictor == "wavelet" and made.format_version == f"1.{FORMAT_MINOR}"
    assert len(with_wavelet) < len(without)
    assert srnsz.info(without).predictor == "interp" and srnsz.info(without).format_version == "1.14"
    recon = srnsz.decompress(with_wavelet)
    assert quality(smooth3d, recon).psnr_db >= 30.0
    assert_bound(smooth3d, recon, made.error_bound["abs"])
    assert made.error_bound["abs"] == np.abs(recon.astype(np.float64) - smooth3d).max()  # stated as it is


def test_where_interpolation_is_smaller_its_stream_is_kept(smooth3d):
    stream = srnsz.compress(smooth3d, 60.0, "psnr")
    assert srnsz.info(stream).predictor == "interp"
    assert stream == srnsz.compress(smooth3d, 60.0, "psnr", wavelet=False)


def test_the_approximation_size_is_chosen_and_recorded(smooth3d):
    stream = srnsz.compress(smooth3d, 30.0, "psnr", "wavelet")
    levels = srnsz.info(stream).predictor_params["levels"]
    fixed = srnsz.compress(smooth3d, 30.0, "psnr", "wavelet", approximation=16)
    assert srnsz.info(fixed).predictor_params["levels"] == [0, 1, 1]
    assert len(stream) <= len(fixed) and levels != [0, 1, 1]


def test_codes_beyond_the_int16_radius_are_escaped():
    field = (1e6 + smooth_field((16, 16, 16), np.float64)).astype(np.float64)
    stream = srnsz.compress(field, 160.0, "psnr", "wavelet")
    assert ESCAPE_SECTION in read_container(stream).sections
    recon = srnsz.decompress(stream)
    assert quality(field, recon).psnr_db >= 160.0


@pytest.mark.parametrize("options", [{"approximation": 0}, {"approximation": 2.5}, {"approximation": True},
                                     {"round_bias": 0.5}, {"round_bias": -0.1}, {"round_bias": "x"}])
def test_bad_options_are_refused(options, smooth3d):
    with pytest.raises(InvalidInputError):
        srnsz.compress(smooth3d, 30.0, "psnr", "wavelet", **options)


@pytest.mark.parametrize("param,value,message", [
    *(("levels", v, "wavelet levels") for v in ([9, 1, 1], [1, 1], [1, 1, True], [1, 1, -1], "1,1,1", None)),
    *(("step", v, "wavelet step") for v in (0.0, -1.0, float("nan"), float("inf"), "1", True, None))])
def test_hostile_parameters_are_refused(param, value, message, smooth3d):
    stream = srnsz.compress(smooth3d, 30.0, "psnr", "wavelet")

    def change(header):
        header["predictor"]["params"][param] = value

    with pytest.raises(StreamFormatError, match=message):
        srnsz.decompress(rewritten(stream, change))


def test_a_changed_step_is_caught_by_the_checksum(smooth3d):
    stream = srnsz.compress(smooth3d, 30.0, "psnr", "wavelet")

    def change(header):
        header["predictor"]["params"]["step"] *= 1.5

    with pytest.raises(SrnszError):
        srnsz.decompress(rewritten(stream, change))


def test_damaged_sections_are_refused():
    field = (1e6 + smooth_field((16, 16, 16), np.float64)).astype(np.float64)
    stream = srnsz.compress(field, 160.0, "psnr", "wavelet")

    def drop_escapes(sections):
        del sections[ESCAPE_SECTION]

    def truncate_codes(sections):
        sections["CODE"] = sections["CODE"][: len(sections["CODE"]) // 2]

    def no_codes(sections):
        del sections["CODE"]

    for change in (drop_escapes, truncate_codes, no_codes):
        with pytest.raises(SrnszError):
            srnsz.decompress(rewritten(stream, section_change=change))


def test_the_predictor_states_errors_above_its_step():
    """compress() of the predictor itself: the step is 2 eb, the error it states is what its reconstruction has."""
    data = smooth_field((30, 31), np.float64)
    encoded = WaveletPredictor(approximation=4).compress(data, 0.01)
    assert encoded.params["step"] == 0.02 and encoded.format_minor == FORMAT_MINOR
    assert encoded.max_error == np.abs(encoded.recon - data).max()
    with pytest.raises(InvalidInputError, match="finite"):
        WaveletPredictor().compress(np.array([1.0, np.nan, 2.0]), 0.1)


@pytest.mark.parametrize("data,target", [(np.array([1.5, -2.0], np.float32), 150.0),
                                         ((1e4 + smooth_field((12, 14, 16), np.float64)).astype(np.float32), 120.0),
                                         ((1e5 + smooth_field((12, 14, 16), np.float64)).astype(np.float32), 90.0)])
def test_exact_previews_do_not_derail_the_default_psnr_mode(data, target):
    """The wavelet's preview can be exact (inf dB) inside the search's bracket."""
    recon = srnsz.decompress(srnsz.compress(data, target, "psnr"))
    assert quality(data, recon).psnr_db >= target


def test_a_target_beyond_the_integer_codes_is_refused_or_left_to_interpolation():
    field = 1e12 + smooth_field((16, 16, 16), np.float64)
    with pytest.raises(InvalidInputError, match="too fine"):
        srnsz.compress(field, 150.0, "psnr", "wavelet")
    stream = srnsz.compress(field, 150.0, "psnr")
    assert srnsz.info(stream).predictor != "wavelet"
    assert quality(field, srnsz.decompress(stream)).psnr_db >= 150.0


def test_escapes_of_several_bands_come_back_in_place():
    field = 1e6 + smooth_field((16, 16, 16), np.float64) * 1e3
    field[3, 5, 7] += 5e4
    field[12, 2, 9] -= 7e4
    stream = srnsz.compress(field, 150.0, "psnr", "wavelet")
    assert ESCAPE_SECTION in read_container(stream).sections
    assert quality(field, srnsz.decompress(stream)).psnr_db >= 150.0  # and the checksum held


def test_an_escape_section_must_match_the_escaped_codes(smooth3d):
    plain = srnsz.compress(smooth3d, 30.0, "psnr", "wavelet")
    assert ESCAPE_SECTION not in read_container(plain).sections

    def add_escapes(sections):
        sections[ESCAPE_SECTION] = lossless.pack(np.zeros(3, "<i8").tobytes())

    with pytest.raises(StreamFormatError, match="escape"):
        srnsz.decompress(rewritten(plain, section_change=add_escapes))
    field = 1e6 + smooth_field((16, 16, 16), np.float64)
    escaped = srnsz.compress(field, 160.0, "psnr", "wavelet")

    def one_more(sections):
        raw = lossless.unpack(sections[ESCAPE_SECTION], "test")
        sections[ESCAPE_SECTION] = lossless.pack(raw + np.zeros(1, "<i8").tobytes())

    with pytest.raises(StreamFormatError, match="escape"):
        srnsz.decompress(rewritten(escaped, section_change=one_more))


def test_a_codec_passes_the_quality_mode_switches(smooth3d):
    assert srnsz.Codec(30.0, "psnr").compress(smooth3d) == srnsz.compress(smooth3d, 30.0, "psnr")
    plain = srnsz.Codec(30.0, "psnr", wavelet=False, restoration=False).compress(smooth3d)
    assert plain == srnsz.compress(smooth3d, 30.0, "psnr", wavelet=False, restoration=False)
    assert srnsz.info(plain).predictor == "interp"


def test_the_ssim_mode_keeps_the_smaller_of_interpolation_and_wavelet(smooth3d):
    from srnsz.metrics import ssim_over

    with_wavelet = srnsz.compress(smooth3d, 0.99, "ssim")
    without = srnsz.compress(smooth3d, 0.99, "ssim", wavelet=False)
    assert srnsz.info(with_wavelet).predictor == "wavelet" and srnsz.info(without).predictor == "interp"
    assert len(with_wavelet) < len(without)
    recon = srnsz.decompress(with_wavelet)
    assert ssim_over(smooth3d, recon) >= 0.99
    assert_bound(smooth3d, recon, srnsz.info(with_wavelet).error_bound["abs"])


def test_srnsz_info_tells_a_wavelet_stream(smooth3d, tmp_path):
    from conftest import run

    np.save(tmp_path / "x.npy", smooth3d)
    run("compress", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.srnsz"), "--mode", "psnr", "--eb", "30")
    shown = run("info", str(tmp_path / "x.srnsz")).stdout
    assert "wavelet        : levels per axis [" in shown and "holds none of its own" in shown
