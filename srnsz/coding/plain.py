"""Coding method 2: zstd of the raw codes, which wins where codes repeat exactly over long stretches."""

from __future__ import annotations

import numpy as np

from srnsz.coding import lossless
from srnsz.coding.batch import METHOD_ZSTD, CodeBatch
from srnsz.errors import StreamFormatError
from srnsz.quantizer import CODE_DTYPE, ESCAPE


def plain_codes(batches: list[CodeBatch]) -> tuple[int, bytes]:
    """All codes as bytes: (1, int8 with -128 for escapes) when they fit, which zstd compresses far better,
    else (2, int16 little endian)."""
    codes = np.concatenate([b.codes for b in batches])
    if bool(((codes > -128) & (codes < 128) | (codes == ESCAPE)).all()):
        return 1, np.where(codes == ESCAPE, -128, codes).astype("i1").tobytes()
    return 2, codes.astype("<i2").tobytes()


def encode_zstd(width: int, raw: bytes, level: int) -> bytes:
    return bytes([METHOD_ZSTD, width]) + lossless.pack(raw, level=level)


def code_capacity(body: bytes) -> int:
    """The most codes a zstd sub-stream (after the method byte) can hold, read from its frame header."""
    return lossless.content_bound(body[1:]) if len(body) >= 2 else 0


class PlainReader:
    def __init__(self, body: bytes, most_codes: int | None = None) -> None:
        if len(body) < 2 or body[0] not in (1, 2):
            raise StreamFormatError("the code section is corrupted")
        raw = lossless.unpack(body[1:], "code", None if most_codes is None else 2 * most_codes)
        if body[0] == 1:
            self._codes = np.frombuffer(raw, dtype="i1").astype(CODE_DTYPE)
            self._codes[self._codes == -128] = ESCAPE
        elif len(raw) % 2:
            raise StreamFormatError("the code section has an odd byte count")
        else:
            self._codes = np.frombuffer(raw, dtype="<i2").astype(CODE_DTYPE)
        self._pos = 0

    def read(self, batch: CodeBatch) -> np.ndarray:
        n = batch.contexts.size
        if self._pos + n > self._codes.size:
            raise StreamFormatError("the code section holds fewer codes than the shape needs")
        out = self._codes[self._pos:self._pos + n]
        self._pos += n
        return out


