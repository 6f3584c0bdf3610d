"""Missing values: which points are not data, how they travel in a stream, what the predictors see instead.

Contract. A point is *missing* when it is not finite (NaN, +-Inf), equals a declared fill value (compared in
the data's dtype), lies outside a declared valid range, or equals an undeclared fill found by
:func:`detect_fills`. Missing points come back bit for bit: their mask and their values are coded on the side
(sections ``MASK`` and ``MVAL``). Predictors never see them: before prediction they are replaced by a smooth
extension of the valid values around them (:func:`extend_into_missing`), so a point next to a coast is
predicted as in open water, and the fill value enters no prediction, context, tuning trial or range.
Relative and PSNR bounds, and every metric, are taken over the valid points only.

Undeclared fills (no attribute, no ``fill_value=``): treating a point as missing is always safe (it comes back
exactly, and the range the bound is relative to can only shrink), so the detector leans towards it, but only for
values that cannot be data: a huge extreme value far above the rest, or one that repeats exactly and sits far
outside the rest (see
:func:`detect_fills` for the rule and the borderline cases it leaves alone and reports).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from srnsz.bounds import value_span
from srnsz.coding import lossless
from srnsz.coding.entropy import CodeReader, ContextCodeWriter, written_binarisation
from srnsz.coding.entropy import format_minor as entropy_format_minor
from srnsz.errors import InvalidInputError, StreamFormatError

# An extreme value this large in magnitude, with every other value at most HUGE_SHARE of it in magnitude, is a
# fill (1e20 CMIP, 1e35 FOAM, 9.96921e36 NetCDF default, -1e30 ...); a field of huge values (1e20 and 2e20) is data.
HUGE = 1e15
HUGE_SHARE = 0.1
# Any other repeated extreme value separated from the rest by this many times the rest's span is a fill
# (-999 beside SST in [-1.8, 35]: 27 spans).
GAP_FACTOR = 10.0
# A repeated, integer-valued extreme value (|v| >= 99) at least this many spans away is reported as a likely fill
# but kept as data (-9999 beside values up to 1e4): it lies within the data's own scale.
SUSPECT_GAP = 0.1
MAX_DETECTED = 4
RULE_OPTIONS = ("fill_value", "valid_range", "detect_fills")  # srnsz.compress's arguments for the rule


@dataclass(frozen=True)
class MissingRule:
    """What the user (or the file's attributes) declared missing, besides NaN and Inf.

    fill_values: exact values that mean "no data" (``_FillValue``, ``missing_value``).
    valid_min, valid_max: values outside [valid_min, valid_max] are missing (CF ``valid_range``).
    detect: also look for undeclared fills (:func:`detect_fills`).
    """

    fill_values: tuple[float, ...] = ()
    valid_min: float | None = None
    valid_max: float | None = None
    detect: bool = True

    def __post_init__(self) -> None:
        values = []
        for v in self.fill_values:
            number = _number("fill value", v)
            if math.isfinite(number) and number not in values:  # NaN/Inf are missing anyway
                values.append(number)
        object.__setattr__(self, "fill_values", tuple(values))
        for name in ("valid_min", "valid_max"):
            value = getattr(self, name)
            if value is not None:
                number = _number(name, value)
                if not math.isfinite(number):
                    raise InvalidInputError(f"{name} must be finite, got {value!r}")
                object.__setattr__(self, name, number)
        if self.valid_min is not None and self.valid_max is not None and self.valid_min > self.valid_max:
            raise InvalidInputError(f"valid range [{self.valid_min}, {self.valid_max}] is empty")

    @classmethod
    def of(cls, fill_value: float | Sequence[float] | None = None,
           valid_range: Sequence[float | None] | None = None, detect_fills: bool = True) -> MissingRule:
        """The rule from the user-facing arguments of srnsz.compress (RULE_OPTIONS): one fill value or a list;
        ``valid_range`` = (min, max), either may be None."""
        if fill_value is None:
            fills: tuple = ()
        elif isinstance(fill_value, (str, bytes)) or not isinstance(fill_value, Sequence | np.ndarray):
            fills = (fill_value,)
        else:
            fills = tuple(np.asarray(fill_value).ravel().tolist())
        low = high = None
        if valid_range is not None:
            if isinstance(valid_range, (str, bytes)) or not isinstance(valid_range, Sequence | np.ndarray) or \
                    len(valid_range) != 2:
                raise InvalidInputError(f"valid_range must be (min, max), got {valid_range!r}")
            low, high = valid_range
        return cls(fills, low, high, bool(detect_fills))

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> MissingRule:
        """The rule among compression ``options`` (the RULE_OPTIONS keys; others are ignored)."""
        return cls.of(**{k: options[k] for k in RULE_OPTIONS if k in options})

    def declared_mask(self, data: np.ndarray) -> np.ndarray:
        """True where ``data`` is not finite, equals a fill value or lies outside the valid range."""
        with np.errstate(invalid="ignore"):
            mask = ~np.isfinite(data)
            for value in representable(self.fill_values, data.dtype):
                mask |= data == value
            if self.valid_min is not None:
                mask |= data < self.valid_min
            if self.valid_max is not None:
                mask |= data > self.valid_max
        return mask

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fill_values": list(self.fill_values)}
        if self.valid_min is not None:
            out["valid_min"] = self.valid_min
        if self.valid_max is not None:
            out["valid_max"] = self.valid_max
        return out


def representable(values: Sequence[float], dtype: np.dtype) -> list[Any]:
    """``values`` as ``dtype`` scalars, leaving out those the dtype cannot hold (1e39 in float32 overflows,
    1e-46 becomes 0): no value of the data can equal them."""
    out = []
    with np.errstate(over="ignore", under="ignore"):
        for value in values:
            typed = dtype.type(value)
            if np.isfinite(typed) and (typed == 0) == (value == 0):
                out.append(typed)
    return out


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(f"{name} must be a float64 number, got {value!r}") from None


@dataclass(frozen=True)
class Missing:
    """The missing points of one field.

    mask: bool, the field's shape, True = missing; None when nothing is missing.
    detected: undeclared fill values found in the data (now missing).
    suspects: values that look like fills but were kept as data (see :func:`detect_fills`).
    """

    mask: np.ndarray | None
    detected: tuple[float, ...] = ()
    suspects: tuple[float, ...] = ()

    @property
    def count(self) -> int:
        return 0 if self.mask is None else int(np.count_nonzero(self.mask))


def find_missing(data: np.ndarray, rule: MissingRule, fills: Sequence[float] | None = None) -> Missing:
    """The missing points of ``data`` (float array) under ``rule``: with ``fills`` = None, undeclared fills are
    detected here (when the rule allows); otherwise ``fills`` are the undeclared fills already detected on the
    whole array (chunked compression decides once for every chunk)."""
    mask = rule.declared_mask(data)
    suspects: tuple[float, ...] = ()
    if fills is None:
        fills = ()
        if rule.detect:
            fills, suspects = detect_fills(Extremes.of(data[~mask] if mask.any() else data.ravel()))
    for value in representable(fills, data.dtype):
        mask |= data == value
    return Missing(mask if mask.any() else None, tuple(fills), suspects)


PROFILE_DEPTH = MAX_DETECTED + 2  # distinct extreme values kept per side: enough for every detection step


class Extremes:
    """The distinct extreme values of a set of finite values with their counts: ``top(i)`` is the (i+1)-th
    largest (value, count), ``bottom(i)`` the (i+1)-th smallest, None past the end. Over an array they are
    computed on demand (most fields need two counts); :meth:`merge` combines the profiles of disjoint parts."""

    def __init__(self, values: np.ndarray | None, top: list[tuple[float, int]] | None = None,
                 bottom: list[tuple[float, int]] | None = None) -> None:
        self._values = values
        self._sides = {True: list(top or []), False: list(bottom or [])}
        self._done = {True: values is None, False: values is None}

    @classmethod
    def of(cls, values: np.ndarray) -> Extremes:
        return cls(values.ravel())

    def _entry(self, top: bool, i: int) -> tuple[float, int] | None:
        side = self._sides[top]
        while len(side) <= i and not self._done[top]:
            v = self._values
            if not side:
                if v.size == 0:
                    self._done[top] = True
                    break
                current = v.max() if top else v.min()
            else:
                last = v.dtype.type(side[-1][0])
                current = (np.max(v, where=v < last, initial=-np.inf) if top
                           else np.min(v, where=v > last, initial=np.inf))
                if not np.isfinite(current):
                    self._done[top] = True
                    break
            side.append((float(current), int(np.count_nonzero(v == current))))
        return side[i] if i < len(side) else None

    def top(self, i: int) -> tuple[float, int] | None:
        return self._entry(True, i)

    def bottom(self, i: int) -> tuple[float, int] | None:
        return self._entry(False, i)

    def profile(self) -> Extremes:
        """A list-backed copy holding PROFILE_DEPTH entries per side (the array is not kept)."""
        for i in range(PROFILE_DEPTH):
            self.top(i), self.bottom(i)
        return Extremes(None, self._sides[True][:PROFILE_DEPTH], self._sides[False][:PROFILE_DEPTH])

    def span(self, excluding: Sequence[float] = ()) -> float:
        """max - min (:func:`srnsz.bounds.value_span`) of the values left when those in ``excluding`` (detected
        fills, at most PROFILE_DEPTH - 1 per side) are taken out; 0.0 when none is left."""
        sides = []
        for top in (True, False):
            entries = (self._entry(top, i) for i in range(PROFILE_DEPTH))
            sides.append(next((e[0] for e in entries if e is not None and e[0] not in excluding), None))
        top, bottom = sides
        return value_span(bottom, top) if top is not None and bottom is not None and top >= bottom else 0.0

    def merge(self, other: Extremes) -> Extremes:
        """Profile of the union of two disjoint value sets (both profiles, PROFILE_DEPTH deep)."""
        a, b = self.profile(), other.profile()
        out = []
        for top in (True, False):
            counts: dict[float, int] = {}
            for value, count in a._sides[top] + b._sides[top]:
                counts[value] = counts.get(value, 0) + count
            out.append(sorted(counts.items(), reverse=top)[:PROFILE_DEPTH])
        return Extremes(None, out[0], out[1])


def detect_fills(extremes: Extremes) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(fills, suspects) among a set of finite values (declared fills already out), from its extremes.

    An extreme value (the largest or the smallest) is a fill when it is huge (|v| >= HUGE) and every other value
    is at most HUGE_SHARE of it in magnitude (even once: a single 1e20 would set the range of a relative bound),
    or when it occurs at least twice at least GAP_FACTOR spans away (the span of the rest must be > 0: a
    two-valued field is data). Repeated until no extreme qualifies (at most MAX_DETECTED).
    Borderline, kept as data but returned as suspects: a repeated integer-valued extreme with |v| >= 99 at least
    SUSPECT_GAP spans away (e.g. -9999 beside data in [0, 1e4], which could be a real value of the field).
    """
    fills: list[float] = []
    suspects: list[float] = []
    depth = {True: 0, False: 0}  # extremes already taken as fills, per side
    for _ in range(MAX_DETECTED):
        found = False
        for top in (True, False):
            outer, inner = (extremes.top(depth[top]), extremes.top(depth[top] + 1)) if top else (
                extremes.bottom(depth[top]), extremes.bottom(depth[top] + 1))
            far_end = extremes.bottom(depth[False]) if top else extremes.top(depth[True])
            if outer is None or inner is None or far_end is None:
                continue
            (v, count), edge, other = outer, inner[0], far_end[0]
            if other == v or edge in fills:  # nothing else is left: one value is data, not a fill
                continue
            span, gap = abs(other - edge), abs(v - edge)
            huge = abs(v) >= HUGE and max(abs(edge), abs(other)) <= HUGE_SHARE * abs(v)
            if huge or (count >= 2 and span > 0 and gap >= GAP_FACTOR * span):
                fills.append(v)
                depth[top] += 1
                found = True
                break
            if (count >= 2 and v.is_integer() and abs(v) >= 99 and span > 0 and gap >= SUSPECT_GAP * span
                    and v not in suspects):
                suspects.append(v)
        if not found:
            break
    return tuple(fills), tuple(suspects)


def _halve(x: np.ndarray) -> np.ndarray:
    """Sums over 2x..x2 blocks (odd sizes padded with zeros)."""
    for axis in range(x.ndim):
        n = x.shape[axis]
        if n == 1:
            continue
        if n % 2:
            pad = [(0, 0)] * x.ndim
            pad[axis] = (0, 1)
            x = np.pad(x, pad)
        x = x.reshape(x.shape[:axis] + (x.shape[axis] // 2, 2) + x.shape[axis + 1:]).sum(axis=axis + 1)
    return x


def _double(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour upsampling of a :func:`_halve` result back to ``shape``."""
    for axis, n in enumerate(shape):
        if x.shape[axis] != n:
            x = np.repeat(x, 2, axis=axis)[(slice(None),) * axis + (slice(0, n),)]
    return x


def _smooth(est: np.ndarray, hole: np.ndarray, sweeps: int) -> None:
    """Jacobi sweeps of the discrete Laplace equation on the ``hole`` points of ``est`` (in place)."""
    if est.ndim == 0 or not hole.any():
        return
    for _ in range(sweeps):
        total = np.zeros_like(est)
        count = np.zeros(est.shape)
        for axis in range(est.ndim):
            if est.shape[axis] == 1:
                continue
            lead = (slice(None),) * axis
            total[lead + (slice(1, None),)] += est[lead + (slice(0, -1),)]
            total[lead + (slice(0, -1),)] += est[lead + (slice(1, None),)]
            count[lead + (slice(1, None),)] += 1
            count[lead + (slice(0, -1),)] += 1
        est[hole] = total[hole] / np.maximum(count[hole], 1)


SMOOTHING_SWEEPS = 2


def extend_into_missing(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``data`` with its missing points (``mask``) replaced by a smooth extension of the valid values.

    Push-pull on a pyramid of 2x block means of the valid points (coarsest level where every block has one),
    each finer level taking its holes from the level above and smoothing them with a few Jacobi sweeps of the
    Laplace equation: values that continue the field across a coast, so that valid points next to it are
    predicted well and the extension itself costs few bits. Same shape and dtype as ``data``; the valid points
    are untouched.
    """
    x = np.where(mask, 0.0, data.astype(np.float64))
    w = (~mask).astype(np.float64)
    if not w.any():
        return np.zeros_like(data)
    pyramid = [(x, w)]
    while not pyramid[-1][1].all() and max(pyramid[-1][1].shape) > 1:
        pyramid.append((_halve(pyramid[-1][0]), _halve(pyramid[-1][1])))
    x, w = pyramid[-1]
    est = np.where(w > 0, x / np.where(w > 0, w, 1.0), x.sum() / w.sum())
    for x, w in reversed(pyramid[:-1]):
        hole = w == 0
        est = np.where(hole, _double(est, x.shape), x / np.where(hole, 1.0, w))
        _smooth(est, hole, SMOOTHING_SWEEPS)
    out = data.copy()
    out[mask] = est[mask].astype(data.dtype)
    return out


# First byte of MASK: how the bits were laid out before zstd; of MVAL: how the values were stored. MASK_REPEATED
# (format 1.12): the mask is the same along axis 0 (a land mask over time or levels) and the rest of the section is
# the MASK of one slice, in any layout. Context-mixed whole, the repeats cost ~0.001 bit per point: on cth_pressure
# under the tos land (64 levels of 64 x 128) 306 bytes against 239 for one level, in a stream of 5 KB at rel 1e-2.
MASK_PLAIN, MASK_DELTA, MASK_MIXED, MASK_REPEATED = 0, 1, 2, 3
MASK_REPEATED_FORMAT_MINOR = 12
VALUES_ONE, VALUES_PLANES = 0, 1


def delta_layout(mask: np.ndarray) -> np.ndarray:
    """XOR with the previous slice along the first axis, then with the previous row (second to last axis): a mask
    that repeats along time or depth, or whose rows change little, becomes mostly zeros."""
    out = mask.copy()
    if mask.ndim >= 3:
        out[1:] ^= mask[:-1]
    if mask.ndim >= 2:
        rows = out.copy()
        out[..., 1:, :] ^= rows[..., :-1, :]
    return out


def undo_delta_layout(bits: np.ndarray) -> np.ndarray:
    out = bits
    if out.ndim >= 2:
        out = np.bitwise_xor.accumulate(out, axis=-2)
    if out.ndim >= 3:
        out = np.bitwise_xor.accumulate(out, axis=0)
    return out


def format_minor(sections: dict[str, bytes]) -> int | None:
    """The stream format minor version the MASK section of :func:`encode` needs beyond 1.3 (None: no more)."""
    return _mask_format_minor(sections.get("MASK", b""))


def _mask_format_minor(mask: bytes) -> int | None:
    if mask[:1] == bytes([MASK_REPEATED]):
        return max(MASK_REPEATED_FORMAT_MINOR, _mask_format_minor(mask[1:]) or 0)
    return entropy_format_minor(mask[1:]) if mask[:1] == bytes([MASK_MIXED]) else None


def encode_mask(mask: np.ndarray, binarisation: int | None = None) -> bytes:
    """The MASK section of ``mask``: whichever layout is smallest (see :func:`encode`)."""
    layouts = [bytes([MASK_PLAIN]) + lossless.pack(np.packbits(mask.ravel()).tobytes())]
    if mask.ndim >= 2:
        layouts.append(bytes([MASK_DELTA]) + lossless.pack(np.packbits(delta_layout(mask).ravel()).tobytes()))
    writer = ContextCodeWriter(binarisation=written_binarisation(binarisation))
    writer.write(mask.ravel().astype(np.int16), np.zeros(mask.size, np.uint8), 0, None, mask.shape)
    layouts.append(bytes([MASK_MIXED]) + writer.finish())
    if mask.ndim >= 2 and mask.shape[0] > 1 and (mask == mask[:1]).all():
        layouts.append(bytes([MASK_REPEATED]) + encode_mask(mask[0], binarisation))
    return min(layouts, key=len)  # the first of equal sizes: streams that did not repeat keep their bytes


def decode_mask(section: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The bool mask of ``shape`` a MASK section (:func:`encode_mask`) holds."""
    layout, packed = section[:1], section[1:]
    n = int(np.prod(shape))
    if layout == bytes([MASK_REPEATED]) and len(shape) >= 2:
        return np.broadcast_to(decode_mask(packed, shape[1:]), shape).copy()
    if layout == bytes([MASK_MIXED]):
        codes = CodeReader(packed, n).read(np.zeros(n, np.uint8), 0, None, shape)
        if codes.size != n or not ((codes == 0) | (codes == 1)).all():
            raise StreamFormatError("the missing-value mask does not match the shape")
        return codes.astype(bool).reshape(shape)
    if layout in (bytes([MASK_PLAIN]), bytes([MASK_DELTA])):
        bits = np.frombuffer(lossless.unpack(packed, "missing-value mask", (n + 7) // 8), np.uint8)
        if bits.size != (n + 7) // 8:
            raise StreamFormatError("the missing-value mask does not match the shape")
        mask = np.unpackbits(bits, count=n).astype(bool).reshape(shape)
        return undo_delta_layout(mask) if layout[0] == MASK_DELTA else mask
    raise StreamFormatError("the missing-value mask has an unknown layout")


def encode(mask: np.ndarray, data: np.ndarray, binarisation: int | None = None) -> dict[str, bytes]:
    """Sections ``MASK`` and ``MVAL``.

    MASK: the mask's bits in C order, whichever is smallest of: zstd of the bits, plain or delta-coded
    (:func:`delta_layout`), the bits as codes 0/1 of the context-mixing coder, which reads each bit's neighbours
    along the last three axes (as JBIG does in 2D), or, for a mask the same along axis 0, one slice's MASK. MVAL:
    the missing values in C order, one value when they all have the same bits, else their bytes grouped by
    significance, zstd. ``binarisation``: the context mixing's (:func:`srnsz.coding.entropy.written_binarisation`)."""
    values = np.ascontiguousarray(data[mask], dtype=data.dtype.newbyteorder("<"))
    bits = values.view(f"u{data.itemsize}")
    if bits.size and (bits == bits[0]).all():
        stored = bytes([VALUES_ONE]) + values[:1].tobytes()
    else:
        planes = values.view(np.uint8).reshape(-1, data.itemsize).T
        stored = bytes([VALUES_PLANES]) + lossless.pack(np.ascontiguousarray(planes).tobytes())
    return {"MASK": encode_mask(mask, binarisation), "MVAL": stored}


def decode(sections: dict[str, bytes], shape: tuple[int, ...], dtype: np.dtype,
           count: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask, missing values) from the sections :func:`encode` wrote; ``count`` is the header's point count."""
    if "MASK" not in sections or "MVAL" not in sections:
        raise StreamFormatError("the stream declares missing values but lacks their sections")
    mask = decode_mask(sections["MASK"], shape)
    if int(np.count_nonzero(mask)) != count:
        raise StreamFormatError("the missing values do not match the mask")
    kind, payload = sections["MVAL"][:1], sections["MVAL"][1:]
    little = dtype.newbyteorder("<")
    if kind == bytes([VALUES_ONE]) and len(payload) == dtype.itemsize:
        values = np.repeat(np.frombuffer(payload, little), count)
    elif kind == bytes([VALUES_PLANES]):
        raw = lossless.unpack(payload, "missing values", count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise StreamFormatError("the missing values do not match the mask")
        values = np.ascontiguousarray(np.frombuffer(raw, np.uint8).reshape(dtype.itemsize, count).T).view(little)
    else:
        raise StreamFormatError("the missing values section is corrupted")
    return mask, values.ravel().astype(dtype)
