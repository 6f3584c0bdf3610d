"""The grid-expansion traversal (SZ3/QoZ/HPEZ): anchor lattice, then levels from coarse to fine, each pass cut
into chunks so temporaries stay small. Two traversals:

``sequential`` (SZ3): one pass per dimension. A pass at level stride s along axis d predicts the points that are
odd multiples of s along d, multiples of s along the axes already passed at this level, and multiples of 2s
along the axes still to come. Its lattice view ``array[pass.key]`` holds those points at the odd indices of
``pass.axis`` and their known neighbours at the even indices.

``multidim`` (HPEZ): one pass per set S of axes, smaller sets first; a pass predicts the points that are odd
multiples of s exactly on the axes of S (multiples of 2s elsewhere). Each axis a of S gives a view in which
those points sit at the odd indices of a and their neighbours along a (odd on one axis fewer, so known) at the
even ones; the predictor blends the per-axis spline predictions. All views lay the targets out identically.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_ANCHOR_STRIDE = {1: 1024, 2: 64, 3: 32, 4: 16}
CHUNK_POINTS = 1 << 20  # lattice points per chunk; part of the stream format (header records it)
TRAVERSALS = ("sequential", "multidim")

View = tuple[tuple[slice, ...], int]  # lattice key, axis predicted along


@dataclass(frozen=True)
class Pass:
    """One interpolation pass: lattice view ``key`` (a slice per axis), predicted along ``axis``.

    ``also``: further views of the same targets predicted along other axes (multidim traversal)."""

    key: tuple[slice, ...]
    axis: int
    level: int  # 0 = coarsest
    also: tuple[View, ...] = ()

    @property
    def views(self) -> tuple[View, ...]:
        return ((self.key, self.axis), *self.also)

    @property
    def axes(self) -> tuple[int, ...]:
        """The axes the pass predicts along (its chunks are never cut along them)."""
        return tuple(axis for _, axis in self.views)


@dataclass(frozen=True)
class Plan:
    """The traversal for one shape."""

    shape: tuple[int, ...]
    anchor_stride: int
    levels: int
    dim_order: tuple[int, ...]  # axes left out are batch axes: never interpolated along
    traversal: str = "sequential"

    def _base(self, stride: int) -> list[slice]:
        return [slice(0, None, stride) if a in self.dim_order else slice(None) for a in range(len(self.shape))]

    @property
    def anchor_key(self) -> tuple[slice, ...]:
        return tuple(self._base(self.anchor_stride))

    def stride(self, level: int) -> int:
        """Lattice stride of the points new at ``level`` (0 = coarsest)."""
        return 1 << (self.levels - 1 - level)

    def passes(self) -> Iterator[Pass]:
        if self.traversal == "multidim":
            yield from self._multidim_passes()
            return
        for level in range(self.levels):
            s = self.stride(level)
            for k, axis in enumerate(self.dim_order):
                if self.shape[axis] <= s:
                    continue  # no odd multiple of s along this axis
                key = self._base(2 * s)
                for done in self.dim_order[:k]:
                    key[done] = slice(0, None, s)
                key[axis] = slice(0, None, s)
                yield Pass(tuple(key), axis, level)

    def _multidim_passes(self) -> Iterator[Pass]:
        for level in range(self.levels):
            s = self.stride(level)
            axes = [a for a in self.dim_order if self.shape[a] > s]
            for k in range(1, len(axes) + 1):
                for subset in itertools.combinations(axes, k):
                    views = []
                    for axis in subset:
                        key = self._base(2 * s)
                        for other in subset:
                            key[other] = slice(s, None, 2 * s)
                        key[axis] = slice(0, None, s)
                        views.append((tuple(key), axis))
                    yield Pass(views[0][0], views[0][1], level, tuple(views[1:]))


def make_plan(shape: tuple[int, ...], anchor_stride: int = 0, dim_order: tuple[int, ...] | None = None,
              traversal: str = "sequential") -> Plan:
    """Traversal for ``shape``.

    anchor_stride: power of two, 0 picks the default for the number of interpolated axes. dim_order: the
    interpolated axes in visiting order (default: all, slowest first); axes left out are batch axes.
    traversal: one of TRAVERSALS.
    """
    if traversal not in TRAVERSALS:
        raise ValueError(f"traversal must be one of {TRAVERSALS}, got {traversal!r}")
    order = tuple(dim_order) if dim_order is not None else tuple(range(len(shape)))
    if len(set(order)) != len(order) or not set(order) <= set(range(len(shape))):
        raise ValueError(f"dim_order must list distinct axes of a {len(shape)}-d array, got {order}")
    stride = anchor_stride or DEFAULT_ANCHOR_STRIDE.get(len(order), 16)
    if stride & (stride - 1) or stride < 1:
        raise ValueError(f"anchor stride must be a power of two, got {stride}")
    largest = max((shape[a] for a in order), default=1)
    # Levels needed to reach the finest grid from the anchors, never more than the largest axis needs.
    levels = min(int(math.log2(stride)), math.ceil(math.log2(largest)) if largest > 1 else 0)
    return Plan(tuple(shape), stride, levels, order, traversal)


def chunks(view_shape: tuple[int, ...], axes: int | tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """Split a lattice view along its longest axis not in ``axes`` so each piece has about CHUNK_POINTS points.

    Keys are relative to the view; the predicted axes are never split, so every piece holds whole lines (and
    means the same targets in every view of a multidim pass).
    """
    keep = (axes,) if isinstance(axes, int) else axes
    others = [a for a in range(len(view_shape)) if a not in keep and view_shape[a] > 1]
    total = math.prod(view_shape)
    if not others or total <= CHUNK_POINTS:
        yield tuple(slice(None) for _ in view_shape)
        return
    split = max(others, key=lambda a: view_shape[a])
    step = max(1, view_shape[split] * CHUNK_POINTS // total)
    for start in range(0, view_shape[split], step):
        key = [slice(None)] * len(view_shape)
        key[split] = slice(start, start + step)
        yield tuple(key)


def along(ndim: int, axis: int, part: slice | int) -> tuple[slice, ...]:
    """Index of an ``ndim`` array taking ``part`` along ``axis`` and everything along the other axes (an int
    keeps the axis: ``i`` means ``i:i+1``)."""
    key = [slice(None)] * ndim
    key[axis] = part if isinstance(part, slice) else slice(part, part + 1)
    return tuple(key)


def odd_along(axis: int, ndim: int) -> tuple[slice, ...]:
    """Index of the points odd along ``axis`` (every point along the other axes) of an ``ndim`` array."""
    return along(ndim, axis, slice(1, None, 2))
