"""The stream container: magic, format version, JSON header, length-prefixed sections with CRC32.

Layout (little endian)::

    magic      8 bytes  b"\\x89SRNSZ\\r\\n"
    version    u16 major, u16 minor
    sections   repeated: tag (4 ASCII bytes), u64 length, u32 CRC32 of payload, payload
    end        tag b"END!", u64 0, u32 0

and from format 1.14 (COMPACT_MINOR) the sections after ``HEAD`` (whose record is as above)::

    count      LEB128
    sections   repeated: tag (4 ASCII bytes), LEB128 length, payload
    crc        u32 CRC32 of count and sections

The first section is always ``HEAD``: compact UTF-8 JSON, zstd-compressed with the frozen raw-content
dictionary below (headers are mostly the same keys, so this takes ~600 bytes to ~120; at ratios of several
hundred the header would otherwise be a third of the stream). See docs/format.md.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import zstandard

from srnsz.coding import lossless
from srnsz.errors import StreamFormatError

MAGIC = b"\x89SRNSZ\r\n"
VERSION_MAJOR = 1
VERSION_MINOR = 2  # 1.1: context details and adaptive coding; 1.2: context mixing (docs/format.md)
# The newest minor version this reader knows; 1.3: missing values (header "missing", sections MASK and MVAL),
# written only by streams that have them, so every other stream stays 1.2 byte for byte; 1.4: the quintic spline
# of the interp predictor (config kind "quintic"), written only by streams that use it; 1.5: 3D hat streams whose
# network also upsamples the planes decoded earlier in a level (hat parameter "decoded_planes"); 1.6: a restoration
# filter run on the reconstruction (section RSTR, quality modes), written only by streams that carry one; 1.7: context
# mixing with binarisation 2 (coding methods 6 and 7), which every stream whose codes are context-mixed uses; 1.8: the
# fast profile's two-model mixing (binarisation 3, coding method 8), written only by streams of that profile; 1.9:
# hat and ae networks run in fixed point (parameter "arithmetic", srnsz.neural.fixed_point), every new stream that
# uses a network; 1.10: coordinates coded as streams of their own (section VCRS, srnsz.format.coords), written only by
# streams that carry one; 1.11: large fields coded in parts (header "parts", section PART, srnsz.format.parts),
# written only by the fields that are cut; 1.12: a missing-value mask the same along axis 0 stored once (MASK layout
# 3, srnsz.missing), written only by streams whose mask repeats and is smaller so; 1.13: interp's code_order and
# mean_axis (srnsz.predictors.interp), written only by streams whose tuner kept one; 1.14: compact framing of the
# sections after the header (COMPACT_MINOR) and interp's level bounds derived from its parameters
# (srnsz.predictors.interp), which every new stream of interp and hat uses; 1.15: the wavelet predictor
# (srnsz.predictors.wavelet, section WESC), written only by quality-mode streams it makes; 1.16: networks in the
# fixed-point arithmetic fixed-point-2 (every square root correctly rounded, srnsz.neural.runtime), every new stream
# that uses a network.
NEWEST_MINOR = 16
# From this minor on, the sections after HEAD are framed compactly: a LEB128 count, then per section its tag and a
# LEB128 length before the payload, then one CRC32 of all of that (instead of a 16-byte record per section and an
# end marker): 40-60 bytes less per stream, which on a stream of a few KB is a percent.
COMPACT_MINOR = 14
MAX_HEADER_BYTES = 1 << 24  # far above any header written (a few KB), far below memory trouble
_PREFIX = struct.Struct("<HH")
_SECTION = struct.Struct("<4sQI")
_END = b"END!"
# Frozen for format 1.x: changing a single byte breaks every existing stream.
_HEADER_DICTIONARY = zstandard.ZstdCompressionDict(
    b'{"checksum":{"algorithm":"crc32","value":1234567890},"created_by":"srnsz 0.1.0","dtype":"<f4",'
    b'"error_bound":{"abs":0.001234567890123,"mode":"rel","value":0.001},"numerics":{"compute_dtype":"float64",'
    b'"constriction":"0.5.0","device":"cpu","numpy":"2.4.6","zstandard":"0.25.0"},"predictor":{"name":"interp",'
    b'"params":{"anchor_stride":32,"chunk_points":1048576,"config":{"alpha":1.25,"anchor_stride":0,"beta":2.0,'
    b'"dim_order":[0,1,2],"kind":"cubic"},"level_bounds":[0.0006172839450615,0.0006320987597429,'
    b'0.0007901234496786,0.0009876543120983,0.001234567890123],"levels":5}},"shape":[64,64,128]}',
    dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def _pack_header(header: dict[str, Any]) -> bytes:
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return zstandard.ZstdCompressor(level=19, dict_data=_HEADER_DICTIONARY, write_dict_id=False).compress(text)


def _unpack_header(blob: bytes) -> dict[str, Any]:
    declared = lossless.declared_size(blob)
    if declared is None or declared > MAX_HEADER_BYTES:  # every writer declares it; a header is a few KB
        raise StreamFormatError("the header is corrupted" if declared is None else
                                f"the header claims {declared} bytes, more than {MAX_HEADER_BYTES}")
    try:
        text = zstandard.ZstdDecompressor(dict_data=_HEADER_DICTIONARY).decompress(blob)
        header = json.loads(text)
    except (zstandard.ZstdError, UnicodeDecodeError, ValueError, RecursionError):
        # (ValueError: bad JSON, or an integer of more digits than Python converts)
        raise StreamFormatError("the header is corrupted") from None
    if not isinstance(header, dict):
        raise StreamFormatError("the header is not a JSON object")
    return header


@dataclass
class Container:
    """A parsed stream: the header dict and the payload of every other section by tag."""

    header: dict[str, Any]
    sections: dict[str, bytes]
    version: tuple[int, int]


def write_container(header: dict[str, Any], sections: dict[str, bytes], minor: int | None = None) -> bytes:
    """Serialize ``header`` (JSON-able) and ``sections`` (4-character tag -> payload) as format 1.``minor``
    (default VERSION_MINOR; a stream that uses a later feature names its version)."""
    minor = VERSION_MINOR if minor is None else minor
    if not VERSION_MINOR <= minor <= NEWEST_MINOR:
        raise ValueError(f"cannot write format 1.{minor}")
    parts = [MAGIC, _PREFIX.pack(VERSION_MAJOR, minor)]
    for tag in sections:
        if len(tag.encode("ascii")) != 4 or tag in ("HEAD", _END.decode()):
            raise ValueError(f"bad section tag {tag!r}")
    head = _pack_header(header)
    parts += [_SECTION.pack(b"HEAD", len(head), zlib.crc32(head)), head]
    if minor >= COMPACT_MINOR:  # the CRC32 runs along: no copy of the sections but the stream itself
        count = _leb128(len(sections))
        parts.append(count)
        crc = zlib.crc32(count)
        for tag, payload in sorted(sections.items()):
            record = tag.encode("ascii") + _leb128(len(payload))
            parts += [record, payload]
            crc = zlib.crc32(payload, zlib.crc32(record, crc))
        parts.append(struct.pack("<I", crc))
        return b"".join(parts)
    for tag, payload in sorted(sections.items()):
        parts.append(_SECTION.pack(tag.encode("ascii"), len(payload), zlib.crc32(payload)))
        parts.append(payload)
    parts.append(_SECTION.pack(_END, 0, 0))
    return b"".join(parts)


def _leb128(value: int) -> bytes:
    """``value`` >= 0 as unsigned LEB128 (7 bits a byte, least significant first)."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_leb128(view: memoryview, pos: int, what: str) -> tuple[int, int]:
    """(value, position after it) of an unsigned LEB128 at ``pos``; at most 8 bytes (below 2^56), else, or where the
    stream ends inside it, a StreamFormatError naming ``what``."""
    value = 0
    for shift in range(0, 56, 7):
        if pos >= len(view):
            raise StreamFormatError(f"the stream is truncated inside {what}")
        byte = view[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise StreamFormatError(f"the stream is corrupted ({what} is too long)")


HEAD_PREFIX = len(MAGIC) + _PREFIX.size + _SECTION.size  # bytes before the header's payload


def _check_version(major: int, minor: int) -> None:
    if major != VERSION_MAJOR:
        raise StreamFormatError(
            f"stream format version {major}.{minor} is not supported by this srnsz "
            f"(reads {VERSION_MAJOR}.x); use a matching srnsz release")
    if minor > NEWEST_MINOR:
        raise StreamFormatError(
            f"stream format version {major}.{minor} is newer than this srnsz reads (up to {VERSION_MAJOR}."
            f"{NEWEST_MINOR}); upgrade srnsz")


def head_length(prefix: bytes) -> int:
    """The length of the header's payload, from the first HEAD_PREFIX bytes of a stream (to read the header of a
    stream without reading the rest: :func:`read_head`)."""
    if len(prefix) < HEAD_PREFIX or prefix[:len(MAGIC)] != MAGIC:
        raise StreamFormatError("not an srnsz stream (bad magic bytes)")
    _check_version(*_PREFIX.unpack_from(prefix, len(MAGIC)))
    tag, length, _ = _SECTION.unpack_from(prefix, len(MAGIC) + _PREFIX.size)
    if tag != b"HEAD":
        raise StreamFormatError("the stream does not start with its header")
    return length


def read_head(start: bytes) -> tuple[dict[str, Any], tuple[int, int]]:
    """(header, version) of a stream from its first HEAD_PREFIX + :func:`head_length` bytes, the header's CRC
    checked; the other sections are not read."""
    length = head_length(start)
    payload = start[HEAD_PREFIX:HEAD_PREFIX + length]
    _, _, crc = _SECTION.unpack_from(start, len(MAGIC) + _PREFIX.size)
    if len(payload) != length:
        raise StreamFormatError("the stream is truncated inside section HEAD")
    if zlib.crc32(payload) != crc:
        raise StreamFormatError("section HEAD is corrupted (CRC32 mismatch)")
    return _unpack_header(payload), _PREFIX.unpack_from(start, len(MAGIC))


def read_container(data: bytes) -> Container:
    """Parse and verify a stream; any damage raises StreamFormatError with a reason."""
    view = memoryview(data)
    if len(view) < len(MAGIC) + _PREFIX.size or bytes(view[:len(MAGIC)]) != MAGIC:
        raise StreamFormatError("not an srnsz stream (bad magic bytes)")
    major, minor = _PREFIX.unpack_from(view, len(MAGIC))
    _check_version(major, minor)
    if minor >= COMPACT_MINOR:
        return _read_compact(view, major, minor)
    pos = len(MAGIC) + _PREFIX.size
    sections: dict[str, bytes] = {}
    while True:
        if pos + _SECTION.size > len(view):
            raise StreamFormatError("the stream is truncated (missing end marker)")
        raw_tag, length, crc = _SECTION.unpack_from(view, pos)
        pos += _SECTION.size
        if raw_tag == _END:
            if length or crc:
                raise StreamFormatError("the stream is corrupted (bad end marker)")
            break
        try:
            tag = raw_tag.decode("ascii")
        except UnicodeDecodeError:
            raise StreamFormatError("the stream is corrupted (bad section tag)") from None
        if pos + length > len(view):
            raise StreamFormatError(f"the stream is truncated inside section {tag}")
        payload = bytes(view[pos:pos + length])
        pos += length
        if zlib.crc32(payload) != crc:
            raise StreamFormatError(f"section {tag} is corrupted (CRC32 mismatch)")
        if tag in sections:
            raise StreamFormatError(f"section {tag} appears twice")
        sections[tag] = payload
    if pos != len(view):
        raise StreamFormatError(f"{len(view) - pos} unexpected bytes after the end of the stream")
    if "HEAD" not in sections:
        raise StreamFormatError("the stream has no header")
    return Container(_unpack_header(sections.pop("HEAD")), sections, (major, minor))


def _read_compact(view: memoryview, major: int, minor: int) -> Container:
    """:func:`read_container` of a stream framed compactly (COMPACT_MINOR and later)."""
    if len(view) < HEAD_PREFIX:
        raise StreamFormatError("the stream is truncated inside section HEAD")
    body_start = pos = HEAD_PREFIX + head_length(bytes(view[:HEAD_PREFIX]))
    header, _ = read_head(bytes(view[:body_start]))
    count, pos = _read_leb128(view, pos, "the section table")
    sections: dict[str, bytes] = {}
    for _ in range(count):
        if pos + 4 > len(view):
            raise StreamFormatError("the stream is truncated inside the section table")
        try:
            tag = bytes(view[pos:pos + 4]).decode("ascii")
        except UnicodeDecodeError:
            raise StreamFormatError("the stream is corrupted (bad section tag)") from None
        length, pos = _read_leb128(view, pos + 4, f"the length of section {tag}")
        if pos + length > len(view):
            raise StreamFormatError(f"the stream is truncated inside section {tag}")
        if tag in sections or tag == "HEAD":
            raise StreamFormatError(f"section {tag} appears twice")
        sections[tag] = bytes(view[pos:pos + length])
        pos += length
    if pos + 4 > len(view):
        raise StreamFormatError("the stream is truncated (missing the sections' CRC32)")
    if zlib.crc32(view[body_start:pos]) != struct.unpack_from("<I", view, pos)[0]:
        raise StreamFormatError("the sections are corrupted (CRC32 mismatch)")
    if pos + 4 != len(view):
        raise StreamFormatError(f"{len(view) - pos - 4} unexpected bytes after the end of the stream")
    return Container(header, sections, (major, minor))
