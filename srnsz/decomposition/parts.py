"""Parts of a field coded apart (format 1.11): slabs along the slowest axis, decided by the shape, a layout and the
stream's estimated size.

Contract: :func:`part_starts` depends on the field's shape, the :class:`PartLayout` (default :data:`DEFAULT_LAYOUT`)
and at most a number of parts the writer allows (from an estimate of the stream's size, made on the data), never on
the thread count or the machine, so a stream is the same bytes however many workers code its parts. A field of fewer
than ``2 * points`` values, or too thin along axis 0 for two slabs of ``align`` planes, is one part: its stream is
the single-part stream of before. Larger fields are cut into about ``values // points`` slabs of equal thickness (a
multiple of ``align``; the last takes the rest, half to one and a half slabs), but no more than
:meth:`PartLayout.parts_for_bytes` of the stream's estimated size, each coded as a stream of its own (own anchors,
tuning and coder state) that its decoder can run beside the others. The stream records where the slabs start; a
decoder follows that record.

The cost in ratio is the slabs' edges (a spline near a cut sees one side only, the coarse levels most) and each
coder's learning, some 2-5 KB a part whatever its size: on a 64 MB generated field at rel 1e-3
(benchmarks/speed.py --scaling), 4 slabs were 0.18% larger than one stream, 8 slabs 0.43%; the 256 MB one 0.16% in
4 slabs of 64 planes, 0.36% in 8 of 32. On smooth fields at high ratios the same few KB are a large share of a small
stream: 192^3 power-law fields in 3 slabs (2026-12-06) were 0.2-0.9% larger than one stream at ratios 4-15, 2.9% at
34, 5.6% at 152, 14% at 467 and 52% at 4300. Hence ``part_bytes``: a part is worth its cost only where its stream
is at least that large.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from srnsz.decomposition.sampling import central_key


@dataclass(frozen=True)
class PartLayout:
    """How large fields are cut: parts of about ``points`` values, in slabs whose thickness is a multiple of
    ``align`` planes, no more of them than give each ``part_bytes`` of the stream's estimated size. The stream
    records the cut, so a stream of any layout decodes anywhere."""

    # Values per part (8 MB of float32). Parts differ in cost (each tunes its own options: on a 64 MB field one of
    # four parts decoded 5x faster than the others, its finest levels static-coded), so more parts balance the
    # threads better: 4 parts of 4M values decoded 1.52x faster on two threads, 8 parts of 2M 1.70-1.93x, for 0.18%
    # and 0.43% more bytes.
    points: int = 1 << 21
    align: int = 32  # slab thickness is a multiple of the 3D anchor stride
    # Compressed bytes a part's stream should have, by the writer's estimate of the whole stream (parts cost some 2-5 KB
    # each: see above; the estimate runs up to ~2x high on smooth fields, so parts can come out at half this); 0: parts
    # of any size.
    part_bytes: int = 1 << 19

    def __post_init__(self) -> None:
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (self.points, self.align, self.part_bytes))
        if not (whole and self.points >= 1 and self.align >= 1 and self.part_bytes >= 0):
            raise ValueError(f"a part layout needs whole points >= 1, align >= 1 and part_bytes >= 0, not {self}")

    def parts_for_bytes(self, stream_bytes: float) -> int | None:
        """The most parts a stream of about ``stream_bytes`` (inf: not known) is cut into (None: as many as the shape
        gives)."""
        if self.part_bytes == 0 or not math.isfinite(stream_bytes):
            return None
        return int(stream_bytes) // self.part_bytes

    def slabs(self, shape: tuple[int, ...], most: int | None = None) -> range | list[int]:
        """First index along axis 0 of each slab of a field of ``shape``: as many as the layout gives (a lazy range: a
        damaged header's shape may be huge), or ``most`` where fewer (slabs as even as whole multiples of ``align``
        make them)."""
        units = shape[0] // self.align
        count = min(math.prod(shape) // self.points, units)
        if most is not None and most < count:
            return [0] if most < 2 else [self.align * (i * units // most) for i in range(most)]
        if count < 2:
            return range(1)
        thickness = self.align * (units // count)
        return range(0, shape[0] - thickness // 2, thickness)  # a tail under half a slab joins the last


DEFAULT_LAYOUT = PartLayout()


def part_starts(shape: tuple[int, ...], layout: PartLayout = DEFAULT_LAYOUT, most: int | None = None) -> list[int]:
    """First index along axis 0 of each part of a field of ``shape``, at most ``most`` parts ([0]: one part)."""
    return list(layout.slabs(shape, most))


def keys_of(starts: list[int], shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The index of each part of a field of ``shape`` whose slabs along axis 0 begin at ``starts``."""
    ends = [*starts[1:], shape[0]]
    return [(slice(a, b), *(slice(0, n) for n in shape[1:])) for a, b in zip(starts, ends)]


def part_keys(shape: tuple[int, ...], layout: PartLayout = DEFAULT_LAYOUT, most: int | None = None
              ) -> list[tuple[slice, ...]]:
    """The index of each part of a field of ``shape`` (slabs along axis 0, in order), at most ``most`` parts."""
    return keys_of(part_starts(shape, layout, most), shape)


def sample_key(shape: tuple[int, ...], share: float) -> tuple[slice, ...]:
    """A central box of about ``share`` of the points of a field of ``shape`` (every side scaled alike, at least 1)."""
    factor = share ** (1.0 / len(shape))
    return central_key(shape, [max(1, round(n * factor)) for n in shape])


def valid_starts(starts: object, shape: tuple[int, ...]) -> bool:
    """Whether ``starts`` (read from a stream) cut a field of ``shape`` into two or more slabs along axis 0."""
    return (isinstance(starts, list) and 2 <= len(starts) <= shape[0] and starts[0] == 0
            and all(type(s) is int for s in starts) and all(a < b for a, b in zip(starts, starts[1:]))
            and starts[-1] < shape[0])
