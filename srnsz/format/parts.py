"""The ``PART`` section of a stream coded in parts (format 1.11; docs/format.md, "Parts").

Payload: u32 part count n, then n u64 lengths, then the n part streams back to back (each an ordinary srnsz stream
of its slab, its header recording its ``region``). The whole field's reconstruction checksum is the CRC32 of the
parts' reconstructions one after the other, so the compressor combines the parts' checksums
(:func:`crc32_combine`) instead of holding the whole reconstruction at once.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

from srnsz.errors import StreamFormatError

SECTION = "PART"
FORMAT_MINOR = 11
_COUNT = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")


def pack_parts(streams: list[bytes]) -> bytes:
    """The PART payload holding ``streams`` in order."""
    lengths = b"".join(_LENGTH.pack(len(s)) for s in streams)
    return _COUNT.pack(len(streams)) + lengths + b"".join(streams)


def unpack_parts(payload: bytes, expected: int) -> list[memoryview]:
    """The part streams of a PART payload, which must hold ``expected`` of them exactly; StreamFormatError else."""
    view = memoryview(payload)
    if len(view) < _COUNT.size:
        raise StreamFormatError("the PART section is truncated")
    (count,) = _COUNT.unpack_from(view)
    if count != expected:
        raise StreamFormatError(f"the PART section holds {count} parts, the shape has {expected}")
    offset = _COUNT.size + count * _LENGTH.size
    if len(view) < offset:
        raise StreamFormatError("the PART section is truncated")
    parts = []
    for i in range(count):
        (length,) = _LENGTH.unpack_from(view, _COUNT.size + i * _LENGTH.size)
        if length > len(view) - offset:
            raise StreamFormatError(f"part {i} runs past the end of the PART section")
        parts.append(view[offset:offset + length])
        offset += length
    if offset != len(view):
        raise StreamFormatError("the PART section has bytes after its last part")
    return parts


_POLY = 0xEDB88320  # zlib's CRC32, reflected


def _times(matrix: Sequence[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _square(matrix: Sequence[int]) -> tuple[int, ...]:
    return tuple(_times(matrix, row) for row in matrix)


@functools.cache
def _zero_bytes_operator(k: int) -> tuple[int, ...]:
    """The GF(2) operator that appends 2^k zero bytes to a CRC32 (kept: the same for every combination)."""
    if k == 0:
        one_bit = [_POLY] + [1 << i for i in range(31)]
        return _square(_square(_square(one_bit)))
    return _square(_zero_bytes_operator(k - 1))


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC32 of A + B from crc1 = CRC32(A), crc2 = CRC32(B) and len(B) (zlib's crc32_combine, in GF(2))."""
    k = 0
    while length2 > 0:  # apply len2 zero bytes to crc1, one power of two at a time
        operator = _zero_bytes_operator(k)  # every k in turn: the cache fills without deep recursion
        if length2 & 1:
            crc1 = _times(operator, crc1)
        length2 >>= 1
        k += 1
    return crc1 ^ crc2
