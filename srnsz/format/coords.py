"""A variable's 2-D (and larger) floating-point coordinates coded as srnsz streams within a tight bound of their own
(stream format 1.10, section ``VCRS``), instead of stored raw.

A curvilinear grid's latitude and longitude are as large as the field itself and, stored raw, made most of a
single-variable stream (POP's urot: 341 of 366 KB). They are smooth fields: the interp predictor codes them in a
few bits per hundred values at a bound of ``COORD_FRACTION`` of the grid's typical spacing (the median step along the
axis where the coordinate changes most; 1e-4 of a 1-degree cell is about 11 m). A longitude that wraps (degrees east,
jumping by 360 at a seam) is coded unwrapped, with the whole turns to take off (a piecewise-constant integer map,
zstd) beside it: a seam costs an escaped value per point near it otherwise. Every coded coordinate is decoded and
checked against its bound before it goes in; one that fails (or that has no spacing to speak of) is stored raw.
1-D coordinates, integer and string ones, and small ones (under ``MIN_CODED_VALUES``) stay raw and exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from srnsz.coding import lossless
from srnsz.errors import StreamFormatError

COORD_FRACTION = 1e-4
MIN_CODED_VALUES = 4096
FORMAT_MINOR = 10  # streams with a VCRS section are format 1.10
SECTION = "VCRS"
PERIOD = 360.0  # a longitude's turn, in degrees
LONGITUDE_UNITS = ("degrees_east", "degree_east", "degrees_e", "degree_e", "degreese", "degreee")
TURNS_DTYPE = np.dtype("<i2")


@dataclass(frozen=True)
class CoordinateCodec:
    """How coordinates are coded: ``compress(values, eb)`` -> a stream whose values are within ``eb`` (absolute),
    ``decompress(stream)`` -> the values (srnsz.compress / srnsz.decompress, given by srnsz.api)."""

    compress: Callable[[np.ndarray, float], bytes]
    decompress: Callable[[bytes], np.ndarray]


def codable(values: np.ndarray) -> bool:
    """Whether a coordinate is coded rather than stored raw: float32/float64, 2 to 4 dimensions, at least
    MIN_CODED_VALUES values."""
    return (values.dtype.kind == "f" and values.dtype.itemsize in (4, 8) and 2 <= values.ndim <= 4
            and values.size >= MIN_CODED_VALUES)


def is_longitude(attrs: dict[str, Any]) -> bool:
    """A coordinate in degrees east (by its units or standard name), whose values wrap every 360."""
    units = str(attrs.get("units", "")).strip().lower()
    return units in LONGITUDE_UNITS or str(attrs.get("standard_name", "")).strip() in ("longitude", "grid_longitude")


def coordinate_bound(values: np.ndarray) -> float:
    """COORD_FRACTION of the typical spacing: the largest over the axes of the median |step| along it (finite steps
    only); 0 when there is none."""
    spacings = []
    for axis in range(values.ndim):
        if values.shape[axis] > 1:
            steps = np.abs(np.diff(values.astype(np.float64), axis=axis))
            steps = steps[np.isfinite(steps)]
            if steps.size:
                spacings.append(float(np.median(steps)))
    spacing = max(spacings, default=0.0)
    return COORD_FRACTION * spacing if np.isfinite(spacing) and spacing > 0 else 0.0


def _turns(values: np.ndarray) -> np.ndarray | None:
    """The whole turns (of PERIOD) that unwrapping adds to each value along every axis, or None where it adds none
    (or cannot: non-finite values, or more turns than int16 holds)."""
    if not np.isfinite(values).all():
        return None
    unwrapped = values.astype(np.float64)
    for axis in range(values.ndim - 1, -1, -1):
        unwrapped = np.unwrap(unwrapped, period=PERIOD, axis=axis)
    turns = np.rint((unwrapped - values) / PERIOD)
    if not turns.any() or np.abs(turns).max() > np.iinfo(TURNS_DTYPE).max:
        return None
    return turns.astype(TURNS_DTYPE)


def _unwrapped(values: np.ndarray, turns: np.ndarray) -> np.ndarray:
    return (values.astype(np.float64) + PERIOD * turns).astype(values.dtype)


def _wrapped(decoded: np.ndarray, turns: np.ndarray) -> np.ndarray:
    return (decoded.astype(np.float64) - PERIOD * turns).astype(decoded.dtype)


@dataclass(frozen=True)
class CodedCoordinate:
    """A coordinate's stream, the bound its values hold, and (a wrapping longitude) its turns map, zstd."""

    stream: bytes
    eb: float
    turns: bytes | None = None


def encode(values: np.ndarray, attrs: dict[str, Any], codec: CoordinateCodec) -> CodedCoordinate | None:
    """The coordinate coded (see the module's description), or None when it is better stored raw."""
    if not codable(values):
        return None
    eb = coordinate_bound(values)
    if eb <= 0:
        return None
    turns = _turns(values) if is_longitude(attrs) else None
    target = values if turns is None else _unwrapped(values, turns)
    # the unwrapping and wrapping round (to the values' type): keep that out of the bound the stream holds
    slack = 0.0 if turns is None else 4 * float(np.spacing(np.abs(target).max().astype(values.dtype)))
    if eb <= slack:
        return None
    stream = codec.compress(target, eb - slack)
    coded = CodedCoordinate(stream, eb, None if turns is None else lossless.pack(turns.tobytes()))
    back = decode(coded, values.dtype, values.shape, codec)
    finite = np.isfinite(values)
    exact = np.array_equal(back[~finite].view(f"u{values.itemsize}"), values[~finite].view(f"u{values.itemsize}"))
    if not exact or np.abs(back[finite].astype(np.float64) - values[finite]).max(initial=0.0) > eb:
        return None
    return coded


def decode(coded: CodedCoordinate, dtype: np.dtype, shape: tuple[int, ...], codec: CoordinateCodec) -> np.ndarray:
    """The coordinate's values from :func:`encode`'s result (dtype and shape as recorded, checked)."""
    values = codec.decompress(coded.stream)
    if values.dtype != dtype or values.shape != tuple(shape):
        raise StreamFormatError(f"a coded coordinate holds {values.dtype} {values.shape}, its record says {dtype} "
                                f"{tuple(shape)}")
    if coded.turns is None:
        return values
    turns = np.frombuffer(lossless.unpack(coded.turns, "coordinate turns", values.size * TURNS_DTYPE.itemsize),
                          TURNS_DTYPE)
    if turns.size != values.size:
        raise StreamFormatError("a coordinate's turns do not match its shape")
    return _wrapped(values, turns.reshape(values.shape))
