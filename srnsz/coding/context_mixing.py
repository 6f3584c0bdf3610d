"""Context-mixing binary arithmetic coding of quantization codes, one code at a time (inner loop in C).

Each code is binarised (binarisation 2, format 1.7: nonzero?, magnitude > 1..4 in unary, then escape? and an
Exp-Golomb length and bits, the sign last; binarisation 1, formats 1.2-1.6, read and reproduced: nonzero?, escape?,
sign, magnitude in unary up to UNARY_MAX, then an Exp-Golomb tail), and every binary decision is coded with a
probability mixed (logistic mixing, as in the PAQ/lpaq family) from several adaptive models whose contexts are what
the decoder already has:

- the coarse-neighbour context and the spline-disagreement detail of the point (srnsz.coding.context);
- the codes of the point's causal neighbours *in the same pass*: the previous point along the last, second-to-last
  and third-to-last axis of the batch. A batch coder cannot see those (they are decoded together); a sequential
  coder can, and they carry what zstd finds on smooth fields: runs and repeated rows of equal codes.

The binary coder is the carry-less 32-bit arithmetic coder of lpaq1 (12-bit probabilities). Encoder and decoder
run the same function (srnsz/coding/_mixing.c, compiled when srnsz is installed, called through ctypes), so the
modelling cannot drift apart. Streams are deterministic: integer arithmetic only. (A numba version of the same
loop measured 20% slower and its runtime, LLVM, added ~150 MB to every process.)
"""

from __future__ import annotations

import ctypes
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from srnsz.coding.batch import (
    METHOD_MIXING,
    METHOD_MIXING_2,
    METHOD_MIXING_FAST,
    METHOD_ROW_DELTAS,
    METHOD_ROW_DELTAS_2,
    CodeBatch,
    row_deltas,
    undo_row_deltas,
)
from srnsz.compiled import load_library
from srnsz.errors import SrnszError, StreamFormatError
from srnsz.quantizer import CODE_DTYPE

UNARY_MAX = 16  # magnitudes 1..UNARY_MAX - 1 in unary; larger ones get an Exp-Golomb tail
_TAIL_BITS = 15  # tail bit lengths 0..15 (magnitudes up to 32767; the escape has its own decision)
# decision slots: nonzero, escape, sign, unary steps, tail lengths, tail top bits (a tree of 16 per length)
_TAIL_SLOT = 2 + UNARY_MAX
_LOW_SLOT = _TAIL_SLOT + _TAIL_BITS
N_SLOTS = _LOW_SLOT + (_TAIL_BITS + 1) * 16
_NEIGHBOUR_CLASSES = 11  # unknown, 0, +-1, +-2, +-3..4, +-5.., escape
_EXACT_VALUES = 34  # a neighbour's code itself: unknown, escape, -15..16 (clipped)
N_INPUTS = 8  # mixed models + bias
_LIMIT = 60  # adaptation count cap: rate 1/(n + 1.5) down to ~1/62
_MIX_SHIFT = 16
_MAX_CODE_BYTES = 192  # worst case: 47 decisions, each shifting out at most 4 bytes
_LEARNING_SHIFT = 10  # mixer step: (stretched input * error) >> this


def _stretch_table() -> np.ndarray:
    p = (np.arange(4096) + 0.5) / 4096
    return np.clip(np.rint(np.log(p / (1 - p)) * 256), -2047, 2047).astype(np.int32)


def _squash_table() -> np.ndarray:
    x = np.arange(-2047, 2048) / 256
    return np.clip(np.rint(4096 / (1 + np.exp(-x))), 1, 4095).astype(np.int32)


# Tables the compiled coder reads (passed on every call); the other constants are repeated in _mixing.c.
STRETCH = _stretch_table()
SQUASH = _squash_table()  # index x + 2047
RATE = (65536 / (np.arange(_LIMIT + 1) + 1.5)).astype(np.int64)
_APM_RATE = 6
_APM_WEIGHT = 2  # final probability: (mixed * (4 - w) + refined * w) / 4
# Binarisation 2 (format 1.7): nonzero, the ladder m > 1..LADDER, escape, Exp-Golomb lengths (up to 14), three
# sign slots, the tail's top bits (a tree of 16 per length).
_LADDER = 4
_B2_MAX_LENGTH = 14
_B2_LOW_SLOT = _LADDER + 2 + _B2_MAX_LENGTH + 3
_B2_SKIP_ERROR = 16  # binarisation 2 leaves the mixer as it is after an error within this (of 4096)
_FAST_CONTEXTS = 16 * 8 * 16  # binarisation 3's first model: (coarse context, neighbour magnitude bucket, detail)


@dataclass(frozen=True)
class Binarisation:
    """How a code becomes binary decisions (``ident``: the compiled loop's binarisation) and the model tables that
    follow from it: every decision has a slot; the neighbour models tell the first ``shared_slots - 1`` slots
    apart and share the last among the rest (rare tail decisions)."""

    ident: int
    n_slots: int
    shared_slots: int
    method: int  # the coding method id of its tables
    row_delta_method: int  # the same, coding row differences
    uses_left_up_model: bool  # model 1, (slot, left, up); binarisation 2 leaves it out (model 2 holds its context)
    fast: bool = False  # binarisation 3: two mixed models, no APM (the fast profile)

    @property
    def initial_weight(self) -> int:
        """Every mixer weight at the start (16 fractional bits): the models' average."""
        return 1 << 15 if self.fast else 1 << 14

    @property
    def offsets(self) -> np.ndarray:
        """(8,) int64: where each model's table starts in MixingState.models (and the end)."""
        if self.fast:  # (slot, context, bucket, detail) with one model per tree slot; (shared slot, neighbours)
            sizes = [_B2_LOW_SLOT * _FAST_CONTEXTS + self.n_slots - _B2_LOW_SLOT,
                     self.shared_slots * _NEIGHBOUR_CLASSES ** 3, 0, 0, 0, 0, 0]
            return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        sizes = [self.n_slots * 16 * 16,  # (slot, context, detail)
                 self.shared_slots * _NEIGHBOUR_CLASSES ** 2 * self.uses_left_up_model,  # (slot, left, up)
                 self.shared_slots * _NEIGHBOUR_CLASSES ** 3,  # (slot, left, up, front)
                 self.shared_slots * 16 * _NEIGHBOUR_CLASSES,  # (slot, detail, left)
                 self.shared_slots * 16 * 16,  # (slot, context, neighbour magnitude sum)
                 self.n_slots * _EXACT_VALUES,  # (slot, up code)
                 self.n_slots * _EXACT_VALUES]  # (slot, left code)
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


# Format 1.2-1.6: nonzero, escape, sign, unary up to UNARY_MAX, then an Exp-Golomb tail (up to 47 decisions)
BINARISATION_1 = Binarisation(1, N_SLOTS, _TAIL_SLOT + 2, METHOD_MIXING, METHOD_ROW_DELTAS, True)
# Format 1.7: 3.8 decisions per code instead of 4.7 at rel 1e-3 on the shared fields (8.0 instead of 11.2 at 1e-4),
# six mixed models instead of seven; 0.6-1.4% fewer bytes (geo-mean over the shared fields, rel 1e-2..1e-4)
BINARISATION_2 = Binarisation(2, _B2_LOW_SLOT + (_B2_MAX_LENGTH + 1) * 16, _B2_LOW_SLOT + 1, METHOD_MIXING_2,
                              METHOD_ROW_DELTAS_2, False)
# Format 1.8, the fast profile: binarisation 2's decisions, two mixed models each instead of six and no APM: on the
# shared fields' codes (tune off, cubic) 2-2.4x faster for 4-6% more bytes (geo, rel 1e-2..1e-4). No row differences.
BINARISATION_3 = Binarisation(3, BINARISATION_2.n_slots, BINARISATION_2.shared_slots, METHOD_MIXING_FAST, -1, False,
                              fast=True)
BINARISATIONS = {b.method: b for b in (BINARISATION_1, BINARISATION_2, BINARISATION_3)}
_OFFSETS = BINARISATION_1.offsets


@dataclass
class MixingState:
    """Everything both sides carry from one batch of a table to the next (about 1 MB); :meth:`fresh` gives the
    starting state."""

    models: np.ndarray  # (entries, 2) int32: probability of a 1 (16 bits), times used (capped)
    weights: np.ndarray  # (n_slots * 16, N_INPUTS) int32 mixer weights (16 fractional bits)
    apm: np.ndarray  # (n_slots * 16 * 33,) int32: final refinement per (slot, detail) over 33 stretch buckets
    coder: np.ndarray  # (4,) int64: x1, x2, x (decoder), byte position
    offsets: np.ndarray  # (8,) int64: the models' tables in ``models``

    @classmethod
    def fresh(cls, binarisation: Binarisation) -> MixingState:
        # copies of one template: building the arrays anew cost more than coding a small table
        if binarisation.ident not in _FRESH:
            offsets, sets = binarisation.offsets, binarisation.n_slots * 16
            _FRESH[binarisation.ident] = (
                np.stack([np.full(int(offsets[-1]), 32768, np.int32), np.zeros(int(offsets[-1]), np.int32)], axis=1),
                np.full((sets, N_INPUTS), binarisation.initial_weight, np.int32),
                (np.zeros(1, np.int32) if binarisation.fast  # no APM
                 else np.tile(SQUASH[np.clip(np.arange(33) * 128 - 1, 0, 4094)].astype(np.int32) * 16, sets)),
                np.array([0, 0xFFFFFFFF, 0, 0], np.int64), offsets)
        return cls(*(a.copy() for a in _FRESH[binarisation.ident]))


_FRESH: dict[int, tuple[np.ndarray, ...]] = {}


def _load_kernel() -> ctypes._CFuncPtr:
    """The compiled batch coder (srnsz/coding/_mixing.c, built by ``pip install``), called through ctypes."""
    library = load_library("srnsz.coding._mixing", "srnsz/coding/_mixing.c")
    built = np.zeros(len(_SHARED_CONSTANTS), np.int64)
    library.srnsz_mixing_constants(ctypes.c_void_p(built.ctypes.data))
    if tuple(built) != _SHARED_CONSTANTS:
        raise SrnszError("srnsz's compiled coder was built from another version of srnsz/coding/_mixing.c; reinstall "
                         "srnsz with pip to rebuild it")
    kernel = library.srnsz_code_batch
    p, i = ctypes.c_void_p, ctypes.c_int64
    kernel.argtypes = [ctypes.c_int, ctypes.c_int, p, i, p, p, i, i, p, i, p, p, p, p, i, p, p, p, p, i]
    kernel.restype = i
    return kernel


# The tables come from floating-point log/exp; a libm that rounded one entry differently would write streams
# nobody else can read, so the import refuses to run with other tables.
TABLES_SHA256 = "b6f4b773398ba2bc7e81139edbb57db6b0ee382340a18b9e58e1ee664ab74ce5"


def tables_digest() -> str:
    tables = (STRETCH, SQUASH, RATE, _OFFSETS)
    return hashlib.sha256(b"".join(np.ascontiguousarray(t).astype("<i8").tobytes() for t in tables)).hexdigest()


if tables_digest() != TABLES_SHA256:
    raise SrnszError("the context-mixing tables computed on this platform differ from the format's; streams "
                     "would not be portable. Please report this with your numpy version and platform")
# Every code is at least one binary decision, and each decision keeps at least 1/4096 of the coder's range (12-bit
# probabilities in [1, 4095]), so a byte of output holds at most 8 / log2(4096 / 4095) ~ 22713 decisions (plus fewer
# than 4096 while the carry-less range straddles a byte boundary); this rounds that up, for a check that must never
# refuse a valid stream.
MAX_CODES_PER_BYTE = 1 << 16
BEYOND_RADIUS, PAST_THE_END = -1, -2  # the compiled loop's results when decoding stops early (see _code_batch)
_MODEL_LAYOUT = 2  # MixingState.models is (entries, 2): a model's probability and count share a cache line
# as srnsz_mixing_constants
_SHARED_CONSTANTS = (UNARY_MAX, _TAIL_BITS, _NEIGHBOUR_CLASSES, _EXACT_VALUES, N_INPUTS, _LIMIT, _MIX_SHIFT,
                     _MAX_CODE_BYTES, _LEARNING_SHIFT, _APM_RATE, _APM_WEIGHT, _MODEL_LAYOUT, _LADDER, _B2_MAX_LENGTH,
                     _B2_LOW_SLOT, _B2_SKIP_ERROR, _FAST_CONTEXTS)
_KERNEL = _load_kernel()


def _code_batch(binarisation: Binarisation, encoding: bool, codes: np.ndarray, contexts: np.ndarray,
                details: np.ndarray, n1: int, n2: int, state: MixingState, buf: np.ndarray, start: int) -> int:
    """Code (or decode into ``codes``) one batch laid out as (-1, n1, n2) in C order, from index ``start``;
    returns where it stopped: the end, or (encoding) the first code that might not fit in ``buf``, or (decoding)
    BEYOND_RADIUS for a code beyond the quantizer's radius or PAST_THE_END for a read past the coded bytes, which
    only a damaged stream (or a header claiming more codes than the bytes hold) leads to.
    Arrays must be C-contiguous: int16 codes, uint8 contexts/details, the state's dtypes."""
    return _KERNEL(binarisation.ident, int(encoding), codes.ctypes.data, codes.size, contexts.ctypes.data,
                   details.ctypes.data, n1, n2,
                   state.models.ctypes.data, state.models.shape[0], state.weights.ctypes.data,
                   state.apm.ctypes.data, state.coder.ctypes.data, buf.ctypes.data, buf.size,
                   STRETCH.ctypes.data, SQUASH.ctypes.data, RATE.ctypes.data, state.offsets.ctypes.data, start)


def _uint8(values: np.ndarray | None, size: int) -> np.ndarray:
    """(size,) C-contiguous uint8 (zeros for None), checked: the compiled coder reads ``size`` of them."""
    out = np.zeros(size, np.uint8) if values is None else np.ascontiguousarray(values, np.uint8)
    if out.shape != (size,):
        raise ValueError(f"expected {size} contexts or details, got shape {out.shape}")
    return out


def _layout(shape: tuple[int, ...], size: int) -> tuple[int, int]:
    """(n1, n2): the last two axes of a batch shape (1 where it has fewer; () = one line of ``size``).
    The compiled coder relies on a shape of positive axes whose product is ``size``."""
    dims = tuple(int(n) for n in shape) or (size,)
    if size and (min(dims) < 1 or math.prod(dims) != size):
        raise ValueError(f"a batch of {size} codes cannot have the layout {tuple(shape)}")
    dims = (1, 1, *dims)
    return max(dims[-2], 1), max(dims[-1], 1)


class MixingEncoder:
    """Codes batches of one table in order; :meth:`finish` returns the bytes."""

    def __init__(self, binarisation: Binarisation) -> None:
        self.binarisation = binarisation
        self.state = MixingState.fresh(binarisation)
        self.buf = np.zeros(1 << 16, np.uint8)

    def encode(self, codes: np.ndarray, contexts: np.ndarray, details: np.ndarray | None,
               shape: tuple[int, ...]) -> None:
        """Code ``codes`` (n,) int16 laid out as ``shape`` (C order), with contexts/details (n,) uint8."""
        codes = np.ascontiguousarray(codes, CODE_DTYPE)
        n1, n2 = _layout(shape, codes.size)
        contexts, details = _uint8(contexts, codes.size), _uint8(details, codes.size)
        s = self.state
        done = 0
        while done < codes.size:
            if s.coder[3] + _MAX_CODE_BYTES > self.buf.size:
                self.buf = np.concatenate([self.buf, np.zeros(self.buf.size, np.uint8)])
            done = _code_batch(self.binarisation, True, codes, contexts, details, n1, n2, s, self.buf, done)

    def finish(self) -> bytes:
        x1 = int(self.state.coder[0])
        pos = int(self.state.coder[3])
        return self.buf[:pos].tobytes() + x1.to_bytes(4, "big")


class MixingDecoder:
    """Decodes the batches of one table in the order they were coded."""

    def __init__(self, payload: bytes, binarisation: Binarisation) -> None:
        self.binarisation = binarisation
        self.state = MixingState.fresh(binarisation)
        self.buf = np.frombuffer(payload, np.uint8)  # read only: decoding never writes it
        head = np.zeros(4, np.uint8)
        head[:min(4, self.buf.size)] = self.buf[:4]
        self.state.coder[2] = int.from_bytes(head.tobytes(), "big")

    def decode(self, contexts: np.ndarray, details: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
        """Codes (n,) int16 of the next batch (as :meth:`MixingEncoder.encode` got it)."""
        n1, n2 = _layout(shape, contexts.size)
        codes = np.zeros(contexts.size, CODE_DTYPE)
        contexts, details = _uint8(contexts, codes.size), _uint8(details, codes.size)
        stopped = _code_batch(self.binarisation, False, codes, contexts, details, n1, n2, self.state, self.buf, 0)
        if stopped == BEYOND_RADIUS:
            raise StreamFormatError("the code section is corrupted (a code beyond the quantizer's radius)")
        if stopped == PAST_THE_END:
            raise StreamFormatError("the code section holds fewer codes than the shape needs (damaged, or a header "
                                    "claiming a larger shape)")
        return codes


__all__ = ["BINARISATION_1", "BINARISATION_2", "BINARISATION_3", "BINARISATIONS", "Binarisation", "MixingDecoder",
           "MixingEncoder", "code_capacity"]


def encode_mixing(batches: list[CodeBatch], binarisation: Binarisation = BINARISATION_2) -> bytes:
    """The batches of one table coded by context mixing, behind their method id."""
    encoder = MixingEncoder(binarisation)
    for b in batches:
        encoder.encode(b.codes, b.contexts, b.detail, b.shape)
    return bytes([binarisation.method]) + encoder.finish()


def code_capacity(body: bytes) -> int:
    """The most codes a context-mixing sub-stream of these bytes (after the method byte) can hold."""
    return (len(body) + 4) * MAX_CODES_PER_BYTE


class MixingReader:
    def __init__(self, body: bytes, binarisation: Binarisation) -> None:
        self._decoder = MixingDecoder(body, binarisation)

    def read(self, batch: CodeBatch) -> np.ndarray:
        return self._decoder.decode(batch.contexts, batch.detail, batch.shape)


def encode_row_deltas(batches: list[CodeBatch], binarisation: Binarisation = BINARISATION_2) -> bytes | None:
    """Context mixing of the batches' row differences (binarisation.row_delta_method), or None where a batch has
    none (a difference out of the code range)."""
    deltas = [row_deltas(b) for b in batches]
    if any(d is None for d in deltas):
        return None
    return bytes([binarisation.row_delta_method]) + encode_mixing(deltas, binarisation)[1:]


class RowDeltaReader:
    def __init__(self, body: bytes, binarisation: Binarisation) -> None:
        self._decoder = MixingDecoder(body, binarisation)

    def read(self, batch: CodeBatch) -> np.ndarray:
        return undo_row_deltas(self._decoder.decode(batch.contexts, batch.detail, batch.shape), batch.shape)
