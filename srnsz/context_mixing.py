"""Context-mixing binary arithmetic coding of quantization codes (numba-compiled, one code at a time).

Each code is binarised (zero?, sign, magnitude in unary up to UNARY_MAX, then an Exp-Golomb tail), and every
binary decision is coded with a probability mixed (logistic mixing, as in the PAQ/lpaq family) from several
adaptive models whose contexts are what the decoder already has:

- the coarse-neighbour context and the spline-disagreement detail of the point (srnsz.context);
- the codes of the point's causal neighbours *in the same pass*: the previous point along the last, second-to-last
  and third-to-last axis of the batch. A batch coder cannot see those (they are decoded together); a sequential
  coder can, and they carry what zstd finds on smooth fields: runs and repeated rows of equal codes.

The binary coder is the carry-less 32-bit arithmetic coder of lpaq1 (12-bit probabilities). Encoder and decoder
run the same function, so the modelling cannot drift apart. Streams are deterministic: integer arithmetic only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

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
_MAX_CODE_BYTES = 192  # worst case: 48 decisions, each shifting out at most 4 bytes
_LEARNING_SHIFT = 10  # mixer step: (stretched input * error) >> this


def _stretch_table() -> np.ndarray:
    p = (np.arange(4096) + 0.5) / 4096
    return np.clip(np.rint(np.log(p / (1 - p)) * 256), -2047, 2047).astype(np.int32)


def _squash_table() -> np.ndarray:
    x = np.arange(-2047, 2048) / 256
    return np.clip(np.rint(4096 / (1 + np.exp(-x))), 1, 4095).astype(np.int32)


# Module constants: numba freezes them into the compiled code.
_STRETCH = _stretch_table()
_SQUASH = _squash_table()  # index x + 2047
_RATE = (65536 / (np.arange(_LIMIT + 1) + 1.5)).astype(np.int64)
# The tail decisions are rare: the neighbour models give all tail lengths one slot and all tail bits another.
_SHARED_SLOTS = _TAIL_SLOT + 2
_SIZES = np.array([N_SLOTS * 16 * 16,  # (slot, context, detail)
                   _SHARED_SLOTS * _NEIGHBOUR_CLASSES ** 2,  # (slot, left, up)
                   _SHARED_SLOTS * _NEIGHBOUR_CLASSES ** 3,  # (slot, left, up, front)
                   _SHARED_SLOTS * 16 * _NEIGHBOUR_CLASSES,  # (slot, detail, left)
                   _SHARED_SLOTS * 16 * 16,  # (slot, context, neighbour magnitude sum)
                   N_SLOTS * _EXACT_VALUES,  # (slot, up code)
                   N_SLOTS * _EXACT_VALUES],  # (slot, left code)
                  dtype=np.int64)
_OFFSETS = np.concatenate([[0], np.cumsum(_SIZES)]).astype(np.int64)
_MIXER_SETS = N_SLOTS * 16
_APM_SETS = N_SLOTS * 16
_APM_RATE = 6
_APM_WEIGHT = 2  # final probability: (mixed * (4 - w) + refined * w) / 4


@dataclass
class MixingState:
    """Everything both sides carry from one batch of a table to the next (about 1 MB); :meth:`fresh` gives the
    starting state."""

    models: np.ndarray  # (2, entries) int32: probability of a 1 (16 bits), times used (capped)
    weights: np.ndarray  # (_MIXER_SETS, N_INPUTS) int32 mixer weights (16 fractional bits)
    apm: np.ndarray  # (_APM_SETS * 33,) int32: final refinement per (slot, detail) over 33 stretch buckets
    coder: np.ndarray  # (4,) int64: x1, x2, x (decoder), byte position

    @classmethod
    def fresh(cls) -> MixingState:
        # copies of one template: building the arrays anew cost more than coding a small table
        return cls(*(a.copy() for a in _FRESH))


_FRESH = (np.stack([np.full(int(_OFFSETS[-1]), 32768, np.int32), np.zeros(int(_OFFSETS[-1]), np.int32)]),
          np.full((_MIXER_SETS, N_INPUTS), 1 << 14, np.int32),
          np.tile(_SQUASH[np.clip(np.arange(33) * 128 - 1, 0, 4094)].astype(np.int32) * 16, _APM_SETS),
          np.array([0, 0xFFFFFFFF, 0, 0], np.int64))


@numba.njit(cache=True, inline="always")
def _neighbour_class(code: int) -> int:
    if code == -32768:
        return 10
    m = abs(code)
    if m == 0:
        return 1
    s = 1 if code < 0 else 0
    if m == 1:
        return 2 + s
    if m == 2:
        return 4 + s
    if m <= 4:
        return 6 + s
    return 8 + s


@numba.njit(cache=True, inline="always")
def _exact_class(code: int) -> int:
    if code == -32768:
        return 1
    return 2 + min(max(code, -15), 16) + 15


@numba.njit(cache=True, inline="always")
def _code_bit(encoding: bool, bit: int, p: int, coder: np.ndarray, buf: np.ndarray) -> int:
    """Code (encoding) or decode one binary decision whose 1 has probability p / 4096; returns the bit.
    ``coder``: x1, x2, x (decoder), byte position."""
    x1, x2 = coder[0], coder[1]
    xmid = x1 + ((x2 - x1) >> 12) * p
    if not encoding:
        bit = 1 if coder[2] <= xmid else 0
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    pos = coder[3]
    while ((x1 ^ x2) & 0xFF000000) == 0:
        if encoding:
            if pos < buf.size:
                buf[pos] = x2 >> 24
        else:
            nxt = buf[pos + 4] if pos + 4 < buf.size else 0
            coder[2] = ((coder[2] << 8) & 0xFFFFFFFF) | nxt
        pos += 1
        x1 = (x1 << 8) & 0xFFFFFFFF
        x2 = ((x2 << 8) & 0xFFFFFFFF) | 255
    coder[0], coder[1], coder[3] = x1, x2, pos
    return bit


@numba.njit(cache=True, inline="always")
def _decide(encoding: bool, s: int, bit: int, point: np.ndarray, scratch: np.ndarray, models: np.ndarray,
            weights: np.ndarray, apm: np.ndarray, coder: np.ndarray, buf: np.ndarray) -> int:
    """Code decision slot ``s`` of a point whose contexts are ``point`` = (context, detail, left class, up
    class, front class, neighbour magnitude bucket): mix the models' entries, code the bit, learn from it."""
    nc = _NEIGHBOUR_CLASSES
    a, d, cl, cu, cf, sbucket, eu, el = point[0], point[1], point[2], point[3], point[4], point[5], point[6], point[7]
    idx, st = scratch[0], scratch[1]
    sh = s if s < _TAIL_SLOT else (_TAIL_SLOT if s < _LOW_SLOT else _TAIL_SLOT + 1)
    idx[0] = _OFFSETS[0] + (s * 16 + a) * 16 + d
    idx[1] = _OFFSETS[1] + (sh * nc + cl) * nc + cu
    idx[2] = _OFFSETS[2] + ((sh * nc + cl) * nc + cu) * nc + cf
    idx[3] = _OFFSETS[3] + (sh * 16 + d) * nc + cl
    idx[4] = _OFFSETS[4] + (sh * 16 + a) * 16 + sbucket
    idx[5] = _OFFSETS[5] + s * _EXACT_VALUES + eu
    idx[6] = _OFFSETS[6] + s * _EXACT_VALUES + el
    wset = s * 16 + a
    dot = 0
    for i in range(N_INPUTS - 1):
        st[i] = _STRETCH[models[0, idx[i]] >> 4]
        dot += weights[wset, i] * st[i]
    st[N_INPUTS - 1] = 256  # bias
    dot += weights[wset, N_INPUTS - 1] * 256
    x = min(max(dot >> _MIX_SHIFT, -2047), 2047)
    p = _SQUASH[x + 2047]
    # refine by (slot, detail): interpolate between the two buckets around x
    lo = (s * 16 + d) * 33 + ((x + 2047) >> 7)
    w = (x + 2047) & 127
    refined = (apm[lo] * (128 - w) + apm[lo + 1] * w) >> 11
    final = min(max((p * (4 - _APM_WEIGHT) + refined * _APM_WEIGHT) >> 2, 1), 4095)
    bit = _code_bit(encoding, bit, final, coder, buf)
    near = lo + (w >> 6)
    apm[near] += ((bit << 16) - apm[near]) >> _APM_RATE
    # learn: the mixer towards the outcome, every model entry at its own count-based rate
    err = (bit << 12) - p
    for i in range(N_INPUTS):
        weights[wset, i] += (st[i] * err) >> _LEARNING_SHIFT
    target = bit << 16
    for i in range(N_INPUTS - 1):
        j = idx[i]
        n = models[1, j]
        models[0, j] = min(max(models[0, j] + (((target - models[0, j]) * _RATE[n]) >> 16), 16), 65520)
        if n < _LIMIT:
            models[1, j] = n + 1
    return bit


@numba.njit(cache=True)
def _code_batch(encoding: bool, codes: np.ndarray, contexts: np.ndarray, details: np.ndarray, n1: int, n2: int,
                models: np.ndarray, weights: np.ndarray, apm: np.ndarray, coder: np.ndarray, buf: np.ndarray,
                start: int) -> int:
    """Code (or decode into ``codes``) one batch laid out as (-1, n1, n2) in C order, from index ``start``;
    returns where it stopped: the end, or (encoding) the first code that might not fit in ``buf``."""
    point = np.empty(8, np.int64)
    scratch = np.empty((2, N_INPUTS), np.int64)
    plane = n1 * n2
    for t in range(start, codes.size):
        if encoding and coder[3] + _MAX_CODE_BYTES > buf.size:
            return t
        i2 = t % n2
        i1 = (t // n2) % n1
        left = int(codes[t - 1]) if i2 > 0 else 0
        up = int(codes[t - n2]) if i1 > 0 else 0
        front = int(codes[t - plane]) if t >= plane else 0
        total = min(abs(left), 64) + min(abs(up), 64) + min(abs(front), 64)
        bucket = 0
        while total > 0:
            bucket += 1
            total >>= 1
        point[0] = contexts[t] & 15
        point[1] = details[t] & 15
        point[2] = _neighbour_class(left) if i2 > 0 else 0
        point[3] = _neighbour_class(up) if i1 > 0 else 0
        point[4] = _neighbour_class(front) if t >= plane else 0
        point[5] = bucket
        point[6] = _exact_class(up) if i1 > 0 else 0
        point[7] = _exact_class(left) if i2 > 0 else 0
        value = int(codes[t]) if encoding else 0
        magnitude = abs(value)
        m = 0
        if _decide(encoding, 0, 1 if magnitude else 0, point, scratch, models, weights, apm, coder, buf):
            if _decide(encoding, 1, 1 if value == -32768 else 0, point, scratch, models, weights, apm, coder, buf):
                m = -32768
            else:
                negative = _decide(encoding, 2, 1 if value < 0 else 0, point, scratch, models, weights, apm, coder, buf)
                m = 1
                while m < UNARY_MAX and _decide(encoding, 2 + m, 1 if magnitude > m else 0, point, scratch, models,
                                                weights, apm, coder, buf):
                    m += 1
                if m == UNARY_MAX:  # tail r = magnitude - UNARY_MAX: its bit length in unary, then its bits
                    r = magnitude - UNARY_MAX if encoding else 0
                    length = 0
                    while (r >> length) > 0:
                        length += 1
                    nbits = 0
                    while nbits < _TAIL_BITS and _decide(encoding, _TAIL_SLOT + nbits, 1 if length > nbits else 0,
                                                         point, scratch, models, weights, apm, coder, buf):
                        nbits += 1
                    rec = 1 if nbits > 0 else 0
                    for k in range(nbits - 2, -1, -1):
                        if rec < 16:  # the top bits by a tree of contexts, the rest at even odds
                            bit = _decide(encoding, _LOW_SLOT + nbits * 16 + rec, (r >> k) & 1, point, scratch,
                                          models, weights, apm, coder, buf)
                        else:
                            bit = _code_bit(encoding, (r >> k) & 1, 2048, coder, buf)
                        rec = (rec << 1) | bit
                    m = UNARY_MAX + rec
                if negative:
                    m = -m
        if not encoding:
            codes[t] = m
    return codes.size


def _layout(shape: tuple[int, ...], size: int) -> tuple[int, int]:
    """(n1, n2): the last two axes of a batch shape (1 where it has fewer; () = one line of ``size``)."""
    dims = (1, 1, *(shape or (size,)))
    return int(dims[-2]), int(dims[-1])


class MixingEncoder:
    """Codes batches of one table in order; :meth:`finish` returns the bytes."""

    def __init__(self) -> None:
        self.state = MixingState.fresh()
        self.buf = np.zeros(1 << 16, np.uint8)

    def encode(self, codes: np.ndarray, contexts: np.ndarray, details: np.ndarray | None,
               shape: tuple[int, ...]) -> None:
        """Code ``codes`` (n,) int16 laid out as ``shape`` (C order), with contexts/details (n,) uint8."""
        codes = np.ascontiguousarray(codes, CODE_DTYPE)
        n1, n2 = _layout(shape, codes.size)
        details = np.zeros(codes.size, np.uint8) if details is None else details
        s = self.state
        done = 0
        while done < codes.size:
            if s.coder[3] + _MAX_CODE_BYTES > self.buf.size:
                self.buf = np.concatenate([self.buf, np.zeros(self.buf.size, np.uint8)])
            done = _code_batch(True, codes, contexts, details, n1, n2, s.models, s.weights, s.apm, s.coder,
                               self.buf, done)

    def finish(self) -> bytes:
        x1 = int(self.state.coder[0])
        pos = int(self.state.coder[3])
        return self.buf[:pos].tobytes() + x1.to_bytes(4, "big")


class MixingDecoder:
    """Decodes the batches of one table in the order they were coded."""

    def __init__(self, payload: bytes) -> None:
        self.state = MixingState.fresh()
        self.buf = np.frombuffer(payload, np.uint8).copy()  # writable: one compiled function codes both ways
        head = np.zeros(4, np.uint8)
        head[:min(4, self.buf.size)] = self.buf[:4]
        self.state.coder[2] = int.from_bytes(head.tobytes(), "big")

    def decode(self, contexts: np.ndarray, details: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
        """Codes (n,) int16 of the next batch (as :meth:`MixingEncoder.encode` got it)."""
        n1, n2 = _layout(shape, contexts.size)
        codes = np.zeros(contexts.size, CODE_DTYPE)
        details = np.zeros(codes.size, np.uint8) if details is None else details
        s = self.state
        _code_batch(False, codes, contexts, details, n1, n2, s.models, s.weights, s.apm, s.coder, self.buf, 0)
        return codes


def load_compiled() -> None:
    """Load the compiled coder now (its first use otherwise pays the loading: ~0.5 s and ~45 MB of runtime)."""
    encoder = MixingEncoder()
    encoder.encode(np.arange(-3, 3, dtype=CODE_DTYPE), np.zeros(6, np.uint8), None, (2, 3))
    MixingDecoder(encoder.finish()).decode(np.zeros(6, np.uint8), None, (2, 3))


__all__ = ["MixingDecoder", "MixingEncoder", "load_compiled"]
