"""One batch of quantization codes as the coders see it, and what every coding method shares.

A batch: int16 codes (n,), a context (0..N_CONTEXTS-1) and optionally a detail (0..N_DETAILS-1) per code, both
computed from data the decoder already has, a table id (the level) and the codes' layout (``shape``, whose
neighbours context mixing reads). Each table of a CODE section is one sub-stream whose first byte names its
coding method (docs/format.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from srnsz.coding.context import N_DETAILS
from srnsz.errors import StreamFormatError
from srnsz.quantizer import CODE_DTYPE, ESCAPE, RADIUS

N_CONTEXTS = 16
METHOD_CONTEXT = 1  # static context range coding (srnsz.coding.static)
METHOD_ZSTD = 2  # zstd of the raw codes (srnsz.coding.plain)
METHOD_ADAPTIVE = 3  # adaptive context coding, format 1.1, read only (srnsz.coding.adaptive)
METHOD_MIXING = 4  # context mixing, format 1.2 (srnsz.coding.context_mixing)
# Context mixing of the differences of the codes along each row (the last axis of a batch's shape), format 1.6,
# written only where the writer is allowed to (the quality modes) and smaller: codes that repeat or drift slowly along
# rows cost little then (a vertical profile's interpolation error, the same at every horizontal point: NCEP Z3 at
# 90 dB -22%; Gray-Scott at 85-95 dB -16%). Differences along columns or in 2D added nothing (probe, 5 fields).
METHOD_ROW_DELTAS = 5
# Format 1.7: the same two with binarisation 2 (fewer binary decisions for large codes: srnsz.coding.context_mixing)
METHOD_MIXING_2 = 6
METHOD_ROW_DELTAS_2 = 7
# Format 1.8: binarisation 3, two mixed models per decision (the fast profile, srnsz.coding.context_mixing)
METHOD_MIXING_FAST = 8


@dataclass
class CodeBatch:
    """The codes of one chunk of one pass, with what the decoder knows about them."""

    codes: np.ndarray  # (n,) int16
    contexts: np.ndarray  # (n,) uint8
    table: int
    detail: np.ndarray | None = None  # (n,) uint8 or None (all zero)
    shape: tuple[int, ...] = ()  # layout of the codes (C order); () = one line

    @property
    def keys(self) -> np.ndarray:
        """(n,) int64 adaptive model key: context * N_DETAILS + detail."""
        keys = self.contexts.astype(np.int64) * N_DETAILS
        return keys if self.detail is None else keys + self.detail



def by_table(batches: list[CodeBatch]) -> dict[int, list[CodeBatch]]:
    """The batches of each table, tables in ascending order, batches in writing order."""
    tables: dict[int, list[CodeBatch]] = {}
    for b in batches:
        tables.setdefault(b.table, []).append(b)
    return dict(sorted(tables.items()))


def context_groups(contexts: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Stable order that groups positions by context, and (context, start, stop) runs in that order."""
    order = np.argsort(contexts, kind="stable")
    sizes = np.bincount(contexts)
    runs, start = [], 0
    for ctx in np.flatnonzero(sizes).tolist():
        runs.append((ctx, start, start + int(sizes[ctx])))
        start += int(sizes[ctx])
    return order, runs


def row_deltas(batch: CodeBatch) -> CodeBatch | None:
    """``batch`` with each code replaced by its difference from the previous code of its row that is not ESCAPE (0
    before the first); ESCAPE codes stay ESCAPE. None where a difference leaves [-RADIUS, RADIUS]."""
    codes = batch.codes.astype(np.int32).reshape(batch.shape or (-1,))
    escaped = codes == ESCAPE
    plain = np.where(escaped, 0, codes)
    if escaped.any():  # an escaped code leaves the row's reference where it was
        last = np.maximum.accumulate(np.where(escaped, 0, np.arange(codes.shape[-1])), axis=-1)
        plain = np.take_along_axis(plain, last, axis=-1)
    deltas = np.diff(plain, axis=-1, prepend=0)
    if deltas.size and np.abs(deltas).max() > RADIUS:
        return None
    return replace(batch, codes=np.where(escaped, ESCAPE, deltas).astype(CODE_DTYPE).ravel())


def undo_row_deltas(deltas: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The codes (n,) int16 whose :func:`row_deltas` in layout ``shape`` are ``deltas`` (n,); a clear error where
    they sum past the code range (a damaged stream)."""
    rows = deltas.astype(np.int64).reshape(shape or (-1,))
    escaped = rows == ESCAPE
    codes = np.cumsum(np.where(escaped, 0, rows), axis=-1)
    if codes.size and np.abs(codes).max() > RADIUS:
        raise StreamFormatError("the code section is corrupted (row differences leave the code range)")
    return np.where(escaped, ESCAPE, codes).astype(CODE_DTYPE).ravel()
