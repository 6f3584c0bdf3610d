"""Parts of a field coded apart (format 1.11): slabs along the slowest axis, decided by the shape alone.

Contract: :func:`part_starts` depends on the field's shape and nothing else (never on the thread count or the
machine), so a stream is the same bytes however many workers code its parts. A field of fewer than
``2 * PART_POINTS`` values, or too thin along axis 0 for two slabs of ``PART_ALIGN`` planes, is one part: its
stream is the single-part stream of before. Larger fields are cut into about ``values // PART_POINTS`` slabs of
equal thickness (a multiple of ``PART_ALIGN``; the last takes the rest, half to one and a half slabs), each coded
as a stream of its own (own anchors, tuning and coder state) that its decoder can run beside the others.

The cost in ratio is the slabs' edges (a spline near a cut sees one side only) and each coder's learning: on a
64 MB generated field at rel 1e-3 (benchmarks/speed.py --scaling), 4 slabs were 0.18% larger than one stream, 8
slabs 0.43%; the 256 MB one 0.16% in 4 slabs of 64 planes, 0.36% in 8 of 32.
"""

from __future__ import annotations

import math

# Values per part (8 MB of float32). Parts differ in cost (each tunes its own options: on a 64 MB field one of four
# parts decoded 5x faster than the others, its finest levels static-coded), so more parts balance the threads better:
# 4 parts of 4M values decoded 1.52x faster on two threads, 8 parts of 2M 1.70-1.93x, for 0.18% and 0.43% more bytes.
PART_POINTS = 1 << 21
PART_ALIGN = 32  # slab thickness is a multiple of the 3D anchor stride


def _slabs(shape: tuple[int, ...]) -> range:
    count = min(math.prod(shape) // PART_POINTS, shape[0] // PART_ALIGN)
    if count < 2:
        return range(1)
    thickness = PART_ALIGN * (shape[0] // PART_ALIGN // count)
    return range(0, shape[0] - thickness // 2, thickness)  # a tail under half a slab joins the last


def part_count(shape: tuple[int, ...]) -> int:
    """How many parts a field of ``shape`` has (without listing them: a damaged header's shape may be huge)."""
    return len(_slabs(shape))


def part_starts(shape: tuple[int, ...]) -> list[int]:
    """First index along axis 0 of each part of a field of ``shape`` ([0]: one part)."""
    return list(_slabs(shape))


def part_keys(shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The index of each part of a field of ``shape`` (slabs along axis 0, in order)."""
    starts = part_starts(shape)
    ends = [*starts[1:], shape[0]]
    return [(slice(a, b), *(slice(0, n) for n in shape[1:])) for a, b in zip(starts, ends)]
