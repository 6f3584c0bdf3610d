"""zstandard for side streams (anchors, escapes, tables, metadata)."""

from __future__ import annotations

import zstandard

from srnsz.errors import StreamFormatError

LEVEL = 19


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
