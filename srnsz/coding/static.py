"""Coding method 1: static context range coding. One distribution per (table, context), counted by the encoder
and stored in the stream, so codes in quiet regions (all zero neighbours) cost far below one bit."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import constriction
import numpy as np

from srnsz.coding import lossless
from srnsz.coding.batch import METHOD_CONTEXT, N_CONTEXTS, CodeBatch, by_table, context_groups
from srnsz.errors import StreamFormatError
from srnsz.quantizer import CODE_DTYPE

_SYMBOLS = 1 << 16  # int16 codes shifted by 2^15
_SHIFT = 1 << 15
_COUNT_TOTAL = 1 << 18  # stored counts are scaled to about this total


@dataclass
class _Model:
    symbols: np.ndarray  # (k,) int32 sorted codes present
    counts: np.ndarray  # (k,) int64 scaled counts >= 1
    _categorical: object = None

    def categorical(self) -> object:
        if self._categorical is None:
            p = self.counts / float(self.counts.sum())
            self._categorical = constriction.stream.model.Categorical(p, perfect=False)
        return self._categorical


def _joined(batches: list[CodeBatch]) -> tuple[np.ndarray, np.ndarray]:
    """(contexts, codes) of ``batches`` concatenated, both int64."""
    return (np.concatenate([b.contexts for b in batches]).astype(np.int64),
            np.concatenate([b.codes for b in batches]).astype(np.int64))


def _histograms(batches: list[CodeBatch]) -> dict[int, np.ndarray]:
    """(N_CONTEXTS * 2^16,) counts of (context, code) per table."""
    hist: dict[int, np.ndarray] = {}
    for table, mine in by_table(batches).items():
        contexts, codes = _joined(mine)
        hist[table] = np.bincount(contexts * _SYMBOLS + codes + _SHIFT, minlength=N_CONTEXTS * _SYMBOLS)
    return hist


def _scaled(counts: np.ndarray) -> np.ndarray:
    total = int(counts.sum())
    if total <= _COUNT_TOTAL:
        return counts.astype(np.int64)
    return np.maximum(1, np.rint(counts * (_COUNT_TOTAL / total))).astype(np.int64)


def _build_models(batches: list[CodeBatch]) -> dict[tuple[int, int], _Model]:
    models: dict[tuple[int, int], _Model] = {}
    for table, hist in sorted(_histograms(batches).items()):
        per_ctx = hist.reshape(N_CONTEXTS, _SYMBOLS)
        for ctx in range(N_CONTEXTS):
            present = np.flatnonzero(per_ctx[ctx])
            if present.size:
                models[table, ctx] = _Model(present.astype(np.int32) - _SHIFT, _scaled(per_ctx[ctx, present]))
    return models


def _serialize_models(models: dict[tuple[int, int], _Model]) -> bytes:
    keys = sorted(models)
    head = np.array([(t, c, models[t, c].symbols.size) for t, c in keys], dtype="<u4").reshape(-1, 3)
    deltas = [np.diff(models[k].symbols, prepend=models[k].symbols[:1]) for k in keys]
    firsts = np.array([models[k].symbols[0] for k in keys], dtype="<i4")
    body = b"".join([
        struct.pack("<I", len(keys)), head.tobytes(), firsts.tobytes(),
        np.concatenate(deltas).astype("<u2").tobytes() if keys else b"",
        np.concatenate([models[k].counts for k in keys]).astype("<u4").tobytes() if keys else b"",
    ])
    return lossless.pack(body)


def _parse_models(blob: bytes, max_size: int | None = None) -> dict[tuple[int, int], _Model]:
    raw = lossless.unpack(blob, "code table", max_size)
    try:
        (n,) = struct.unpack_from("<I", raw, 0)
        pos = 4
        head = np.frombuffer(raw, "<u4", 3 * n, pos).reshape(n, 3)
        pos += 12 * n
        firsts = np.frombuffer(raw, "<i4", n, pos)
        pos += 4 * n
        total = int(head[:, 2].sum()) if n else 0
        deltas = np.frombuffer(raw, "<u2", total, pos).astype(np.int32)
        pos += 2 * total
        counts = np.frombuffer(raw, "<u4", total, pos).astype(np.int64)
    except (struct.error, ValueError):
        raise StreamFormatError("the code table is truncated") from None
    models = {}
    start = 0
    for (table, ctx, k), first in zip(head.tolist(), firsts.tolist()):
        d = deltas[start:start + k].copy()
        d[0] = first
        if k == 0 or (counts[start:start + k] == 0).any():
            raise StreamFormatError("the code table is corrupted")
        models[table, ctx] = _Model(np.cumsum(d).astype(np.int32), counts[start:start + k])
        start += k
    return models


_BOUND_SYMBOLS = 32  # codes beyond +-this are one symbol in size_lower_bound (merging symbols lowers the entropy)


def size_lower_bound(batches: list[CodeBatch]) -> float:
    """Bits that no coding of ``batches`` by this method goes below: the empirical entropy of their codes given
    their context (each context's counts are the best static distribution for it; the stored tables come on top),
    with codes beyond +-_BOUND_SYMBOLS merged. Lets the writer skip this coder where it cannot win."""
    contexts, codes = _joined(batches)
    symbols = 2 * _BOUND_SYMBOLS + 1
    joint = contexts * symbols + np.clip(codes, -_BOUND_SYMBOLS, _BOUND_SYMBOLS) + _BOUND_SYMBOLS
    counts = np.bincount(joint, minlength=N_CONTEXTS * symbols).reshape(N_CONTEXTS, symbols)
    per_context = np.broadcast_to(counts.sum(axis=1, keepdims=True), counts.shape)
    seen = counts > 0
    return float((counts[seen] * np.log2(per_context[seen] / counts[seen])).sum())


def encode_static(batches: list[CodeBatch]) -> bytes:
    models = _build_models(batches)
    encoder = constriction.stream.queue.RangeEncoder()
    for b in batches:
        order, runs = context_groups(b.contexts)
        ordered = b.codes[order]
        for ctx, start, stop in runs:
            model = models[b.table, ctx]
            if model.symbols.size == 1:
                continue  # a certain symbol costs nothing
            index = np.searchsorted(model.symbols, ordered[start:stop]).astype(np.int32)
            encoder.encode(index, model.categorical())
    words = encoder.get_compressed()
    tables = _serialize_models(models)
    return bytes([METHOD_CONTEXT]) + struct.pack("<I", len(tables)) + tables + words.astype("<u4").tobytes()


class StaticReader:
    def __init__(self, body: bytes, most_codes: int | None = None) -> None:
        if len(body) < 4:
            raise StreamFormatError("the code section is truncated")
        (n_tables,) = struct.unpack_from("<I", body, 0)
        if 4 + n_tables > len(body):
            raise StreamFormatError("the code section is truncated")
        # a model per (table, context) present and a symbol per code at most: 16 + 6 bytes each, and the count
        self._models = _parse_models(body[4:4 + n_tables], None if most_codes is None else 4 + 22 * most_codes)
        words = body[4 + n_tables:]
        if len(words) % 4:
            raise StreamFormatError("the code section is truncated")
        self._decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(words, "<u4").astype(np.uint32))

    def read(self, batch: CodeBatch) -> np.ndarray:
        contexts, table = batch.contexts, batch.table
        out = np.empty(contexts.size, dtype=CODE_DTYPE)
        order, runs = context_groups(contexts)
        for ctx, start, stop in runs:
            model = self._models.get((table, ctx))
            if model is None:
                raise StreamFormatError(f"the code table lacks a model for level {table} context {ctx}")
            if model.symbols.size == 1:
                out[order[start:stop]] = model.symbols[0]
                continue
            try:
                index = self._decoder.decode(model.categorical(), stop - start)
            except AssertionError:  # constriction's word for data its model cannot have produced
                raise StreamFormatError("the code section is corrupted") from None
            if index.size and int(index.max()) >= model.symbols.size:
                raise StreamFormatError("the code section is corrupted")
            out[order[start:stop]] = model.symbols[index]
        return out


