"""Large fields coded in parts (format 1.11): the same bytes for every thread count, the bound on every value, the
parts decided by the shape, the layout and the stream's estimated size alone, damaged part streams refused."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_bound, smooth_field

import srnsz
from srnsz.decomposition import parts as plan
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.format import parts as layout
from srnsz.format.container import read_container, write_container

# parts of 4096 values, slabs of multiples of 8 planes, of any stream size: fast tests
SMALL = plan.PartLayout(points=1 << 12, align=8, part_bytes=0)


def test_the_split_depends_on_the_shape_and_the_layout_only():
    assert plan.part_starts((64, 64, 64)) == [0]  # a few MB: one part, the stream of before
    assert plan.part_starts((999, 999)) == [0]
    assert plan.part_starts((63, 256, 256)) == [0]  # under two parts' worth
    assert plan.part_starts((256, 256, 256)) == list(range(0, 256, 32))
    assert plan.part_starts((256, 512, 512)) == list(range(0, 256, 32))
    assert plan.part_starts((50, 1 << 20)) == [0]  # too thin along axis 0 for two slabs
    keys = plan.part_keys((100, 300, 300))
    assert [k[0] for k in keys] == [slice(0, 32), slice(32, 64), slice(64, 100)]
    assert plan.part_starts((40, 24, 28), SMALL) == [0, 8, 16, 24, 32]
    # at most a given number of parts (the writer's, from the stream's estimated size): that many, as even as whole
    # multiples of align make them
    assert plan.part_starts((256, 256, 256), most=3) == [0, 64, 160]
    assert plan.part_starts((256, 256, 256), most=2) == [0, 128]
    assert plan.part_starts((100, 300, 300), most=2) == [0, 32]
    assert plan.part_starts((256, 256, 256), most=1) == plan.part_starts((256, 256, 256), most=0) == [0]
    eight = list(range(0, 256, 32))
    assert plan.part_starts((256, 256, 256), most=8) == plan.part_starts((256, 256, 256), most=50) == eight
    for shape in ((256, 256, 256), (100, 300, 300), (333, 128, 128), (4000, 64, 64)):
        count = len(plan.part_starts(shape))
        for most in range(1, 12):
            assert len(plan.part_starts(shape, most=most)) == min(most, count)
            assert plan.valid_starts(plan.part_starts(shape, most=most), shape) == (min(most, count) > 1)
    assert plan.DEFAULT_LAYOUT.parts_for_bytes(3.5 * (1 << 19)) == 3 and SMALL.parts_for_bytes(10.0) is None
    assert plan.DEFAULT_LAYOUT.parts_for_bytes(float("inf")) is None
    with pytest.raises(ValueError):
        plan.PartLayout(points=0)
    for bad in (-1, True, 1.5, None):
        with pytest.raises(ValueError):
            plan.PartLayout(part_bytes=bad)
    assert plan.PartLayout(part_bytes=1 << 2000).parts_for_bytes(1e300) == 0  # no float overflow
    with pytest.raises(InvalidInputError, match="PartLayout"):
        srnsz.compress(np.ones(8, np.float32), 1e-3, parts=1 << 12)


def test_a_field_whose_stream_is_small_is_not_cut_into_parts():
    """Parts cost a few KB each: a field whose stream is estimated (on a central 256th of it) at less than one part's
    part_bytes is one stream, the bytes of the field with no parts; a smaller part_bytes lets it be cut, into about
    as many parts as the estimate holds, not the 16 of its shape."""
    data = np.random.default_rng(3).normal(size=(128, 32, 32)).astype(np.float32)  # as many bits a value anywhere
    one = srnsz.compress(data, 1e-3, parts=plan.PartLayout(points=1 << 62))
    joined = srnsz.compress(data, 1e-3, parts=plan.PartLayout(points=1 << 12, align=8, part_bytes=4 * len(one)))
    assert srnsz.info(joined).parts == 1 and joined == one
    assert len(plan.part_starts(data.shape, plan.PartLayout(points=1 << 12, align=8))) == 16
    cut = srnsz.compress(data, 1e-3, parts=plan.PartLayout(points=1 << 12, align=8, part_bytes=len(one) // 3))
    assert 2 <= srnsz.info(cut).parts <= 4
    assert_bound(data, srnsz.decompress(cut), 1e-3 * float(data.max() - data.min()))


def test_a_field_whose_centre_is_missing_is_cut_by_its_shape():
    """The estimate's box is central: where it holds (almost) no valid value it estimates nothing, and the field is
    cut by its shape as if part_bytes were 0 (never one part for an estimate of a box of fills)."""
    data = np.random.default_rng(4).normal(size=(128, 32, 32)).astype(np.float32)
    land = data.copy()
    land[:, 8:24, 8:24] = np.nan  # the central box of a 256th (20 x 5 x 5) is all NaN
    huge = plan.PartLayout(points=1 << 12, align=8, part_bytes=1 << 40)
    assert srnsz.info(srnsz.compress(data, 1e-3, parts=huge)).parts == 1
    stream = srnsz.compress(land, 1e-3, parts=huge)
    assert srnsz.info(stream).parts == len(plan.part_starts(land.shape, huge)) == 16
    recon = srnsz.decompress(stream)
    assert np.isnan(recon[:, 8:24, 8:24]).all()
    valid = ~np.isnan(land)
    bound = 1e-3 * float(np.nanmax(land) - np.nanmin(land))
    assert np.abs(recon[valid].astype(np.float64) - land[valid]).max() <= bound


@pytest.mark.parametrize("profile", ["best", "fast"])
def test_parts_are_the_same_bytes_for_every_thread_count(profile):
    data = smooth_field((40, 24, 28), seed=5)
    streams = {t: srnsz.compress(data, 1e-3, profile=profile, threads=t, parts=SMALL) for t in (1, 2, 3, 8)}
    assert len(set(streams.values())) == 1
    stream = streams[1]
    made = srnsz.info(stream)
    assert made.parts == len(plan.part_starts(data.shape, SMALL)) == 5 and made.format_version == "1.14"
    recons = [srnsz.decompress(stream, threads=t) for t in (1, 2, 3, 8)]
    for recon in recons:
        assert np.array_equal(recon.view(np.uint32), recons[0].view(np.uint32))
    assert_bound(data, recons[0], made.error_bound["abs"])
    assert srnsz.Codec(1e-3, profile=profile, threads=2, parts=SMALL).compress(data) == stream


@pytest.mark.parametrize(("eb", "mode", "profile"), [(1e-3, "rel", "best"), (1e-3, "rel", "fast"),
                                                     (60.0, "psnr", "best")])
def test_one_part_streams_are_the_same_bytes_for_every_thread_count(eb, mode, profile):
    # one part, its levels' code tables coded side by side in threads
    data = smooth_field((20, 30, 34), seed=7)
    data[3, 4, 5] = np.nan
    streams = {t: srnsz.compress(data, eb, mode, profile=profile, threads=t) for t in (1, 2, 3, 8)}
    assert len(set(streams.values())) == 1
    assert srnsz.info(streams[1]).parts == 1
    assert srnsz.Codec(eb, mode, profile=profile, threads=2).compress(data) == streams[1]


def test_parts_keep_missing_values_and_the_whole_fields_bound():
    data = smooth_field((33, 20, 30), np.float64, seed=2)
    data[:, :4, :5] = 1e20  # an undeclared fill, found on the whole field
    data[3, 7, 8] = np.nan
    data[20, 1, 1] = -999.0
    stream = srnsz.compress(data, 1e-4, fill_value=-999.0, threads=2, parts=SMALL)
    made = srnsz.info(stream)
    assert made.parts == 4 and made.missing["detected"] == [1e20]
    recon = srnsz.decompress(stream)
    missing = ~np.isfinite(data) | (data == 1e20) | (data == -999.0)
    assert np.array_equal(recon[missing].view(np.uint64), data[missing].view(np.uint64))
    valid = data[~missing]
    assert np.abs(recon[~missing] - valid).max() <= 1e-4 * np.ptp(valid)


def test_the_relative_bound_is_the_whole_fields():
    data = smooth_field((32, 16, 24), seed=1)
    data[28:] *= 100  # the last part's range is the whole field's
    stream = srnsz.compress(data, 1e-3, parts=SMALL)
    assert srnsz.info(stream).parts == 4
    assert_bound(data, srnsz.decompress(stream), 1e-3 * float(np.ptp(data)))


def test_chunks_quality_modes_and_other_predictors_stay_one_stream():
    data = smooth_field((32, 16, 24), seed=1)
    assert srnsz.info(srnsz.compress(data, 1e-3, parts=SMALL)).parts == 4
    assert srnsz.info(srnsz.compress(data, 50.0, "psnr", parts=SMALL)).parts == 1
    assert srnsz.info(srnsz.compress(data, 1e-3, predictor="lorenzo", parts=SMALL)).parts == 1
    assert srnsz.info(srnsz.compress(data, 0.0, parts=SMALL)).parts == 1
    region = srnsz.api.Region((0, 0, 0), (48, 16, 24))
    assert srnsz.info(srnsz.compress(data, 1e-3, region=region, parts=SMALL)).parts == 1


def test_threads_are_checked():
    with pytest.raises(InvalidInputError):
        srnsz.compress(np.ones(10, np.float32), 1e-3, threads=0)
    with pytest.raises(InvalidInputError):
        srnsz.Codec(1e-3, threads=True)


def _rewritten(stream: bytes, header_change=None, part_change=None) -> bytes:
    container = read_container(stream)
    header, sections = dict(container.header), dict(container.sections)
    if header_change:
        header_change(header)
    if part_change:
        found = [bytes(p) for p in layout.unpack_parts(sections[layout.SECTION], len(header["parts"]["starts"]))]
        sections[layout.SECTION] = layout.pack_parts(part_change(found))
    return write_container(header, sections, container.version[1])


def test_damaged_parts_are_refused():
    data = smooth_field((40, 24, 28), seed=5)
    stream = srnsz.compress(data, 1e-3, parts=SMALL)
    assert np.array_equal(srnsz.decompress(_rewritten(stream)), srnsz.decompress(stream))
    cases = {
        "other starts": _rewritten(stream, lambda h: h["parts"].update(starts=[0, 8, 16, 32])),
        "starts out of order": _rewritten(stream, lambda h: h["parts"].update(starts=[0, 16, 8, 24, 32])),
        "a start past the end": _rewritten(stream, lambda h: h["parts"].update(starts=[0, 8, 16, 24, 40])),
        "one part": _rewritten(stream, lambda h: h["parts"].update(starts=[0])),
        "a start that is no integer": _rewritten(stream, lambda h: h["parts"].update(starts=[0, 8, 16, 24.0, 32])),
        "other axis": _rewritten(stream, lambda h: h["parts"].update(axis=1)),
        "other shape": _rewritten(stream, lambda h: h.update(shape=[48, 24, 28])),
        "swapped parts": _rewritten(stream, part_change=lambda p: [p[1], p[0], *p[2:]]),
        "missing part": _rewritten(stream, part_change=lambda p: p[:-1]),
        "a part twice": _rewritten(stream, part_change=lambda p: [p[0], *p[:-1]]),
        "checksum": _rewritten(stream, lambda h: h["checksum"].update(value=h["checksum"]["value"] ^ 1)),
        "no parts record": _rewritten(stream, lambda h: h.pop("parts")),
        "format 1.10": write_container(read_container(stream).header, read_container(stream).sections, 10),
        "truncated": stream[:-100],
    }
    for what, bad in cases.items():
        with pytest.raises(StreamFormatError):
            srnsz.decompress(bad)
            pytest.fail(what)
        with pytest.raises(StreamFormatError):
            srnsz.info(bad)


def test_part_section_layout():
    streams = [b"abc", b"", b"defgh"]
    payload = layout.pack_parts(streams)
    assert [bytes(p) for p in layout.unpack_parts(payload, 3)] == streams
    for bad in (payload[:3], payload[:-1], payload + b"x"):
        with pytest.raises(StreamFormatError):
            layout.unpack_parts(bad, 3)
    with pytest.raises(StreamFormatError):
        layout.unpack_parts(payload, 2)


def test_checksums_combine_as_zlib_does():
    import zlib

    rng = np.random.default_rng(0)
    for a, b in ((0, 5), (9, 0), (1, 1), (1000, 77777), (3, (1 << 20) + 5)):
        x, y = rng.bytes(a), rng.bytes(b)
        assert layout.crc32_combine(zlib.crc32(x), zlib.crc32(y), b) == zlib.crc32(x + y)
    pieces = [rng.bytes(n) for n in (4096, 4096, 4096, 123)]  # parts one after the other, as the streams chain them
    crc = zlib.crc32(pieces[0])
    for piece in pieces[1:]:
        crc = layout.crc32_combine(crc, zlib.crc32(piece), len(piece))
    assert crc == zlib.crc32(b"".join(pieces))


@pytest.mark.slow
def test_command_line_threads_give_the_same_stream(tmp_path):
    from srnsz.cli import main

    data = smooth_field((64, 256, 256), seed=5)  # two parts of the default layout
    np.save(tmp_path / "f.npy", data)
    for threads in (1, 3):
        assert main(["compress", str(tmp_path / "f.npy"), "-o", str(tmp_path / f"{threads}.srnsz"), "--eb", "1e-3",
                     "--threads", str(threads)]) == 0
        assert main(["decompress", str(tmp_path / f"{threads}.srnsz"), "-o", str(tmp_path / f"{threads}.npy"),
                     "--threads", str(threads)]) == 0
    stream = (tmp_path / "1.srnsz").read_bytes()
    assert srnsz.info(stream).parts == 2
    assert stream == (tmp_path / "3.srnsz").read_bytes() == srnsz.compress(data, 1e-3)
    assert np.array_equal(np.load(tmp_path / "1.npy"), np.load(tmp_path / "3.npy"))
    assert main(["eval", str(tmp_path / "f.npy"), "--eb", "1e-3", "--threads", "2"]) == 0
    assert main(["compress", str(tmp_path / "f.npy"), "-o", str(tmp_path / "0.srnsz"), "--threads", "0"]) == 1


def test_decoding_into_an_array():
    data = smooth_field((40, 24, 28), seed=5)
    for stream in (srnsz.compress(data, 1e-3, parts=SMALL), srnsz.compress(data[:8], 1e-3, parts=SMALL),
                   srnsz.compress(data, 50.0, "psnr")):
        expected = srnsz.decompress(stream)
        out = np.full(expected.shape, np.nan, np.float32)
        assert srnsz.decompress(stream, out=out, threads=2) is out
        assert np.array_equal(out.view(np.uint32), expected.view(np.uint32))
    for bad in (np.empty((40, 24, 28), np.float64), np.empty((40, 24, 29), np.float32),
                np.empty((40, 28, 24), np.float32).transpose(0, 2, 1)):
        with pytest.raises(InvalidInputError):
            srnsz.decompress(stream, out=bad)


def _in_a_daemon(queue) -> None:
    data = smooth_field((40, 24, 28), seed=5)
    queue.put(srnsz.compress(data, 1e-3, threads=2, parts=SMALL) == srnsz.compress(data, 1e-3, threads=1, parts=SMALL))


def test_a_daemonic_process_codes_parts_in_threads():
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_in_a_daemon, args=(queue,), daemon=True)
    worker.start()
    assert queue.get(timeout=120) is True
    worker.join(timeout=30)
