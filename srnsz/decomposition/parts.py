"""Parts of a field coded apart (format 1.11): slabs along the slowest axis, decided by the shape and a layout.

Contract: :func:`part_starts` depends on the field's shape and the :class:`PartLayout` (default
:data:`DEFAULT_LAYOUT`) and nothing else (never on the thread count or the machine), so a stream is the same bytes
however many workers code its parts. A field of fewer than ``2 * points`` values, or too thin along axis 0 for two
slabs of ``align`` planes, is one part: its stream is the single-part stream of before. Larger fields are cut into
about ``values // points`` slabs of equal thickness (a multiple of ``align``; the last takes the rest, half to one
and a half slabs), each coded as a stream of its own (own anchors, tuning and coder state) that its decoder can run
beside the others. The stream records where the slabs start; a decoder follows that record.

The cost in ratio is the slabs' edges (a spline near a cut sees one side only) and each coder's learning: on a
64 MB generated field at rel 1e-3 (benchmarks/speed.py --scaling), 4 slabs were 0.18% larger than one stream, 8
slabs 0.43%; the 256 MB one 0.16% in 4 slabs of 64 planes, 0.36% in 8 of 32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PartLayout:
    """How large fields are cut: parts of about ``points`` values, in slabs whose thickness is a multiple of
    ``align`` planes. The stream records the cut, so a stream of any layout decodes anywhere."""

    # Values per part (8 MB of float32). Parts differ in cost (each tunes its own options: on a 64 MB field one of
    # four parts decoded 5x faster than the others, its finest levels static-coded), so more parts balance the
    # threads better: 4 parts of 4M values decoded 1.52x faster on two threads, 8 parts of 2M 1.70-1.93x, for 0.18%
    # and 0.43% more bytes.
    points: int = 1 << 21
    align: int = 32  # slab thickness is a multiple of the 3D anchor stride

    def __post_init__(self) -> None:
        if not (isinstance(self.points, int) and isinstance(self.align, int) and self.points >= 1
                and self.align >= 1):
            raise ValueError(f"a part layout needs whole points >= 1 and align >= 1, not {self}")

    def slabs(self, shape: tuple[int, ...]) -> range:
        """First index along axis 0 of each slab of a field of ``shape`` (a lazy range: a damaged header's shape
        may be huge)."""
        count = min(math.prod(shape) // self.points, shape[0] // self.align)
        if count < 2:
            return range(1)
        thickness = self.align * (shape[0] // self.align // count)
        return range(0, shape[0] - thickness // 2, thickness)  # a tail under half a slab joins the last


DEFAULT_LAYOUT = PartLayout()


def part_starts(shape: tuple[int, ...], layout: PartLayout = DEFAULT_LAYOUT) -> list[int]:
    """First index along axis 0 of each part of a field of ``shape`` ([0]: one part)."""
    return list(layout.slabs(shape))


def keys_of(starts: list[int], shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The index of each part of a field of ``shape`` whose slabs along axis 0 begin at ``starts``."""
    ends = [*starts[1:], shape[0]]
    return [(slice(a, b), *(slice(0, n) for n in shape[1:])) for a, b in zip(starts, ends)]


def part_keys(shape: tuple[int, ...], layout: PartLayout = DEFAULT_LAYOUT) -> list[tuple[slice, ...]]:
    """The index of each part of a field of ``shape`` (slabs along axis 0, in order)."""
    return keys_of(part_starts(shape, layout), shape)


def valid_starts(starts: object, shape: tuple[int, ...]) -> bool:
    """Whether ``starts`` (read from a stream) cut a field of ``shape`` into two or more slabs along axis 0."""
    return (isinstance(starts, list) and 2 <= len(starts) <= shape[0] and starts[0] == 0
            and all(type(s) is int for s in starts) and all(a < b for a, b in zip(starts, starts[1:]))
            and starts[-1] < shape[0])
