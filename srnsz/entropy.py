"""Entropy coding of quantization codes with context models (constriction range coding).

The predictor hands the coder batches of int16 codes, each code with a context (0..N_CONTEXTS-1, computed
from data the decoder already has) and a table id (the level). Each (table, context) pair gets its own
static distribution, counted by the encoder and stored in the stream, so codes in quiet regions (all zero
neighbours) cost far below one bit. The decoder asks for batches in the same order with the same contexts.
Per table two codings are tried and the smaller kept: context range coding, and zstd on the raw codes (which
wins where the codes repeat exactly over long stretches, as in very smooth fields).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import constriction
import numpy as np

from srnsz import lossless
from srnsz.errors import StreamFormatError
from srnsz.quantizer import CODE_DTYPE, ESCAPE

N_CONTEXTS = 16
_SYMBOLS = 1 << 16  # int16 codes shifted by 2^15
_SHIFT = 1 << 15
_COUNT_TOTAL = 1 << 18  # stored counts are scaled to about this total
METHOD_CONTEXT = 1
METHOD_ZSTD = 2
QUICK_ZSTD_LEVEL = 6
TRIAL_ZSTD_LEVEL = 1
STRONG_ZSTD_LEVEL = 19
STRONG_ZSTD_MAX_BYTES = 1 << 22


@dataclass
class _Batch:
    codes: np.ndarray  # (n,) int16
    contexts: np.ndarray  # (n,) uint8
    table: int


@dataclass
class ContextCodeWriter:
    """Collects code batches; :meth:`finish` returns the coded bytes."""

    batches: list[_Batch] = field(default_factory=list)

    def write(self, codes: np.ndarray, contexts: np.ndarray, table: int) -> None:
        """Queue ``codes`` (n,) int16 with their ``contexts`` (n,) uint8 under table id ``table``."""
        self.batches.append(_Batch(codes.astype(CODE_DTYPE, copy=False), contexts, table))

    def estimated_bytes(self) -> int:
        """What the context coder would take, without coding: the empirical entropy of each (table, context)
        plus two bytes per model symbol, or fast zstd where smaller. For trial compressions, which only compare
        sizes."""
        total = 0.0
        for mine in _by_table(self.batches).values():
            contexts, codes = _joined(mine)
            # Codes beyond +-255 are rare: lumping them changes no comparison.
            codes = np.clip(codes, -256, 256) + 256
            per_ctx = np.bincount(contexts * 513 + codes, minlength=N_CONTEXTS * 513).reshape(N_CONTEXTS, 513)
            present = per_ctx > 0
            counts = per_ctx[present].astype(np.float64)
            totals = np.broadcast_to(per_ctx.sum(axis=1, keepdims=True), per_ctx.shape)[present]
            context_bytes = float(-(counts * np.log2(counts / totals)).sum()) / 8 + 2 * counts.size
            # The zstd fallback wins on long exact repeats, which entropy does not see.
            width, raw = _plain_codes(mine)
            total += min(context_bytes, len(_encode_zstd(width, raw, TRIAL_ZSTD_LEVEL)))
        return int(total)

    def finish(self) -> bytes:
        """One sub-stream per table, each in whichever coding is smaller for it."""
        tables = _by_table(self.batches)
        parts = [struct.pack("<I", len(tables))]
        for table, mine in tables.items():
            context, (width, raw) = _encode_context(mine), _plain_codes(mine)
            quick = _encode_zstd(width, raw, QUICK_ZSTD_LEVEL)
            best = min(context, quick, key=len)
            # The strong zstd level pays on small streams only and gains at most ~30% over the quick one:
            # try it only where it can win.
            if len(raw) <= STRONG_ZSTD_MAX_BYTES and len(quick) < 1.4 * len(context):
                best = min(best, _encode_zstd(width, raw, STRONG_ZSTD_LEVEL), key=len)
            parts.append(struct.pack("<II", table, len(best)) + best)
        return b"".join(parts)


class CodeReader:
    """Hands back code batches in the order they were written."""

    def __init__(self, payload: bytes) -> None:
        self._tables: dict[int, _ContextReader | _PlainReader] = {}
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

    def read(self, contexts: np.ndarray, table: int) -> np.ndarray:
        """Codes (n,) int16 of the next batch, whose contexts are ``contexts`` (n,) uint8."""
        if table not in self._tables:
            raise StreamFormatError(f"the code section lacks the codes of level {table}")
        return self._tables[table].read(contexts, table)


def _open_substream(body: bytes) -> _ContextReader | _PlainReader:
    method, rest = body[0], body[1:]
    if method == METHOD_CONTEXT:
        return _ContextReader(rest)
    if method == METHOD_ZSTD:
        return _PlainReader(rest)
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

    def read(self, contexts: np.ndarray, table: int) -> np.ndarray:
        n = contexts.size
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
    sizes = np.bincount(contexts, minlength=N_CONTEXTS)
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

    def read(self, contexts: np.ndarray, table: int) -> np.ndarray:
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
