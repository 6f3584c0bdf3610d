"""Entropy coding of quantization codes with context models (constriction range coding).

The predictor hands the coder batches of int16 codes, each code with a context (0..N_CONTEXTS-1, computed
from data the decoder already has), optionally a detail (0..N_DETAILS-1, a second decoder-side feature) and a
table id (the level). The decoder asks for batches in the same order with the same contexts and details.
Per table the writer keeps the smallest of:

- context mixing (srnsz.coding.context_mixing, format 1.2): codes one at a time, so besides the contexts and details
  it sees the codes of the point's neighbours in the same batch (needs the batch's ``shape``);
- static context coding: one distribution per (table, context), counted by the encoder and stored in the
  stream, so codes in quiet regions (all zero neighbours) cost far below one bit;
- zstd on the raw codes, which wins where the codes repeat exactly over long stretches (very smooth fields).

The reader also decodes adaptive context coding (PPM-style, format 1.1): one model per (table, context, detail)
that both sides build from the codes already coded; a model codes its codes in segments (each about half as
long as what it has seen), and a code it has not seen yet escapes to the table's shared model, whose own unseen
codes are spelled out (length + bits). Context mixing replaced it in the writer (smaller on all but a few
small tables of the shared fields); its encoder stays to test the reader.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import constriction
import numpy as np

from srnsz.coding import lossless
from srnsz.coding.context import N_DETAILS
from srnsz.coding.context_mixing import MixingDecoder, MixingEncoder
from srnsz.errors import StreamFormatError
from srnsz.quantizer import CODE_DTYPE, ESCAPE

N_CONTEXTS = 16
_SYMBOLS = 1 << 16  # int16 codes shifted by 2^15
_SHIFT = 1 << 15
_COUNT_TOTAL = 1 << 18  # stored counts are scaled to about this total
METHOD_CONTEXT = 1
METHOD_ZSTD = 2
METHOD_ADAPTIVE = 3
METHOD_MIXING = 4
QUICK_ZSTD_LEVEL = 6
STRONG_ZSTD_LEVEL = 19
STRONG_ZSTD_MAX_BYTES = 1 << 22


@dataclass
class _Batch:
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


@dataclass
class ContextCodeWriter:
    """Collects code batches; :meth:`finish` returns the coded bytes."""

    batches: list[_Batch] = field(default_factory=list)

    def write(self, codes: np.ndarray, contexts: np.ndarray, table: int, detail: np.ndarray | None = None,
              shape: tuple[int, ...] = ()) -> None:
        """Queue ``codes`` (n,) int16 with their ``contexts`` (n,) uint8 (< N_CONTEXTS) and ``detail`` (n,) uint8
        (< N_DETAILS, refines the contexts) under table id ``table``; ``shape`` is their layout (C order, product
        n; () = one line), whose neighbours the context mixing reads."""
        self.batches.append(_Batch(codes.astype(CODE_DTYPE, copy=False), contexts, table, detail, shape))

    def estimated_bytes(self) -> int:
        """What :meth:`finish` would take, give or take the other codings (which rarely win): the
        context-mixing coding, run for real (it is fast). For trial compressions."""
        return sum(len(_encode_mixing(mine)) for mine in _by_table(self.batches).values())

    def finish(self) -> bytes:
        """One sub-stream per table, each in whichever coding is smaller for it."""
        tables = _by_table(self.batches)
        parts = [struct.pack("<I", len(tables))]
        for table, mine in tables.items():
            modelled, (width, raw) = min(_encode_context(mine), _encode_mixing(mine), key=len), _plain_codes(mine)
            quick = _encode_zstd(width, raw, QUICK_ZSTD_LEVEL)
            best = min(modelled, quick, key=len)
            # The strong zstd level pays on small streams only and gains at most ~30% over the quick one:
            # try it only where it can win.
            if len(raw) <= STRONG_ZSTD_MAX_BYTES and len(quick) < 1.4 * len(modelled):
                best = min(best, _encode_zstd(width, raw, STRONG_ZSTD_LEVEL), key=len)
            parts.append(struct.pack("<II", table, len(best)) + best)
        return b"".join(parts)


class CodeReader:
    """Hands back code batches in the order they were written."""

    def __init__(self, payload: bytes) -> None:
        self._tables: dict[int, _ContextReader | _PlainReader | _AdaptiveReader | _MixingReader] = {}
        try:
            (n,) = struct.unpack_from("<I", payload, 0)
            pos = 4
            for _ in range(n):
                table, size = struct.unpack_from("<II", payload, pos)
                pos += 8
                body = payload[pos:pos + size]
                if len(body) != size or size == 0:
                    raise StreamFormatError("the code section is truncated")
                pos += size
                self._tables[table] = _open_substream(body)
        except struct.error:
            raise StreamFormatError("the code section is truncated") from None

    def read(self, contexts: np.ndarray, table: int, detail: np.ndarray | None = None,
             shape: tuple[int, ...] = ()) -> np.ndarray:
        """Codes (n,) int16 of the next batch, whose contexts are ``contexts`` (n,) uint8, details ``detail``
        (n,) uint8 or None and layout ``shape``, as written."""
        if table not in self._tables:
            raise StreamFormatError(f"the code section lacks the codes of level {table}")
        return self._tables[table].read(_Batch(np.empty(0, CODE_DTYPE), contexts, table, detail, shape))


def _open_substream(body: bytes) -> _ContextReader | _PlainReader | _AdaptiveReader | _MixingReader:
    method, rest = body[0], body[1:]
    if method == METHOD_CONTEXT:
        return _ContextReader(rest)
    if method == METHOD_ZSTD:
        return _PlainReader(rest)
    if method == METHOD_ADAPTIVE:
        return _AdaptiveReader(rest)
    if method == METHOD_MIXING:
        return _MixingReader(rest)
    raise StreamFormatError(f"the code section uses unknown coding method {method}")


# --- zstd on raw codes -------------------------------------------------------------------------------------

def _plain_codes(batches: list[_Batch]) -> tuple[int, bytes]:
    """All codes as bytes: (1, int8 with -128 for escapes) when they fit, which zstd compresses far better,
    else (2, int16 little endian)."""
    codes = np.concatenate([b.codes for b in batches])
    if bool(((codes > -128) & (codes < 128) | (codes == ESCAPE)).all()):
        return 1, np.where(codes == ESCAPE, -128, codes).astype("i1").tobytes()
    return 2, codes.astype("<i2").tobytes()


def _encode_zstd(width: int, raw: bytes, level: int) -> bytes:
    return bytes([METHOD_ZSTD, width]) + lossless.pack(raw, level=level)


class _PlainReader:
    def __init__(self, body: bytes) -> None:
        if len(body) < 2 or body[0] not in (1, 2):
            raise StreamFormatError("the code section is corrupted")
        raw = lossless.unpack(body[1:], "code")
        if body[0] == 1:
            self._codes = np.frombuffer(raw, dtype="i1").astype(CODE_DTYPE)
            self._codes[self._codes == -128] = ESCAPE
        elif len(raw) % 2:
            raise StreamFormatError("the code section has an odd byte count")
        else:
            self._codes = np.frombuffer(raw, dtype="<i2").astype(CODE_DTYPE)
        self._pos = 0

    def read(self, batch: _Batch) -> np.ndarray:
        n = batch.contexts.size
        if self._pos + n > self._codes.size:
            raise StreamFormatError("the code section holds fewer codes than the shape needs")
        out = self._codes[self._pos:self._pos + n]
        self._pos += n
        return out


# --- context range coding ----------------------------------------------------------------------------------

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


def _by_table(batches: list[_Batch]) -> dict[int, list[_Batch]]:
    """The batches of each table, tables in ascending order, batches in writing order."""
    tables: dict[int, list[_Batch]] = {}
    for b in batches:
        tables.setdefault(b.table, []).append(b)
    return dict(sorted(tables.items()))


def _joined(batches: list[_Batch]) -> tuple[np.ndarray, np.ndarray]:
    """(contexts, codes) of ``batches`` concatenated, both int64."""
    return (np.concatenate([b.contexts for b in batches]).astype(np.int64),
            np.concatenate([b.codes for b in batches]).astype(np.int64))


def _histograms(batches: list[_Batch]) -> dict[int, np.ndarray]:
    """(N_CONTEXTS * 2^16,) counts of (context, code) per table."""
    hist: dict[int, np.ndarray] = {}
    for table, mine in _by_table(batches).items():
        contexts, codes = _joined(mine)
        hist[table] = np.bincount(contexts * _SYMBOLS + codes + _SHIFT, minlength=N_CONTEXTS * _SYMBOLS)
    return hist


def _scaled(counts: np.ndarray) -> np.ndarray:
    total = int(counts.sum())
    if total <= _COUNT_TOTAL:
        return counts.astype(np.int64)
    return np.maximum(1, np.rint(counts * (_COUNT_TOTAL / total))).astype(np.int64)


def _build_models(batches: list[_Batch]) -> dict[tuple[int, int], _Model]:
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


def _parse_models(blob: bytes) -> dict[tuple[int, int], _Model]:
    raw = lossless.unpack(blob, "code table")
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


def _groups(contexts: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Stable order that groups positions by context, and (context, start, stop) runs in that order."""
    order = np.argsort(contexts, kind="stable")
    sizes = np.bincount(contexts)
    runs, start = [], 0
    for ctx in np.flatnonzero(sizes).tolist():
        runs.append((ctx, start, start + int(sizes[ctx])))
        start += int(sizes[ctx])
    return order, runs


def _encode_context(batches: list[_Batch]) -> bytes:
    models = _build_models(batches)
    encoder = constriction.stream.queue.RangeEncoder()
    for b in batches:
        order, runs = _groups(b.contexts)
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


class _ContextReader:
    def __init__(self, body: bytes) -> None:
        if len(body) < 4:
            raise StreamFormatError("the code section is truncated")
        (n_tables,) = struct.unpack_from("<I", body, 0)
        if 4 + n_tables > len(body):
            raise StreamFormatError("the code section is truncated")
        self._models = _parse_models(body[4:4 + n_tables])
        words = body[4 + n_tables:]
        if len(words) % 4:
            raise StreamFormatError("the code section is truncated")
        self._decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(words, "<u4").astype(np.uint32))

    def read(self, batch: _Batch) -> np.ndarray:
        contexts, table = batch.contexts, batch.table
        out = np.empty(contexts.size, dtype=CODE_DTYPE)
        order, runs = _groups(contexts)
        for ctx, start, stop in runs:
            model = self._models.get((table, ctx))
            if model is None:
                raise StreamFormatError(f"the code table lacks a model for level {table} context {ctx}")
            if model.symbols.size == 1:
                out[order[start:stop]] = model.symbols[0]
                continue
            index = self._decoder.decode(model.categorical(), stop - start)
            if index.size and int(index.max()) >= model.symbols.size:
                raise StreamFormatError("the code section is corrupted")
            out[order[start:stop]] = model.symbols[index]
        return out


# --- adaptive context coding ---------------------------------------------------------------------------------

MIN_SEGMENT = 2
_LENGTH_CLASSES = 17  # bit lengths 0..16 of a zigzagged int16


class _AdaptiveModel:
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


def _zigzag(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    return np.where(v < 0, -2 * v - 1, 2 * v)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    return np.where(u & 1, -(u >> 1) - 1, u >> 1)


def _spell(encoder: object, values: np.ndarray) -> None:
    """Code int16 ``values`` without a model: bit length b of the zigzagged value, then its b - 1 low bits."""
    u = _zigzag(values)
    lengths = np.frexp(u.astype(np.float64))[1].astype(np.int32)  # = bit_length (0 for 0)
    encoder.encode(lengths, constriction.stream.model.Uniform(_LENGTH_CLASSES))
    long = lengths >= 2
    if long.any():
        sizes = (1 << (lengths[long] - 1)).astype(np.int32)
        encoder.encode((u[long] - sizes).astype(np.int32), constriction.stream.model.Uniform(), sizes)


def _spelled(decoder: object, n: int) -> np.ndarray:
    """Inverse of :func:`_spell` for ``n`` values; lengths <= 16 keep them in the int16 range."""
    lengths = decoder.decode(constriction.stream.model.Uniform(_LENGTH_CLASSES), n).astype(np.int64)
    u = np.where(lengths > 0, 1, 0).astype(np.int64)
    long = lengths >= 2
    if long.any():
        sizes = (1 << (lengths[long] - 1)).astype(np.int32)
        u[long] = sizes + decoder.decode(constriction.stream.model.Uniform(), sizes)
    return _unzigzag(u)


class _AdaptiveTable:
    """The models of one table: one per context key, and the shared model their escapes fall back to."""

    def __init__(self) -> None:
        self.models: dict[int, _AdaptiveModel] = {}
        self.shared = _AdaptiveModel()

    def encode(self, encoder: object, batch: _Batch) -> None:
        order, runs = _groups(batch.keys)
        ordered = batch.codes[order].astype(np.int32)
        for key, start, stop in runs:
            model = self.models.setdefault(key, _AdaptiveModel())
            while start < stop:
                segment = ordered[start:start + model.next_segment(stop - start)]
                start += segment.size
                unseen = self._encode_with(encoder, model, segment)
                if unseen.size:
                    self._encode_with(encoder, self.shared, unseen, spell=True)

    @staticmethod
    def _encode_with(encoder: object, model: _AdaptiveModel, values: np.ndarray, spell: bool = False) -> np.ndarray:
        """Code ``values`` with ``model`` and update it; returns the escaped values (or spells them out)."""
        index = model.indices(values)
        if model.symbols.size:
            encoder.encode(index, model.categorical())
        unseen = values[index == model.symbols.size]
        model.update(values, index)
        if spell and unseen.size:
            _spell(encoder, unseen)
        return unseen

    def decode(self, decoder: object, batch: _Batch) -> np.ndarray:
        out = np.empty(batch.contexts.size, dtype=CODE_DTYPE)
        order, runs = _groups(batch.keys)
        for key, start, stop in runs:
            model = self.models.setdefault(key, _AdaptiveModel())
            while start < stop:
                n = model.next_segment(stop - start)
                values = self._decode_with(decoder, model, n)
                out[order[start:start + n]] = values
                start += n
        return out

    def _decode_with(self, decoder: object, model: _AdaptiveModel, n: int, spell: bool = False) -> np.ndarray:
        k = model.symbols.size
        index = decoder.decode(model.categorical(), n) if k else np.zeros(n, np.int32)
        if index.size and int(index.max()) > k:
            raise StreamFormatError("the code section is corrupted")
        unseen = index == k
        values = np.empty(n, np.int32)
        values[~unseen] = model.symbols[index[~unseen]]
        if unseen.any():
            values[unseen] = _spelled(decoder, int(unseen.sum())) if spell else \
                self._decode_with(decoder, self.shared, int(unseen.sum()), spell=True)
        model.update(values, index)
        return values

def _encode_adaptive(batches: list[_Batch]) -> bytes:
    encoder = constriction.stream.queue.RangeEncoder()
    table = _AdaptiveTable()
    for b in batches:
        table.encode(encoder, b)
    return bytes([METHOD_ADAPTIVE]) + encoder.get_compressed().astype("<u4").tobytes()


class _AdaptiveReader:
    def __init__(self, body: bytes) -> None:
        if len(body) % 4:
            raise StreamFormatError("the code section is truncated")
        self._decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(body, "<u4").astype(np.uint32))
        self._table = _AdaptiveTable()

    def read(self, batch: _Batch) -> np.ndarray:
        return self._table.decode(self._decoder, batch)


# --- context mixing ----------------------------------------------------------------------------------------------

def _encode_mixing(batches: list[_Batch]) -> bytes:
    encoder = MixingEncoder()
    for b in batches:
        encoder.encode(b.codes, b.contexts, b.detail, b.shape)
    return bytes([METHOD_MIXING]) + encoder.finish()


class _MixingReader:
    def __init__(self, body: bytes) -> None:
        self._decoder = MixingDecoder(body)

    def read(self, batch: _Batch) -> np.ndarray:
        return self._decoder.decode(batch.contexts, batch.detail, batch.shape)
