"""zstandard for side streams (anchors, escapes, tables, metadata)."""

from __future__ import annotations

import zstandard

from srnsz.errors import StreamFormatError

LEVEL = 19
# A zstd frame decompresses to at most this many bytes per byte of frame: its densest block is an RLE block (3 bytes
# of block header and 1 byte) standing for up to 128 KiB.
MAX_EXPANSION = 1 << 15


def pack(raw: bytes, level: int = LEVEL) -> bytes:
    """zstd-compress ``raw``; the frame records its own size."""
    return zstandard.ZstdCompressor(level=level).compress(raw)


def unpack(blob: bytes, what: str, max_size: int | None = None) -> bytes:
    """Inverse of :func:`pack`; a damaged frame raises StreamFormatError naming ``what``, and so does one that
    would decompress to more than ``max_size`` bytes (when given: what the reader can expect at most)."""
    try:
        if max_size is not None:
            declared = zstandard.frame_content_size(blob)
            if declared > max_size:
                raise StreamFormatError(f"the {what} section claims {declared} bytes, more than the {max_size} "
                                        "it can hold")
            return zstandard.ZstdDecompressor().decompress(blob, max_output_size=max_size)
        return zstandard.ZstdDecompressor().decompress(blob)
    except zstandard.ZstdError as exc:
        raise StreamFormatError(f"the {what} section is corrupted ({exc})") from None


def content_bound(blob: bytes) -> int:
    """The most bytes the zstd frame ``blob`` can decompress to, read from its header without decompressing: the
    size it declares (every frame :func:`pack` writes declares one), else ``MAX_EXPANSION`` per byte; 0 for a blob
    that is no zstd frame."""
    try:
        declared = zstandard.frame_content_size(blob)
    except zstandard.ZstdError:
        return 0
    return declared if declared >= 0 else len(blob) * MAX_EXPANSION


def declared_size(blob: bytes) -> int | None:
    """The decompressed size the zstd frame ``blob`` declares in its header, or None where it declares none (or is
    no frame)."""
    try:
        declared = zstandard.frame_content_size(blob)
    except zstandard.ZstdError:
        return None
    return declared if declared >= 0 else None
