"""Coding method 3 (format 1.1, read only): adaptive context coding, PPM-style.

One model per (table, context, detail) that both sides build from the codes already coded; a model codes its
codes in segments (each about half as long as what it has seen), and a code it has not seen yet escapes to the
table's shared model, whose own unseen codes are spelled out (bit length + bits). Context mixing replaced it in
the writer; the encoder lives in tests/legacy_adaptive.py, to test this reader.
"""

from __future__ import annotations

import constriction
import numpy as np

from srnsz.coding.batch import CodeBatch, context_groups
from srnsz.errors import StreamFormatError
from srnsz.quantizer import CODE_DTYPE

MIN_SEGMENT = 2
LENGTH_CLASSES = 17  # bit lengths 0..16 of a zigzagged int16


class AdaptiveModel:
    """Counts of the codes seen so far in one context (open alphabet, PPM method C): a seen code has weight
    count, the escape (an unseen code) weight = number of distinct codes seen."""

    def __init__(self) -> None:
        self.symbols = np.empty(0, np.int32)  # sorted
        self.counts = np.empty(0, np.float64)
        self.seen = 0
        self._categorical: object = None

    def next_segment(self, left: int) -> int:
        """How many of the ``left`` pending codes to code before the model is next updated."""
        return min(left, max(MIN_SEGMENT, self.seen >> 1))

    def categorical(self) -> object:
        """Distribution over the indices 0..k-1 of the seen codes and k = escape (k = number seen, >= 1)."""
        if self._categorical is None:
            k = self.symbols.size
            self._categorical = constriction.stream.model.Categorical(
                np.append(self.counts, float(k)), perfect=False)
        return self._categorical

    def indices(self, values: np.ndarray) -> np.ndarray:
        """(n,) int32 index of each value among the seen codes, k (escape) where unseen."""
        k = self.symbols.size
        index = np.searchsorted(self.symbols, values).astype(np.int32)
        unseen = index >= k
        unseen[~unseen] = self.symbols[index[~unseen]] != values[~unseen]
        index[unseen] = k
        return index

    def update(self, values: np.ndarray, index: np.ndarray) -> None:
        """Count ``values`` (n,), whose :meth:`indices` are ``index`` (n,)."""
        k = self.symbols.size
        counts = self.counts + np.bincount(index, minlength=k + 1)[:k]
        unseen = index == k
        if unseen.any():
            new, new_counts = np.unique(values[unseen], return_counts=True)
            merged = np.concatenate([self.symbols, new.astype(np.int32)])
            order = np.argsort(merged, kind="stable")
            self.symbols = merged[order]
            counts = np.concatenate([counts, new_counts.astype(np.float64)])[order]
        self.counts, self.seen = counts, self.seen + values.size
        self._categorical = None


def zigzag(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    return np.where(v < 0, -2 * v - 1, 2 * v)


def unzigzag(u: np.ndarray) -> np.ndarray:
    return np.where(u & 1, -(u >> 1) - 1, u >> 1)


def spelled(decoder: object, n: int) -> np.ndarray:
    """Inverse of :func:`spell` for ``n`` values; lengths <= 16 keep them in the int16 range."""
    lengths = decoder.decode(constriction.stream.model.Uniform(LENGTH_CLASSES), n).astype(np.int64)
    u = np.where(lengths > 0, 1, 0).astype(np.int64)
    long = lengths >= 2
    if long.any():
        sizes = (1 << (lengths[long] - 1)).astype(np.int32)
        u[long] = sizes + decoder.decode(constriction.stream.model.Uniform(), sizes)
    return unzigzag(u)


class AdaptiveTable:
    """The models of one table: one per context key, and the shared model their escapes fall back to."""

    def __init__(self) -> None:
        self.models: dict[int, AdaptiveModel] = {}
        self.shared = AdaptiveModel()

    def decode(self, decoder: object, batch: CodeBatch) -> np.ndarray:
        out = np.empty(batch.contexts.size, dtype=CODE_DTYPE)
        order, runs = context_groups(batch.keys)
        for key, start, stop in runs:
            model = self.models.setdefault(key, AdaptiveModel())
            while start < stop:
                n = model.next_segment(stop - start)
                values = self._decode_with(decoder, model, n)
                out[order[start:start + n]] = values
                start += n
        return out

    def _decode_with(self, decoder: object, model: AdaptiveModel, n: int, shared: bool = False) -> np.ndarray:
        """``n`` values decoded with ``model`` (updated); its escapes decoded by the shared model, whose own
        escapes (``shared``) are spelled out."""
        k = model.symbols.size
        index = decoder.decode(model.categorical(), n) if k else np.zeros(n, np.int32)
        if index.size and int(index.max()) > k:
            raise StreamFormatError("the code section is corrupted")
        unseen = index == k
        values = np.empty(n, np.int32)
        values[~unseen] = model.symbols[index[~unseen]]
        if unseen.any():
            values[unseen] = spelled(decoder, int(unseen.sum())) if shared else \
                self._decode_with(decoder, self.shared, int(unseen.sum()), shared=True)
        model.update(values, index)
        return values

class AdaptiveReader:
    def __init__(self, body: bytes, most_codes: int | None = None) -> None:  # decodes batch by batch
        if len(body) % 4:
            raise StreamFormatError("the code section is truncated")
        self._decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(body, "<u4").astype(np.uint32))
        self._table = AdaptiveTable()

    def read(self, batch: CodeBatch) -> np.ndarray:
        try:
            return self._table.decode(self._decoder, batch)
        except AssertionError:  # constriction's word for data its model cannot have produced
            raise StreamFormatError("the code section is corrupted") from None


