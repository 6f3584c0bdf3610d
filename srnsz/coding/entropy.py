"""The code writer and reader: framing of the CODE section, one sub-stream per table, each in its method.

The predictor hands the coder batches of int16 codes, each code with a context (0..N_CONTEXTS-1, computed
from data the decoder already has), optionally a detail (0..N_DETAILS-1, a second decoder-side feature) and a
table id (the level). The decoder asks for batches in the same order with the same contexts and details.
Per table the writer keeps the smallest of:

- context mixing (srnsz.coding.context_mixing, format 1.2; binarisation 2 since format 1.7): codes one at a time, so
  besides the contexts and details it sees the codes of the point's neighbours in the same batch (needs the batch's
  ``shape``);
- static context coding: one distribution per (table, context), counted by the encoder and stored in the
  stream, so codes in quiet regions (all zero neighbours) cost far below one bit;
- zstd on the raw codes, which wins where the codes repeat exactly over long stretches (very smooth fields);
- where the writer allows it (``row_deltas``, the quality modes; format 1.6): context mixing of the codes' differences
  along each row of a batch.

A ``fast`` writer (the fast profile, format 1.8) codes every table with the two-model mix (binarisation 3) and
tries nothing else.

The reader also decodes adaptive context coding (format 1.1, srnsz.coding.adaptive), which context mixing
replaced in the writer (smaller on all but a few small tables of the shared fields).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from srnsz.coding.adaptive import AdaptiveReader
from srnsz.coding.batch import (
    METHOD_ADAPTIVE,
    METHOD_CONTEXT,
    METHOD_ZSTD,
    N_CONTEXTS,
    CodeBatch,
    by_table,
)
from srnsz.coding.context_mixing import (
    BINARISATION_1,
    BINARISATION_2,
    BINARISATION_3,
    Binarisation,
    MixingReader,
    RowDeltaReader,
    encode_mixing,
    encode_row_deltas,
)
from srnsz.coding.context_mixing import code_capacity as mixing_capacity
from srnsz.coding.plain import PlainReader, encode_zstd, plain_codes
from srnsz.coding.plain import code_capacity as zstd_capacity
from srnsz.coding.static import StaticReader, encode_static
from srnsz.coding.static import size_lower_bound as static_size_lower_bound
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.parallel import workers
from srnsz.quantizer import CODE_DTYPE

__all__ = ["METHODS", "N_CONTEXTS", "CodeReader", "CodingMethod", "ContextCodeWriter", "code_capacity",
           "coding_methods", "format_minor", "open_substream", "written_binarisation"]
QUICK_ZSTD_LEVEL = 6
# Level 1 first: on the codes of the shared fields level 6 was at most 1.23x smaller than it (234 tables; 237 tables
# and again 1.23x on 2026-12-01), so a level-1 frame above 1.3x the modelled bytes leaves zstd out (zstd never won;
# level 6 came within 4% of the modelled bytes once). A factor of 2.0 would run levels 6 and 19 on 204 of 237 tables.
SCREEN_ZSTD_LEVEL = 1
ZSTD_SCREEN_FACTOR = 1.3
STRONG_ZSTD_LEVEL = 19
# Above 64 KiB of raw codes the strong level was tried 94 times on the shared fields at rel 1e-2..1e-4 and never
# won, for 12% of the compression time with a cap of 4 MiB.
STRONG_ZSTD_MAX_BYTES = 1 << 16
# The static coder is tried only where the entropy of its codes given their contexts is below the mixing bytes plus
# this: on the shared fields that skips it for half its time, where it never won (compress 6% faster)
STATIC_SLACK_BITS = 64
# The context-mixing binarisation new streams use (format 1.7); binarisation 1 (a writer's ``binarisation``, the
# interp option ``binarisation=1``) reproduces the frozen streams of formats 1.2-1.6.
WRITTEN_BINARISATION = BINARISATION_2
SubstreamReader = StaticReader | PlainReader | AdaptiveReader | MixingReader | RowDeltaReader


@dataclass(frozen=True)
class CodingMethod:
    """One coding of a table's codes: its id (a sub-stream's first byte), the stream format minor version that
    introduced it, its encoder of one table's batches (None: read only; it may give None where the method cannot code
    them), its reader (of a sub-stream's bytes and the most codes the caller expects, None: not known; readers that
    unpack a whole sub-stream at once refuse one larger than that), and the most codes a sub-stream of it can hold
    from its header alone (None: no bound)."""

    id: int
    name: str
    format_minor: int
    writer: Callable[[list[CodeBatch]], bytes | None] | None
    reader: Callable[[bytes, int | None], SubstreamReader]
    capacity: Callable[[bytes], int | None]


def _no_bound(body: bytes) -> None:
    """Static and adaptive context coding code a certain symbol in no bytes at all."""
    return None


def _mixing_methods(binarisation: Binarisation, minor: int, row_delta_minor: int | None) -> list[CodingMethod]:
    def mixing(body: bytes, most_codes: int | None = None) -> MixingReader:
        return MixingReader(body, binarisation)  # decodes batch by batch: nothing to unpack at once

    def row_deltas(body: bytes, most_codes: int | None = None) -> RowDeltaReader:
        return RowDeltaReader(body, binarisation)

    found = [CodingMethod(binarisation.method, f"context mixing, binarisation {binarisation.ident}", minor,
                          lambda batches: encode_mixing(batches, binarisation), mixing, mixing_capacity)]
    if row_delta_minor is not None:
        found.append(CodingMethod(binarisation.row_delta_method,
                                  f"row differences, binarisation {binarisation.ident}", row_delta_minor,
                                  lambda batches: encode_row_deltas(batches, binarisation), row_deltas,
                                  mixing_capacity))
    return found


# The registry of coding methods by id: what a reader accepts and which format version a CODE section needs.
METHODS: dict[int, CodingMethod] = {method.id: method for method in [
    CodingMethod(METHOD_CONTEXT, "static context", 0, encode_static, StaticReader, _no_bound),
    CodingMethod(METHOD_ZSTD, "zstd", 0, lambda batches: encode_zstd(*plain_codes(batches), QUICK_ZSTD_LEVEL),
                 PlainReader, zstd_capacity),
    CodingMethod(METHOD_ADAPTIVE, "adaptive context", 1, None, AdaptiveReader, _no_bound),
    *_mixing_methods(BINARISATION_1, 2, 6),
    *_mixing_methods(BINARISATION_2, 7, 7),
    *_mixing_methods(BINARISATION_3, 8, None),
]}
BASE_FORMAT_MINOR = 2  # the version a CODE section of the context-mixing writer needs at least


def written_binarisation(ident: int | None) -> Binarisation:
    """The context-mixing binarisation a writer may be asked for by number (1 or 2; None: WRITTEN_BINARISATION; 3
    is the fast profile's, chosen by ``fast``)."""
    if ident is None:
        return WRITTEN_BINARISATION
    if ident not in (BINARISATION_1.ident, BINARISATION_2.ident):
        raise InvalidInputError(f"binarisation must be 1 or 2, got {ident!r}")
    return BINARISATION_1 if ident == BINARISATION_1.ident else BINARISATION_2


@dataclass
class ContextCodeWriter:
    """Collects code batches; :meth:`finish` returns the coded bytes."""

    batches: list[CodeBatch] = field(default_factory=list)
    row_deltas: bool = False  # may code a table as row differences (METHOD_ROW_DELTAS, format 1.6)
    binarisation: Binarisation | None = None  # of the context mixing; None: WRITTEN_BINARISATION
    fast: bool = False  # every table in binarisation 3 (the fast profile), no other coding tried
    threads: int = 1  # tables coded side by side in this many threads (the same bytes for any)

    def write(self, codes: np.ndarray, contexts: np.ndarray, table: int, detail: np.ndarray | None = None,
              shape: tuple[int, ...] = ()) -> None:
        """Queue ``codes`` (n,) int16 with their ``contexts`` (n,) uint8 (< N_CONTEXTS) and ``detail`` (n,) uint8
        (< N_DETAILS, refines the contexts) under table id ``table``; ``shape`` is their layout (C order, product
        n; () = one line), whose neighbours the context mixing reads."""
        self.batches.append(CodeBatch(codes.astype(CODE_DTYPE, copy=False), contexts, table, detail, shape))

    def mixing(self) -> Binarisation:
        """The context mixing this writer codes with: binarisation 3 if ``fast``, else ``binarisation``."""
        return BINARISATION_3 if self.fast else self.binarisation or WRITTEN_BINARISATION

    def estimated_bytes(self) -> int:
        """What :meth:`finish` would take, give or take the other codings (which rarely win): the
        context-mixing coding, run for real (it is fast). For trial compressions."""
        return sum(len(encode_mixing(mine, self.mixing())) for mine in by_table(self.batches).values())

    def finish(self) -> bytes:
        """One sub-stream per table, each in whichever coding is smaller for it (``fast``: the context mixing)."""
        tables = by_table(self.batches)
        binarisation = self.mixing()

        def coded(mine: list[CodeBatch]) -> bytes:
            mixed = encode_mixing(mine, binarisation)
            return mixed if self.fast else self._smallest(mine, mixed, binarisation)

        # the largest first, so that no thread is left with the longest at the end; the compiled coder, zstd and
        # numpy's large operations release the GIL
        order = sorted(tables, key=lambda table: -sum(b.codes.size for b in tables[table]))
        with workers(max(1, min(self.threads, len(order))), processes=False) as pool:
            done = dict(zip(order, (map if pool is None else pool.map)(coded, (tables[t] for t in order))))
        return b"".join([struct.pack("<I", len(tables)),
                         *(struct.pack("<II", table, len(done[table])) + done[table] for table in tables)])

    def _smallest(self, mine: list[CodeBatch], mixed: bytes, binarisation: Binarisation) -> bytes:
        """The smallest coding of one table's batches ``mine`` whose context mixing gave ``mixed``."""
        # the static coder only where it might be smaller (its payload has a few words of slack at the end)
        may_win = static_size_lower_bound(mine) < 8 * len(mixed) + STATIC_SLACK_BITS
        modelled = min(encode_static(mine), mixed, key=len) if may_win else mixed
        width, raw = plain_codes(mine)
        deltas = encode_row_deltas(mine, binarisation) if self.row_deltas else None
        if deltas is not None and len(deltas) < len(modelled):
            modelled = deltas
        best = modelled
        # zstd's levels only where its fastest one comes within ZSTD_SCREEN_FACTOR of the modelled bytes
        if len(encode_zstd(width, raw, SCREEN_ZSTD_LEVEL)) < ZSTD_SCREEN_FACTOR * len(modelled):
            quick = encode_zstd(width, raw, QUICK_ZSTD_LEVEL)
            best = min(modelled, quick, key=len)
            # The strong zstd level pays on small streams only and gains at most ~30% over the quick one:
            # try it only where it can win.
            if len(raw) <= STRONG_ZSTD_MAX_BYTES and len(quick) < 1.4 * len(modelled):
                best = min(best, encode_zstd(width, raw, STRONG_ZSTD_LEVEL), key=len)
        return best


class CodeReader:
    """Hands back code batches in the order they were written."""

    def __init__(self, payload: bytes, most_codes: int | None = None) -> None:
        """``most_codes``: how many codes the caller can read at most (the field's points), which bounds what a
        table may unpack to (None: no bound)."""
        self._tables: dict[int, SubstreamReader] = {}
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
                self._tables[table] = open_substream(body, most_codes)
        except struct.error:
            raise StreamFormatError("the code section is truncated") from None

    def read(self, contexts: np.ndarray, table: int, detail: np.ndarray | None = None,
             shape: tuple[int, ...] = ()) -> np.ndarray:
        """Codes (n,) int16 of the next batch, whose contexts are ``contexts`` (n,) uint8, details ``detail``
        (n,) uint8 or None and layout ``shape``, as written."""
        if table not in self._tables:
            raise StreamFormatError(f"the code section lacks the codes of level {table}")
        return self._tables[table].read(CodeBatch(np.empty(0, CODE_DTYPE), contexts, table, detail, shape))


def coding_methods(payload: bytes) -> set[int]:
    """The coding methods of the tables of a CODE section written by :class:`ContextCodeWriter`."""
    methods, (n,), pos = set(), struct.unpack_from("<I", payload, 0), 4
    for _ in range(n):
        _, size = struct.unpack_from("<II", payload, pos)
        methods.add(payload[pos + 8])
        pos += 8 + size
    return methods


def code_capacity(payload: bytes) -> int | None:
    """The most codes a CODE section can hold, from its framing and sub-stream headers alone (no decoding), or None
    where a table's method puts no bound on it (methods 1 and 3 code a certain symbol in no bytes at all); a damaged
    framing holds nothing."""
    total, pos = 0, 4
    try:
        (n,) = struct.unpack_from("<I", payload, 0)
        for _ in range(n):
            _, size = struct.unpack_from("<II", payload, pos)
            body = payload[pos + 8:pos + 8 + size]
            pos += 8 + size
            if len(body) != size or size == 0:
                return 0
            method = METHODS.get(body[0])
            if method is None:
                return 0
            capacity = method.capacity(body[1:])
            if capacity is None:
                return None
            total += capacity
    except struct.error:
        return 0
    return total


def format_minor(payload: bytes) -> int | None:
    """The stream format minor version a CODE section written by :class:`ContextCodeWriter` needs (None: 1.2)."""
    needed = max((METHODS[m].format_minor for m in coding_methods(payload) if m in METHODS), default=0)
    return needed if needed > BASE_FORMAT_MINOR else None


def open_substream(body: bytes, most_codes: int | None = None) -> SubstreamReader:
    """The reader of one table's sub-stream (its first byte names the coding method) of at most ``most_codes``
    codes (None: not known)."""
    method = METHODS.get(body[0])
    if method is None:
        raise StreamFormatError(f"the code section uses unknown coding method {body[0]}")
    return method.reader(body[1:], most_codes)
