"""One batch of quantization codes as the coders see it, and what every coding method shares.

A batch: int16 codes (n,), a context (0..N_CONTEXTS-1) and optionally a detail (0..N_DETAILS-1) per code, both
computed from data the decoder already has, a table id (the level) and the codes' layout (``shape``, whose
neighbours context mixing reads). Each table of a CODE section is one sub-stream whose first byte names its
coding method (docs/format.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srnsz.coding.context import N_DETAILS

N_CONTEXTS = 16
METHOD_CONTEXT = 1  # static context range coding (srnsz.coding.static)
METHOD_ZSTD = 2  # zstd of the raw codes (srnsz.coding.plain)
METHOD_ADAPTIVE = 3  # adaptive context coding, format 1.1, read only (srnsz.coding.adaptive)
METHOD_MIXING = 4  # context mixing, format 1.2 (srnsz.coding.context_mixing)


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


