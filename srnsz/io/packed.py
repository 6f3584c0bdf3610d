"""CF-packed variables (integers p standing for p * scale_factor + add_offset): compressed so that the bound holds
on what CF readers unpack from the re-packed file, in each reader's own arithmetic. Floating-point variables with
scale_factor/add_offset (:func:`float_scaling`) are compressed as stored, under the bound on the stored values that
keeps the readers' values within the one asked (:func:`stored_bound`).

srnsz compresses the unpacked floats and, writing a file back, packs the reconstruction again (srnsz.io.cf.repack:
the nearest integer). Within k whole steps of the original that gives integers within k of it, but a reader's
unpacking rounds: p * s + o in float64 stretches k steps by a few ulps, in float32 (xarray and netCDF4-python with
float32 factors) by up to an ulp of the values, a few per cent of a step for ERA5's temperatures. So the number of
steps is chosen on the readers' values of every valid integer moved by +-k (monotone in k, so every smaller move
is within it too), the stream states the largest of those errors (never more than asked), and the finished stream is
decoded, re-packed and checked in every reader's arithmetic before it is handed out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from srnsz import api
from srnsz.bounds import ErrorBound
from srnsz.errors import SrnszError
from srnsz.io.cf import CFField, VariableMeta, attr_numbers, repack, repack_limits

# A scaled float variable's readers round p * scale_factor + add_offset once or twice each, so two readers' values
# of stored floats within e / |scale_factor| are within e plus a few ulps of the largest of them: that many.
READER_ULPS = 4

# Under one step the packed integers must come back exactly: the quantizer's bound (plus the unpacked floats' own
# rounding) stays below half a step, so the nearest integer to every reconstruction is the original.
EXACT_FRACTION = 0.499


@dataclass(frozen=True)
class PackedStream:
    """A packed variable's stream: ``eb``, the bound it states and every reader's unpacked values hold, and
    ``steps``, how far (in integers) a re-packed valid value can be from the original."""

    stream: bytes
    eb: float
    steps: int


def reader_values(packed: np.ndarray, attrs: dict[str, Any]) -> list[np.ndarray]:
    """The floats CF readers unpack from integers ``packed`` given the variable's ``attrs``: netCDF4-python's
    (``p * scale_factor + add_offset`` in NumPy's promotion of the attributes' own types), xarray's (its own
    decoding, where installed) and float64 arithmetic (``p * s + o`` in double, as the CF conventions write it)."""
    scale, offset = attrs.get("scale_factor"), attrs.get("add_offset")
    typed = packed
    if scale is not None:
        typed = typed * np.asarray(scale)[()]
    if offset is not None:
        typed = typed + np.asarray(offset)[()]
    double = packed.astype(np.float64) * float(np.asarray(scale if scale is not None else 1.0)) + float(
        np.asarray(offset if offset is not None else 0.0))
    values = [np.asarray(typed), double]
    try:
        import xarray as xr
    except ImportError:
        return values
    # the fill attributes too: with them xarray chooses the float type in its masking step
    kept = {k: v for k, v in attrs.items() if k in ("scale_factor", "add_offset", "_FillValue", "missing_value")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "multiple fill values": none of them is among these integers
        values.append(np.asarray(xr.conventions.decode_cf_variable("v", xr.Variable(("n",), packed, kept)).values))
    return values


def reader_error(original: np.ndarray, moved: np.ndarray, attrs: dict[str, Any]) -> float:
    """The largest |R(moved) - R(original)| over the readers R of :func:`reader_values`, each difference taken both
    in the reader's own type (as a user's ``abs(a - b)`` would) and in float64."""
    worst = 0.0
    for before, after in zip(reader_values(original, attrs), reader_values(moved, attrs)):
        if before.size:
            own = float(np.abs(after - before).max())
            double = float(np.abs(after.astype(np.float64) - before.astype(np.float64)).max())
            worst = max(worst, own, double)
    return worst


def _moved_error(valid: np.ndarray, steps: int, meta: VariableMeta) -> float:
    """The readers' worst error over the valid integers moved by +-``steps`` (clipped as re-packing clips)."""
    low, high = repack_limits(meta)
    # 64-bit integers moved by up to their whole span overflow int64: Python integers there
    wide = valid.astype(np.int64 if valid.dtype.itemsize < 8 else object)
    dtype = valid.dtype
    return max(reader_error(valid, np.clip(wide + sign * steps, low, high).astype(dtype), meta.attrs)
               for sign in (-1, 1))


def compress_packed(source: CFField, requested: float, compress: Callable[[float], bytes]) -> PackedStream:
    """The stream of packed variable ``source`` (its floats unpacked, its integers in ``source.packed``) for an
    absolute bound ``requested`` on the unpacked values; ``compress(eb)`` compresses ``source.data`` at absolute
    bound ``eb``. See the module's description; a stream that fails the final check is never returned."""
    meta = source.meta
    if meta is None or meta.packing is None or source.packed is None:
        raise SrnszError("internal error: compress_packed needs a packed variable read with its integers")
    step = meta.packing.step
    valid_points = np.isfinite(source.data)
    original = np.ascontiguousarray(source.packed)
    valid = original[valid_points]
    exact = valid.astype(np.float64) * meta.packing.scale_factor + meta.packing.add_offset
    drift = float(np.abs(source.data[valid_points].astype(np.float64) - exact).max(initial=0.0))
    low, high = repack_limits(meta)
    # a move of the span already lets every integer go anywhere; a tiny step would otherwise ask for more steps
    # than any integer type holds
    steps = math.floor(min(requested / step, high - low)) if requested > 0 else 0  # requested / step may be inf
    while steps >= 1 and steps * step > requested:
        steps -= 1
    while True:
        if steps >= 1:
            worst = _moved_error(valid, steps, meta)
            if worst > requested:
                steps -= 1
                continue
            eb = max(steps * step, worst)
        else:
            # the unpacked floats themselves are off their integers' values by up to ``drift`` (float32 rounding)
            eb = max(0.0, min(requested, EXACT_FRACTION * step - drift))
        stream = compress(eb)
        back = repack(api.decompress(stream), meta)
        kept = np.array_equal(back[~valid_points], original[~valid_points])
        if kept and reader_error(valid, back[valid_points], meta.attrs) <= eb:
            return PackedStream(stream, eb, steps)
        if steps == 0:
            raise SrnszError(f"internal error: the re-packed values of {meta.name!r} break the bound; please report "
                             "this")
        steps -= 1  # the reconstruction's rounding reached another integer: one step less


def float_scaling(dtype: np.dtype, attrs: dict[str, Any]) -> tuple[float, float] | None:
    """(scale_factor, add_offset) of a floating-point variable whose CF readers scale its stored values (either
    attribute present and not the identity; a scale_factor of 0 leaves nothing to bound), else None."""
    if np.dtype(dtype).kind != "f":
        return None
    scales, offsets = attr_numbers(attrs, "scale_factor"), attr_numbers(attrs, "add_offset")
    scale, offset = (scales or [1.0])[0], (offsets or [0.0])[0]
    return None if scale == 0 or (scale, offset) == (1.0, 0.0) else (scale, offset)


def reader_precision(dtype: np.dtype, attrs: dict[str, Any]) -> type:
    """The least precise float type a CF reader may unpack a variable of ``dtype`` in: float32 where the stored
    values or the scale_factor / add_offset attributes are float32 (xarray computes in the attributes' type), else
    float64."""
    types = [np.dtype(dtype)] + [np.asarray(attrs[k]).dtype for k in ("scale_factor", "add_offset") if k in attrs]
    return np.float32 if any(t.kind == "f" and t.itemsize <= 4 for t in types) else np.float64


def stored_bound(bound: ErrorBound, stored: np.ndarray, missing: np.ndarray | None, attrs: dict[str, Any]
                 ) -> tuple[float, float]:
    """(the bound on the values readers see, the abs bound on the stored values that keeps them within it) for a
    float variable whose attributes ``attrs`` scale it (:func:`float_scaling` is not None) and whose ``missing``
    points (bool mask, None: none) are not data: ``bound`` resolved on the readers' values, divided by
    |scale_factor|, less READER_ULPS ulps (in :func:`reader_precision`) of the largest value a reader can see; 0
    (the stored values kept exactly) where nothing is left."""
    scaling = float_scaling(stored.dtype, attrs)
    if scaling is None:
        raise SrnszError("internal error: stored_bound needs a scaled floating-point variable")
    scale, offset = scaling
    unpacked = stored.astype(np.float64) * scale + offset
    requested = bound.resolve(unpacked, missing)
    finite = np.isfinite(unpacked) if missing is None else np.isfinite(unpacked) & ~missing
    top = float(np.abs(unpacked[finite]).max(initial=0.0)) + abs(offset) + requested
    with np.errstate(over="ignore"):
        ulp = float(np.spacing(reader_precision(stored.dtype, attrs)(top)))
    return requested, max(0.0, (requested - READER_ULPS * ulp) / abs(scale))
