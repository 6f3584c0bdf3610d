"""Streams crafted to get past the checksums (every CRC recomputed): each is a clear StreamFormatError (or a weights
error), fast and without the memory its sections claim, never another exception or a wrong array."""

from __future__ import annotations

import io
import json
import resource
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import zstandard

import srnsz
from srnsz.coding import lossless
from srnsz.errors import SrnszError, StreamFormatError
from srnsz.examples import wave_field
from srnsz.format import container
from srnsz.format.container import read_container, write_container
from srnsz.io.codec import Srnsz

GIB = 1 << 30


def rebuilt(stream: bytes, header: dict | None = None, sections: dict | None = None) -> bytes:
    parsed = read_container(stream)
    return write_container(parsed.header if header is None else header,
                           parsed.sections if sections is None else sections, parsed.version[1])


def with_header_text(stream: bytes, text: bytes) -> bytes:
    """``stream`` whose header payload is ``text`` (zstd with the header dictionary, its CRC recomputed)."""
    head = zstandard.ZstdCompressor(dict_data=container._HEADER_DICTIONARY, write_dict_id=False).compress(text)
    n = container.head_length(stream[:container.HEAD_PREFIX])
    return (stream[:12] + struct.pack("<4sQI", b"HEAD", len(head), zlib.crc32(head)) + head
            + stream[container.HEAD_PREFIX + n:])


def run_frame(size: int, byte: int = 0) -> bytes:
    """A zstd frame declaring and holding ``size`` bytes of ``byte`` in run-length blocks (4 bytes per 128 KiB)."""
    out = struct.pack("<I", 0xFD2FB528) + bytes([3 << 6, 0]) + struct.pack("<Q", size)
    left = size
    while left:
        n = min(1 << 17, left)
        left -= n
        out += struct.pack("<I", (n << 3) | (1 << 1) | (left == 0))[:3] + bytes([byte])
    return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def stream() -> bytes:
    return srnsz.compress(wave_field((32, 33, 34)), 1e-3)


def test_the_run_frame_is_a_real_zstd_frame():
    assert zstandard.ZstdDecompressor().decompress(run_frame(300_000, 7)) == bytes([7]) * 300_000


@pytest.mark.parametrize("text", [b"[" * 5000 + b"]" * 5000, b'{"shape": [' + b"9" * 5000 + b"]}"],
                         ids=["deep nesting", "5000-digit integer"])
def test_headers_that_break_the_json_parser_are_refused(stream, text):
    bad = with_header_text(stream, text)
    for call in (srnsz.decompress, srnsz.info):
        with pytest.raises(StreamFormatError, match="header"):
            call(bad)


def test_a_header_claiming_a_gigabyte_is_refused_before_it_is_unpacked(stream):
    head = run_frame(GIB, ord(" "))  # valid JSON once the real header followed; never unpacked
    n = container.head_length(stream[:container.HEAD_PREFIX])
    bad = (stream[:12] + struct.pack("<4sQI", b"HEAD", len(head), zlib.crc32(head)) + head
           + stream[container.HEAD_PREFIX + n:])
    before = peak_mb()
    with pytest.raises(StreamFormatError, match="claims"):
        srnsz.decompress(bad)
    assert peak_mb() - before < 200


def code_with_first_table(stream: bytes, body: bytes) -> bytes:
    code = read_container(stream).sections["CODE"]
    (n,) = struct.unpack_from("<I", code, 0)
    level, size = struct.unpack_from("<II", code, 4)
    return struct.pack("<I", n) + struct.pack("<II", level, len(body)) + body + code[12 + size:]


@pytest.mark.parametrize("section", ["ESCP", "CODE", "ANCH"])
def test_sections_claiming_more_than_the_shape_holds_are_refused_unpacked(stream, section):
    sections = dict(read_container(stream).sections)
    sections[section] = code_with_first_table(stream, b"\x02\x02" + run_frame(GIB)) if section == "CODE" \
        else run_frame(GIB)
    before = peak_mb()
    with pytest.raises(StreamFormatError, match="claims|does not match the shape"):
        srnsz.decompress(rebuilt(stream, sections=sections))
    assert peak_mb() - before < 200


def test_lorenzo_escape_masks_claiming_more_than_the_shape_are_refused():
    stream = srnsz.compress(wave_field((32, 33, 34)), 1e-3, predictor="lorenzo")
    sections = {**read_container(stream).sections, "ESCM": run_frame(256 << 20), "ESCV": run_frame(1024)}
    with pytest.raises(StreamFormatError, match="claims"):
        srnsz.decompress(rebuilt(stream, sections=sections))


def test_a_table_relabelled_to_an_entropy_coding_it_was_not_written_in_is_refused(stream):
    code = read_container(stream).sections["CODE"]
    (n,) = struct.unpack_from("<I", code, 0)
    tables, pos = [], 4
    for _ in range(n):
        level, size = struct.unpack_from("<II", code, pos)
        tables.append((level, code[pos + 8:pos + 8 + size]))
        pos += 8 + size
    level, body = tables[-1]
    tables[-1] = (level, b"\x03" + body[1:])  # adaptive context coding (format 1.1), fed context-mixing bytes
    relabelled = struct.pack("<I", n) + b"".join(struct.pack("<II", lv, len(b)) + b for lv, b in tables)
    with pytest.raises(SrnszError):
        srnsz.decompress(rebuilt(stream, sections={**read_container(stream).sections, "CODE": relabelled}))


def test_nested_json_in_variable_metadata_is_a_stream_error():
    from srnsz.format.metadata import VariableMeta

    with pytest.raises(StreamFormatError):
        VariableMeta.from_sections({"VMET": lossless.pack(b"[" * 5000 + b"]" * 5000)})


def test_an_autoencoder_stream_with_a_damaged_value_range_is_refused():
    stream = srnsz.compress(wave_field((16, 24, 24), noise=0.0, seed=1), 0.1, "rel", predictor="ae",
                            compete_interp=False)
    header = read_container(stream).header
    assert header["predictor"]["name"] == "ae"
    for span in (0.0, -1.0, float("nan")):
        header["predictor"]["params"]["range"] = [header["predictor"]["params"]["range"][0], span]
        with pytest.raises(StreamFormatError, match="value range"):
            srnsz.decompress(rebuilt(stream, header=header))


def test_a_hat_stream_naming_an_autoencoder_is_refused_by_the_weights(stream):
    from srnsz.neural.zoo import WeightsError, find_weights

    header = read_container(stream).header
    header["predictor"]["name"] = "hat"
    header["predictor"]["params"]["hat"] = {
        "weights": "ae_3d", "sha256": find_weights("ae_3d").sha256, "hat_levels": 1, "block_size": 0,
        "decoded_planes": True, "inference": {"arithmetic": "fixed-point-2", "tile": 128, "overlap": 8}}
    sections = {**read_container(stream).sections, "FLAG": lossless.pack(b"\xff" * 64)}
    with pytest.raises(WeightsError, match="not a HAT"):
        srnsz.decompress(write_container(header, sections, 16))
    sections["FLAG"] = run_frame(256 << 20, 0xFF)
    header["predictor"]["params"]["hat"]["weights"] = "hat_femto_series"
    header["predictor"]["params"]["hat"]["sha256"] = find_weights("hat_femto_series").sha256
    with pytest.raises(StreamFormatError, match="claims"):
        srnsz.decompress(write_container(header, sections, 16))


def test_chunk_codecs_refuse_a_stream_of_another_shape_or_type():
    chunk = wave_field((16, 32)).astype(np.float64)
    codec = Srnsz(1e-3)
    encoded = codec.encode(chunk)
    for out in (np.zeros((32, 32), np.float32), np.zeros(256, np.float64), np.zeros(512, np.float32)):
        with pytest.raises(StreamFormatError, match="holds"):
            codec.decode(encoded, out=out)
    into = np.zeros(chunk.size * 8, np.uint8)  # a byte buffer of the chunk
    codec.decode(encoded, out=into)
    assert np.array_equal(into.view(np.float64), srnsz.decompress(encoded).ravel())
    big_endian = np.zeros(chunk.shape, ">f8")
    codec.decode(encoded, out=big_endian)
    assert np.array_equal(big_endian, srnsz.decompress(encoded))


def test_a_chunked_index_nested_too_deep_is_a_stream_error():
    from srnsz.io import chunked

    out = io.BytesIO()
    chunked.compress_chunked(wave_field((16, 16)), out, 1e-3, "rel", (8, 8))
    raw = out.getvalue()
    body = zstandard.ZstdCompressor(write_checksum=True).compress(json.dumps([[[0]]]).encode()[:1] * 5000)
    footer = struct.Struct("<Q8s")
    length, magic = footer.unpack(raw[-footer.size:])
    bad = raw[:-footer.size - length] + body + footer.pack(len(body), magic)
    with pytest.raises(StreamFormatError):
        chunked.decompress_chunked(io.BytesIO(bad))


def test_a_network_stream_without_its_weights_hash_is_refused():
    stream = srnsz.compress(wave_field((16, 24, 24), noise=0.0, seed=1), 0.1, "rel", predictor="ae",
                            compete_interp=False)
    header = read_container(stream).header
    del header["predictor"]["params"]["sha256"]
    with pytest.raises(StreamFormatError, match="sha256"):
        srnsz.decompress(rebuilt(stream, header=header))
    golden = (Path(__file__).parents[1] / "golden" / "data" / "golden_hat_v1_16.srnsz").read_bytes()
    header = read_container(golden).header
    del header["predictor"]["params"]["hat"]["sha256"]
    with pytest.raises(StreamFormatError, match="sha256"):
        srnsz.decompress(rebuilt(golden, header=header))


@pytest.mark.parametrize("block_size,hat_levels", [(1, 1), (2, 3)])
def test_hat_streams_with_more_block_choices_than_points_still_decode(block_size, hat_levels, monkeypatch):
    field = wave_field((48, 48))
    monkeypatch.setattr(srnsz.api, "smallest", lambda candidates: candidates[0])  # keep the network's stream
    stream = srnsz.compress(field, 1e-3, predictor="hat", model="hat_femto_series", block_size=block_size,
                            hat_levels=hat_levels)
    header = read_container(stream).header["predictor"]
    assert header["name"] == "hat" and header["params"]["hat"]["blocks_total"] > field.size
    assert np.abs(srnsz.decompress(stream) - field).max() <= srnsz.info(stream).error_bound["abs"]


def test_the_chunk_codecs_read_back_what_they_flattened_and_what_was_masked():
    zarr = pytest.importorskip("zarr")
    from srnsz.io.codec import SrnszZarr3

    values = np.random.default_rng(1).random((2, 3, 4, 5, 6)).astype(np.float32)  # 5-D: coded flat
    array = zarr.create_array(store={}, shape=values.shape, chunks=values.shape, dtype="f4",
                              serializer=SrnszZarr3(eb=1e-3), compressors=None)
    array[:] = values
    assert np.abs(array[:] - values).max() <= 1e-3
    field = wave_field((20, 30))
    masked = np.random.default_rng(2).random(field.shape) < 0.2
    codec = Srnsz(1e-3)
    back = codec.decode(codec.encode(np.ma.masked_array(np.where(masked, 123.0, field), mask=masked)))
    assert np.all(back[masked] == 1e20) and np.abs(back[~masked] - field[~masked]).max() <= 1e-3
