"""Streams committed with every format version so far must keep decoding to the same values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bound, smooth_field

import srnsz
from srnsz import missing
from srnsz.coding.context_mixing import BINARISATION_1, BINARISATION_2, BINARISATION_3
from srnsz.coding.entropy import coding_methods
from srnsz.decomposition.parts import PartLayout
from srnsz.errors import ReconstructionMismatchError
from srnsz.format.container import read_container
from srnsz.format.parts import unpack_parts
from srnsz.neural.runtime import FIXED_POINT, FIXED_POINT_1
from srnsz.predictors.hat import HatPolicy
from srnsz.predictors.interp import derived_level_bounds

DATA = Path(__file__).parent / "data"


ORIGINALS = {"v1": "golden_v1_original.npy", "v1_1": "golden_field.npy", "v1_2": "golden_field.npy"}


COMPACT = (1, 14)  # the sections framed compactly, interp's level bounds derived from its parameters


def bounds_given(params: dict) -> dict:
    """Interp ``params`` (a header's) with the level bounds they list or derive (format 1.14) under one key."""
    params = dict(params)
    if "eb" in params:
        config = params["config"]
        params["bounds"] = derived_level_bounds(params["levels"], params.pop("eb"), config["alpha"], config["beta"])
    elif "level_bounds" in params:
        params["bounds"] = [float(b) for b in params.pop("level_bounds")]
    if isinstance(params.get("mean"), dict):
        params["mean"] = bounds_given(params["mean"])
    return params


def same_content(stream: bytes, golden: bytes, decoded_alike: frozenset[str] | set[str] = frozenset()) -> None:
    """Assert that ``stream`` (format 1.14) holds what ``golden`` (an earlier format) does: the same header with the
    level bounds listed there and derived here, the same sections (the streams of parts compared alike; the sections
    ``decoded_alike`` left to the caller)."""
    now, then = read_container(stream), read_container(golden)
    assert now.version == COMPACT > then.version
    for header in (now.header, then.header):
        header["predictor"]["params"] = bounds_given(header["predictor"]["params"])
    assert now.header == then.header
    assert now.sections.keys() == then.sections.keys()
    for tag, payload in now.sections.items():
        if tag in decoded_alike:
            continue
        if tag == "PART":
            count = len(now.header["parts"]["starts"])
            for part, golden_part in zip(unpack_parts(payload, count), unpack_parts(then.sections[tag], count)):
                same_content(bytes(part), bytes(golden_part))
        else:
            assert payload == then.sections[tag], tag


def reproduced(name: str, *args, **options) -> bytes:
    """The stream srnsz.compress(golden_<name>_original, *args, **options) writes now, asserted to be the golden one
    (byte for byte, or in its content where the golden stream is of a format before 1.14). A psnr-mode golden
    stream is older than the wavelet predictor (format 1.15): its writer's interpolation alone (wavelet=False)."""
    if "psnr" in args:
        options = {"wavelet": False, **options}
    stream = srnsz.compress(np.load(DATA / f"golden_{name}_original.npy"), *args, **options)
    reproduces(stream, (DATA / f"golden_{name}.srnsz").read_bytes())
    return stream


def reproduces(stream: bytes, golden: bytes) -> None:
    """Assert that ``stream`` is ``golden``: byte for byte, or in its content where ``golden`` is of a format before
    1.14 and ``stream`` of 1.14."""
    if read_container(golden).version < COMPACT <= read_container(stream).version:
        same_content(stream, golden)
    else:
        assert stream == golden


def reproduced_but_the_mask(name: str, *args, **options) -> bytes:
    """As :func:`reproduced`, for a golden stream whose land repeats along axis 0: written now with that mask stored
    once (format 1.12, in 1.14's framing), everything else (header, codes, anchors, values) the golden stream's."""
    stream = srnsz.compress(np.load(DATA / f"golden_{name}_original.npy"), *args, **options)
    golden = (DATA / f"golden_{name}.srnsz").read_bytes()
    same_content(stream, golden, decoded_alike={"MASK"})
    now, then = read_container(stream).sections["MASK"], read_container(golden).sections["MASK"]
    assert now[0] == missing.MASK_REPEATED != then[0]
    shape = tuple(read_container(stream).header["shape"])
    assert np.array_equal(missing.decode_mask(now, shape), missing.decode_mask(then, shape))
    assert len(now) < len(then)
    return stream


@pytest.mark.parametrize("name,version", [("v1", "1.0"), ("v1_1", "1.1"), ("v1_2", "1.2"), ("v1_3", "1.3"),
                                          ("v1_4", "1.4"), ("v1_6", "1.6"),
                                          ("v1_6_rows", "1.6"), ("v1_7", "1.7"), ("v1_7_rows", "1.7"),
                                          ("v1_7_lone", "1.7"), ("v1_8_fast", "1.8"), ("v1_12_mask", "1.12"),
                                          ("v1_13_series", "1.13"), ("v1_14", "1.14"),
                                          ("v1_15_wavelet", "1.15")])
def test_golden_stream_still_decodes(name, version):
    stream = (DATA / f"golden_{name}.srnsz").read_bytes()
    expected = np.load(DATA / f"golden_{name}_expected.npy")
    recon = srnsz.decompress(stream)
    assert np.array_equal(recon.view(np.uint32), expected.view(np.uint32))
    original = np.load(DATA / ORIGINALS.get(name, f"golden_{name}_original.npy"))
    assert_bound(original, recon, srnsz.info(stream).error_bound["abs"])
    assert srnsz.info(stream).format_version == version


def test_current_writer_reproduces_its_golden_stream():
    # The format is frozen: the same field, bound and options must give the same bytes.
    original = np.load(DATA / "golden_v1_3_original.npy")
    stream = srnsz.compress(original, 1e-3, "rel", fill_value=-999.0, binarisation=1)
    assert stream == (DATA / "golden_v1_3.srnsz").read_bytes()
    assert srnsz.info(stream).missing["detected"] == [1e20]
    missing = ~np.isfinite(original) | (original == np.float32(1e20)) | (original == -999)
    assert np.array_equal(srnsz.decompress(stream)[missing].view(np.uint32), original[missing].view(np.uint32))


def test_quintic_psnr_stream_is_reproduced():
    stream = reproduced("v1_4", 60.0, "psnr", kind="quintic", round_bias=0.1, restoration=False, row_deltas=False,
                        lone_slack=0.0, binarisation=1)
    assert srnsz.info(stream).predictor_params["config"]["kind"] == "quintic"


def test_restored_psnr_stream_is_reproduced():
    stream = reproduced("v1_6", 40.0, "psnr", lone_slack=0.0, binarisation=1)  # written before lone codes were dropped
    assert srnsz.info(stream).restoration


def test_row_difference_psnr_stream_is_reproduced():
    stream = reproduced("v1_6_rows", 90.0, "psnr", lone_slack=0.0, binarisation=1)
    assert BINARISATION_1.row_delta_method in coding_methods(read_container(stream).sections["CODE"])


def test_binarisation_2_streams_are_reproduced():
    # Format 1.7: every context-mixed table in binarisation 2; long Exp-Golomb tails, escapes and missing values
    stream = reproduced_but_the_mask("v1_7", 1e-6, "rel")
    assert coding_methods(read_container(stream).sections["CODE"]) == {BINARISATION_2.method}
    stream = reproduced("v1_7_rows", 90.0, "psnr", lone_slack=0.0)
    assert BINARISATION_2.row_delta_method in coding_methods(read_container(stream).sections["CODE"])


def test_psnr_stream_with_lone_codes_dropped_is_reproduced():
    # the encoder's choice (no format change): the psnr mode drops lone codes on this field at this PSNR
    stream = reproduced("v1_7_lone", 40.0, "psnr")
    assert stream != srnsz.compress(np.load(DATA / "golden_v1_7_lone_original.npy"), 40.0, "psnr", lone_slack=0.0,
                                    wavelet=False)


def test_fields_without_missing_values_keep_their_format_1_2_bytes():
    # Written by the commit before missing values (caf3d49): a field with nothing missing is coded as before.
    original = np.load(DATA / "golden_v1_2_finite_original.npy")
    assert srnsz.compress(original, 1e-3, "rel", binarisation=1) == (DATA / "golden_v1_2_finite.srnsz").read_bytes()


def decoded_float_stream(stream: bytes, expected: np.ndarray, monkeypatch) -> bool:
    """Whether a float32-network stream (format < 1.9) decodes to ``expected`` bit for bit on this machine. Where its
    float kernels give other last bits (another CPU kind or torch build), the checksum must refuse it; decoded without
    the check, what a broken decoder would also fail must still hold: the codes stay in step and the values move by
    far less than the bound (False is returned: the exact reproduction cannot be checked here)."""
    eb = srnsz.info(stream).error_bound["abs"]
    try:
        recon = srnsz.decompress(stream)
    except ReconstructionMismatchError as exc:
        assert "kind of machine that compressed it" in str(exc)
        monkeypatch.setattr(srnsz.api, "checksum", lambda _: read_container(stream).header["checksum"]["value"])
        drifted = srnsz.decompress(stream)
        assert np.abs(drifted.astype(np.float64) - expected).max() <= 1e-3 * eb
        return False
    assert np.array_equal(recon.view(np.uint32), expected.view(np.uint32))
    return True


def checked_float_hat_stream(name: str, monkeypatch) -> tuple[bytes, np.ndarray]:
    """(stream, original) of the float32-network golden stream ``name`` (on the hat golden field), after checking its
    golden values hold the bound and that it decodes to them here; skipped where its torch or this CPU's float
    kernels differ (see :func:`decoded_float_stream`)."""
    torch = pytest.importorskip("torch")
    stream = (DATA / f"golden_{name}.srnsz").read_bytes()
    header_torch = read_container(stream).header["numerics"]["torch"]
    if torch.__version__.split("+")[0] != header_torch.split("+")[0]:
        pytest.skip(f"the golden hat stream was made with torch {header_torch}; this is torch {torch.__version__}")
    original = np.load(DATA / "golden_hat_original.npy")
    expected = np.load(DATA / f"golden_{name}_expected.npy")
    assert_bound(original, expected, srnsz.info(stream).error_bound["abs"])
    if not decoded_float_stream(stream, expected, monkeypatch):
        pytest.skip("this CPU's float torch kernels differ from the golden stream's machine: decoded in step within "
                    "1e-3 of the bound of the golden values; the exact reproduction was not checked")
    return stream, original


def test_float_hat_stream_of_the_shipped_network_still_decodes_and_is_reproduced(monkeypatch):
    # A stream of format 1.2 whose network ran in float32: its bits need the compressor's torch and kind of CPU.
    pytest.importorskip("torch")
    if srnsz.info((DATA / "golden_hat.srnsz").read_bytes()).predictor != "hat":
        pytest.fail("the golden hat stream does not use the network")
    stream, original = checked_float_hat_stream("hat", monkeypatch)
    # Made before the sample decision asked for a 3% gain on the crop (this field's crop gains less): reproduced
    # with the decision of then, which only chooses whether the network runs.
    # Made before the network also ran on the planes decoded within a level (format 1.5): that is switched off.
    again = srnsz.compress(original, 1e-3, "rel", predictor="hat", model="hat_tiny_bound", device="cpu",
                           decoded_planes=False, threads=2, arithmetic="float32", policy=HatPolicy(sample_min_gain=1.0),
                           binarisation=1)
    assert again == stream


def test_float_hat_stream_with_decoded_planes_still_decodes_and_is_reproduced(monkeypatch):
    pytest.importorskip("torch")
    made_with = srnsz.info((DATA / "golden_hat_v1_5.srnsz").read_bytes())
    assert made_with.predictor == "hat" and made_with.predictor_params["hat"]["decoded_planes"] is True
    assert made_with.format_version == "1.5"
    stream, original = checked_float_hat_stream("hat_v1_5", monkeypatch)
    again = srnsz.compress(original, 1e-3, "rel", predictor="hat", model="hat_nano_series", device="cpu", threads=2,
                           arithmetic="float32", binarisation=1)
    assert again == stream


@pytest.mark.parametrize("name", ["hat_v1_9", "ae_v1_9", "hat_v1_16", "ae_v1_16"])
def test_fixed_point_network_stream_decodes_and_is_reproduced_bit_for_bit(name):
    # The network runs in fixed point, so this holds on every machine, with no skip: format 1.16 in fixed-point-2;
    # format 1.9 in fixed-point-1, whose square roots are torch's (MKL's on x86 CPUs, correctly rounded elsewhere),
    # which round alike on this golden field.
    pytest.importorskip("torch")
    stream = (DATA / f"golden_{name}.srnsz").read_bytes()
    made_with = srnsz.info(stream)
    version = name.split("_v")[1].replace("_", ".")
    arithmetic = FIXED_POINT_1 if version == "1.9" else FIXED_POINT
    assert made_with.format_version == version and made_with.predictor == name.split("_")[0]
    params = made_with.predictor_params
    assert (params["hat"]["inference"] if name.startswith("hat") else params)["arithmetic"] == arithmetic
    assert (params["hat"]["blocks_hat"] if name.startswith("hat") else params["blocks"]["ae"]) > 0
    expected = np.load(DATA / f"golden_{name}_expected.npy")
    original_name = "golden_hat_original.npy" if name.startswith("hat") else "golden_ae_v1_9_original.npy"
    original = np.load(DATA / original_name)
    recon = srnsz.decompress(stream)
    assert np.array_equal(recon.view(np.uint32), expected.view(np.uint32))
    assert_bound(original, recon, made_with.error_bound["abs"])
    if name.startswith("hat"):  # with the network the stream names
        again = srnsz.compress(original, 1e-3, "rel", predictor="hat", model=params["hat"]["weights"],
                               arithmetic=arithmetic)
    else:
        again = srnsz.compress(original, 0.1, "rel", predictor="ae", compete_interp=False, arithmetic=arithmetic)
    reproduces(again, stream)


def test_fast_profile_stream_is_reproduced():
    # Format 1.8: every table in binarisation 3 (the fast profile), on v1_7's field and bound
    stream = reproduced_but_the_mask("v1_8_fast", 1e-6, "rel", profile="fast")
    assert coding_methods(read_container(stream).sections["CODE"]) == {BINARISATION_3.method}


@pytest.mark.parametrize("name,version", [("chunked_v1_0", (1, 0)), ("chunked_v1_1", (1, 1)),
                                          ("chunked_v1_1_compact", (1, 1))])
def test_golden_chunked_stream_still_decodes(name, version):
    import io

    from srnsz.io import chunked

    raw = (DATA / f"golden_{name}.srnszc").read_bytes()
    index = chunked.read_index(io.BytesIO(raw))
    assert index.version == version
    recon = chunked.decompress_chunked(io.BytesIO(raw))
    assert np.array_equal(recon.view(np.uint32), np.load(DATA / f"golden_{name}_expected.npy").view(np.uint32))
    assert_bound(np.load(DATA / "golden_chunked_v1_0_original.npy"), recon, index.error_bound["abs"])


def test_current_chunked_writer_reproduces_its_golden_stream():
    import io

    from srnsz.io import chunked

    buf = io.BytesIO()
    chunked.compress_chunked(np.load(DATA / "golden_chunked_v1_0_original.npy"), buf, eb=1e-3, mode="rel",
                             chunk=(8, 8, 16))
    # its chunks' streams in format 1.14 (golden_chunked_v1_1 holds them as format 1.2-1.3 wrote them)
    assert buf.getvalue() == (DATA / "golden_chunked_v1_1_compact.srnszc").read_bytes()


def test_coded_coordinates_stream_still_decodes_and_is_reproduced():
    # Format 1.10: a variable's 2-D coordinates coded as streams of their own (section VCRS), a wrapping longitude
    from make_golden import curvilinear_variable

    from srnsz.api import variable_metadata
    from srnsz.format.coords import coordinate_bound

    stream = (DATA / "golden_v1_10_coords.srnsz").read_bytes()
    assert srnsz.info(stream).format_version == "1.10" and "VCRS" in read_container(stream).sections
    expected = np.load(DATA / "golden_v1_10_coords_expected.npy")
    assert np.array_equal(srnsz.decompress(stream).view(np.uint32), expected.view(np.uint32))
    data, meta = curvilinear_variable()
    assert_bound(data, expected, srnsz.info(stream).error_bound["abs"])
    decoded = variable_metadata(stream).coords
    assert np.array_equal(np.stack([c.values for c in decoded]), np.load(DATA / "golden_v1_10_coords_coords.npy"))
    for original, back in zip(meta.coords, decoded):
        assert np.abs(back.values - original.values).max() <= coordinate_bound(original.values)
    again = srnsz.compress(data, 1e-4, "rel", metadata=meta)
    # VCRS holds the coordinates' own streams (now format 1.14 too), VMET the record that points into it
    same_content(again, stream, decoded_alike={"VCRS", "VMET"})
    now, then = variable_metadata(again), variable_metadata(stream)
    assert (now.name, now.dims, now.attrs) == (then.name, then.dims, then.attrs)
    assert [(c.name, c.dims, c.attrs, c.values.tobytes()) for c in now.coords] == \
        [(c.name, c.dims, c.attrs, c.values.tobytes()) for c in then.coords]


def test_parts_stream_still_decodes_and_is_reproduced():
    # Format 1.11: a field of 4M values coded in two parts (section PART); decoding checks the reconstruction against
    # the checksum the compressor combined from the parts', so it is bit for bit the one verified
    from make_golden import parts_field

    stream = (DATA / "golden_v1_11_parts.srnsz").read_bytes()
    made = srnsz.info(stream)
    assert made.format_version == "1.11" and made.parts == 2 and "PART" in read_container(stream).sections
    original = parts_field()
    assert_bound(original, srnsz.decompress(stream, threads=2), made.error_bound["abs"])
    # written with the cut by shape alone; by default a stream this small (ratio ~2800) is one part, and smaller
    reproduces(srnsz.compress(original, 1e-3, "rel", threads=1, parts=PartLayout(part_bytes=0)), stream)
    one = srnsz.compress(original, 1e-3, "rel", threads=1)
    assert srnsz.info(one).parts == 1 and len(one) < len(stream)


@pytest.mark.parametrize("bad", [3, 0, "1"])
def test_only_binarisations_1_and_2_can_be_asked_for(bad):
    with pytest.raises(srnsz.errors.InvalidInputError, match="binarisation must be 1 or 2"):
        srnsz.compress(np.linspace(0, 1, 100, dtype=np.float32), 1e-3, binarisation=bad)


def test_a_series_stream_with_its_mean_and_another_code_order_is_reproduced():
    stream = reproduced("v1_13_series", 1e-2, "rel")
    config = srnsz.info(stream).predictor_params["config"]
    assert config["code_order"] == [1, 2, 0] and config["mean_axis"] == 0
    assert {"MANC", "MCOD"} <= read_container(stream).sections.keys()


def test_a_stream_of_format_1_14_is_reproduced():
    stream = reproduced("v1_14", 1e-3, "rel", fill_value=-999.0)
    assert "eb" in srnsz.info(stream).predictor_params and "level_bounds" not in srnsz.info(stream).predictor_params


def test_a_wavelet_stream_of_format_1_15_is_reproduced():
    # its reconstruction is IEEE elementwise arithmetic only: the expected values hold on every machine
    stream = reproduced("v1_15_wavelet", 30.0, "psnr", wavelet=True)
    assert srnsz.info(stream).predictor == "wavelet"
    assert srnsz.info(stream).predictor_params["levels"] == [2, 3, 3]


def test_a_mask_the_same_on_every_level_is_stored_once():
    stream = reproduced("v1_12_mask", 1e-3, "rel")
    assert read_container(stream).sections["MASK"][0] == missing.MASK_REPEATED


def test_the_writer_of_formats_1_2_to_1_6_lists_the_level_bounds_as_it_computed_them():
    # binarisation=1 reproduces those streams byte for byte: its bounds are eb / min(alpha ** k, beta), pow and all,
    # where format 1.14 derives them by repeated multiplication (one ulp apart for alphas such as 1.3)
    data = smooth_field((12, 16, 20), seed=4)
    stream = srnsz.compress(data, 1e-3, "abs", tune="off", alpha=1.3, beta=8.0, binarisation=1)
    params = srnsz.info(stream).predictor_params
    levels = params["levels"]
    assert params["level_bounds"] == [1e-3 / min(1.3 ** (levels - 1 - level), 8.0) for level in range(levels)]
    assert read_container(stream).version < COMPACT and "eb" not in params
    derived = srnsz.info(srnsz.compress(data, 1e-3, "abs", tune="off", alpha=1.3, beta=8.0)).predictor_params
    assert derived["eb"] == 1e-3 and "level_bounds" not in derived
    assert_bound(data, srnsz.decompress(stream), 1e-3)
