"""zstandard for side streams (anchors, escapes, tables, metadata)."""

from __future__ import annotations

import zstandard

from srnsz.errors import StreamFormatError

LEVEL = 19


def pack(raw: bytes, level: int = LEVEL) -> bytes:
    """zstd-compress ``raw``; the frame records its own size."""
    return zstandard.ZstdCompressor(level=level).compress(raw)


def unpack(blob: bytes, what: str) -> bytes:
    """Inverse of :func:`pack`; a damaged frame raises StreamFormatError naming ``what``."""
    try:
        return zstandard.ZstdDecompressor().decompress(blob)
    except zstandard.ZstdError as exc:
        raise StreamFormatError(f"the {what} section is corrupted ({exc})") from None
