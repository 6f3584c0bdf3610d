"""The psnr mode's format 1.6 features: the restoration filter (srnsz.restoration) and codes coded as row
differences (srnsz.coding.batch.METHOD_ROW_DELTAS)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import srnsz
from srnsz.coding.batch import CodeBatch, row_deltas, undo_row_deltas
from srnsz.coding.context_mixing import BINARISATION_2
from srnsz.coding.entropy import CodeReader, ContextCodeWriter, coding_methods
from srnsz.errors import StreamFormatError
from srnsz.format.container import read_container, write_container
from srnsz.metrics import psnr_over
from srnsz.quantizer import ESCAPE, RADIUS
from srnsz.restoration import (
    CLIP_SHARE,
    SECTION,
    RestorationFilter,
    apply_restoration,
    class_count,
    fit_restoration,
    group_count,
)
from tests.conftest import assert_bound, smooth_field

ROW_DELTAS = BINARISATION_2.row_delta_method  # new streams' row differences (format 1.7)


def _noisy(shape: tuple[int, ...], dtype=np.float32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """(original, a reconstruction of it within the returned bound: a checkerboard error, which the neighbours
    see, plus white noise)."""
    rng = np.random.default_rng(seed)
    original = smooth_field(shape, dtype, seed=seed, waves=2)
    bound = 0.02 * float(original.max() - original.min())
    checkerboard = np.where(np.indices(shape).sum(axis=0) % 2 == 0, 0.6, -0.6)
    error = (checkerboard + rng.uniform(-0.3, 0.3, shape)) * bound
    return original, (original + error).astype(dtype), bound


@pytest.mark.parametrize("shape", [(2001,), (80, 67), (20, 25, 31), (6, 8, 9, 11)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("per_parity", [False, True])
def test_filter_lowers_the_error_and_moves_no_value_past_its_clip(shape, dtype, per_parity) -> None:
    original, recon, bound = _noisy(shape, dtype)
    restoration = fit_restoration(recon, original, None, bound, per_parity)
    assert restoration is not None
    assert restoration.weights.shape == (class_count(len(shape), per_parity), group_count(len(shape)))
    assert restoration.clip == CLIP_SHARE * bound
    restored = apply_restoration(recon, restoration)
    assert restored.dtype == recon.dtype and restored.shape == recon.shape
    assert np.abs(restored.astype(np.float64) - recon).max() <= restoration.clip
    assert_bound(original, restored, bound + restoration.clip)
    assert psnr_over(original, restored) > psnr_over(original, recon) + 0.5


def test_filter_is_fitted_on_the_valid_points_only() -> None:
    original, recon, bound = _noisy((30, 40))
    valid = np.ones(original.shape, dtype=bool)
    valid[:, :10] = False
    garbage = original.copy()
    garbage[~valid] = 1e6  # what the fit must not see
    assert fit_restoration(recon, garbage, valid, bound).to_bytes() == \
        fit_restoration(recon, original, valid, bound).to_bytes()


def test_filter_refuses_what_it_cannot_fit() -> None:
    original, recon, bound = _noisy((40, 40))
    assert fit_restoration(recon, original, None, 0.0) is None
    broken = recon.copy()
    broken[3, 3] = np.nan
    assert fit_restoration(broken, original, None, bound) is None
    assert fit_restoration(recon[:3, :3], original[:3, :3], None, bound) is None  # 2 or 3 points per class


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_filter_bytes_round_trip_and_damage_is_refused(ndim) -> None:
    original, recon, bound = _noisy((200, 24, 16)[:ndim] if ndim < 3 else (20, 24, 16))
    restoration = fit_restoration(recon, original, None, bound)
    payload = restoration.to_bytes()
    again = RestorationFilter.from_bytes(payload, ndim)
    assert np.array_equal(apply_restoration(recon, again), apply_restoration(recon, restoration))
    with pytest.raises(StreamFormatError, match="bytes"):
        RestorationFilter.from_bytes(payload[:-4], ndim)
    with pytest.raises(StreamFormatError, match="non-finite or negative"):
        RestorationFilter.from_bytes(struct.pack("<d", -1.0) + payload[8:], ndim)
    with pytest.raises(StreamFormatError, match="non-finite"):
        RestorationFilter.from_bytes(payload[:-4] + np.float32(np.inf).tobytes(), ndim)
    with pytest.raises(StreamFormatError, match="dimensions"):
        apply_restoration(recon.ravel(), restoration) if ndim > 1 else apply_restoration(recon[None], restoration)


def _smooth_3d() -> np.ndarray:
    return smooth_field((40, 48, 56), seed=11, waves=6)


def test_psnr_stream_with_a_filter_is_smaller_meets_its_target_and_states_the_wider_bound() -> None:
    data = _smooth_3d()
    plain = srnsz.compress(data, 50.0, "psnr", restoration=False)
    stream = srnsz.compress(data, 50.0, "psnr")
    info = srnsz.info(stream)
    assert info.restoration and info.format_version == "1.14" and SECTION in read_container(stream).sections
    assert not srnsz.info(plain).restoration and SECTION not in read_container(plain).sections
    assert len(stream) < 0.97 * len(plain)
    recon = srnsz.decompress(stream)
    assert psnr_over(data, recon) >= 50.0
    assert_bound(data, recon, info.error_bound["abs"])


def test_bound_modes_never_carry_a_filter() -> None:
    data = _smooth_3d()
    for mode, eb in (("rel", 1e-2), ("abs", 0.05)):
        assert not srnsz.info(srnsz.compress(data, eb, mode)).restoration


def test_filter_with_missing_values_and_float64() -> None:
    data = _smooth_3d().astype(np.float64)
    data[:, :6, :7] = np.nan
    data[5, 20, 30] = np.inf
    stream = srnsz.compress(data, 55.0, "psnr")
    recon = srnsz.decompress(stream)
    assert srnsz.info(stream).restoration
    bad = ~np.isfinite(data)
    assert np.array_equal(recon[bad].view(np.uint64), data[bad].view(np.uint64))
    assert psnr_over(data, recon, ~bad) >= 55.0
    assert_bound(np.where(bad, 0, data), np.where(bad, 0, recon), srnsz.info(stream).error_bound["abs"])


def test_a_filter_section_in_an_older_format_is_refused() -> None:
    stream = srnsz.compress(_smooth_3d(), 50.0, "psnr")
    assert srnsz.info(stream).restoration
    container = read_container(stream)
    with pytest.raises(StreamFormatError, match="RSTR"):
        srnsz.decompress(write_container(container.header, container.sections, 5))


def test_cli_no_restoration(tmp_path, capsys) -> None:
    from srnsz.cli import main

    data = _smooth_3d()
    np.save(tmp_path / "x.npy", data)
    for flags, name in (([], "on.srnsz"), (["--no-restoration"], "off.srnsz")):
        main(["compress", str(tmp_path / "x.npy"), "-o", str(tmp_path / name), "--mode", "psnr", "--eb", "50", *flags])
    assert srnsz.info((tmp_path / "on.srnsz").read_bytes()).restoration
    assert not srnsz.info((tmp_path / "off.srnsz").read_bytes()).restoration
    capsys.readouterr()
    main(["info", str(tmp_path / "on.srnsz")])
    assert "restoration    : a least-squares filter" in capsys.readouterr().out


# Row differences of the codes (coding.batch.METHOD_ROW_DELTAS, format 1.6), the psnr mode's other coding change.

@pytest.mark.parametrize("shape", [(), (1, 1), (30, 100), (5, 40, 100)])
def test_row_deltas_round_trip_and_refuse_what_they_cannot_hold(shape) -> None:
    rng = np.random.default_rng(5)
    n = int(np.prod(shape)) if shape else 777
    codes = np.rint(rng.laplace(0, 50, n)).astype(np.int16)
    codes[::11] = rng.choice([32767, -32767, 0, 5], codes[::11].size)
    batch = CodeBatch(codes, np.zeros(n, np.uint8), 0, None, shape)
    deltas = row_deltas(batch)
    if deltas is None:  # a jump from -32767 to 32767 does not fit
        assert np.abs(np.diff(codes.astype(np.int32).reshape(shape or (-1,)), axis=-1)).max() > RADIUS
        codes = codes // 2
        deltas = row_deltas(CodeBatch(codes, batch.contexts, 0, None, shape))
    assert np.array_equal(undo_row_deltas(deltas.codes, shape), codes)
    codes[n // 2] = codes[0] = ESCAPE  # escapes stay escapes; the codes after them differ from the last plain one
    deltas = row_deltas(CodeBatch(codes, batch.contexts, 0, None, shape))
    assert np.array_equal(deltas.codes == ESCAPE, codes == ESCAPE)
    assert np.array_equal(undo_row_deltas(deltas.codes, shape), codes)
    if n > 1:  # two deltas of 20000 in a row sum past the range
        with pytest.raises(StreamFormatError, match="code range"):
            undo_row_deltas(np.full(n, 20000, np.int16), (n,))


@pytest.mark.parametrize("allowed", [False, True])
def test_writer_codes_rows_as_differences_only_where_allowed_and_smaller(allowed) -> None:
    rng = np.random.default_rng(6)
    row = np.rint(rng.normal(0, 30, 64)).astype(np.int16)
    repeating = np.tile(row, (40, 1))  # the same codes along every column: rows differ by nothing
    noisy = np.rint(rng.laplace(0, 3, (40, 64))).astype(np.int16)
    writer = ContextCodeWriter(row_deltas=allowed)
    contexts = np.zeros(repeating.size, np.uint8)
    writer.write(repeating.T.ravel(), contexts, 0, None, (64, 40))
    writer.write(noisy.ravel(), contexts, 1, None, (40, 64))
    payload = writer.finish()
    assert (ROW_DELTAS in coding_methods(payload)) == allowed
    reader = CodeReader(payload)
    assert np.array_equal(reader.read(contexts, 0, None, (64, 40)), repeating.T.ravel())
    assert np.array_equal(reader.read(contexts, 1, None, (40, 64)), noisy.ravel())
    if allowed:
        assert len(payload) < len(ContextCodeWriter(batches=writer.batches).finish())


def _profile_field() -> np.ndarray:
    """A geopotential-like field: an exponential vertical profile, nearly the same at every horizontal point."""
    z, y, x = np.meshgrid(np.arange(17), np.arange(48), np.arange(64), indexing="ij")
    return (np.exp(z / 4.0) * 1000 + 3 * np.sin(y / 9.0) * np.cos(x / 11.0)).astype(np.float32)


def test_psnr_stream_codes_repeating_rows_as_differences_and_bound_modes_never_do() -> None:
    data = _profile_field()
    stream = srnsz.compress(data, 90.0, "psnr", wavelet=False)
    assert ROW_DELTAS in coding_methods(read_container(stream).sections["CODE"])
    assert srnsz.info(stream).format_version == "1.14"
    recon = srnsz.decompress(stream)
    assert psnr_over(data, recon) >= 90.0
    assert_bound(data, recon, srnsz.info(stream).error_bound["abs"])
    for eb in (1e-3, 1e-5):
        plain = srnsz.compress(data, eb, "rel")
        assert ROW_DELTAS not in coding_methods(read_container(plain).sections["CODE"])


def test_psnr_mode_keeps_a_code_order_the_caller_fixed() -> None:
    # On this profile the trials choose a mean that the finished check then drops: the caller's order must stay.
    data = _profile_field()
    stream = srnsz.compress(data, 90.0, "psnr", code_order=(0, 2, 1), wavelet=False)
    assert srnsz.info(stream).predictor_params["config"]["code_order"] == [0, 2, 1]
    assert psnr_over(data, srnsz.decompress(stream)) >= 90.0


def test_ssim_stream_with_a_filter_meets_its_target_and_is_smaller() -> None:
    from srnsz.metrics import ssim_over

    data = _smooth_3d()
    plain = srnsz.compress(data, 0.999, "ssim", restoration=False, wavelet=False)
    stream = srnsz.compress(data, 0.999, "ssim", wavelet=False)
    assert srnsz.info(stream).restoration and not srnsz.info(plain).restoration
    assert len(stream) < len(plain)
    recon = srnsz.decompress(stream)
    assert ssim_over(data, recon) >= 0.999
    assert_bound(data, recon, srnsz.info(stream).error_bound["abs"])


@pytest.mark.parametrize("make", ["restored", "rows"])
def test_damaged_1_6_streams_give_clear_errors(make) -> None:
    from srnsz.errors import ReconstructionMismatchError
    from srnsz.format.container import write_container

    stream = (srnsz.compress(_smooth_3d(), 50.0, "psnr") if make == "restored"
              else srnsz.compress(_profile_field(), 90.0, "psnr", wavelet=False))
    container = read_container(stream)
    assert SECTION in container.sections if make == "restored" else \
        ROW_DELTAS in coding_methods(container.sections["CODE"])
    for pos in range(12, len(stream), max(1, len(stream) // 150)):
        damaged = bytearray(stream)
        damaged[pos] ^= 0x5A
        with pytest.raises((StreamFormatError, ReconstructionMismatchError)):
            srnsz.decompress(bytes(damaged))
    # Sections rewritten with valid CRCs (a hostile stream): caught by their checks or the checksum.
    if make == "restored":
        payload = bytearray(container.sections[SECTION])
        payload[:8] = struct.pack("<d", 1e30)  # a huge clip
        forged = {**container.sections, SECTION: bytes(payload)}
    else:
        code = bytearray(container.sections["CODE"])
        code[len(code) // 2] ^= 0xFF
        forged = {**container.sections, "CODE": bytes(code)}
    with pytest.raises((StreamFormatError, ReconstructionMismatchError)):
        srnsz.decompress(write_container(container.header, forged, container.version[1]))
