"""Cutting a field into blocks of equal side (smaller at the high edges), numbered in C order of the block grid."""

from __future__ import annotations

import numpy as np


def block_slices(shape: tuple[int, ...], side: int) -> list[tuple[slice, ...]]:
    """Every block as a tuple of slices, in C order over the block grid."""
    ranges = [[slice(s, min(s + side, n)) for s in range(0, n, side)] for n in shape]
    out: list[tuple[slice, ...]] = [()]
    for axis_ranges in ranges:
        out = [(*prefix, r) for prefix in out for r in axis_ranges]
    return out


def block_ids(shape: tuple[int, ...], side: int) -> tuple[np.ndarray, int]:
    """(int64 array of ``shape`` giving each point's block number, number of blocks)."""
    counts = [-(-n // side) for n in shape]
    ids = np.zeros(shape, dtype=np.int64)
    for axis, n in enumerate(shape):
        stride = int(np.prod(counts[axis + 1:]))
        index = (np.arange(n) // side) * stride
        ids += index.reshape([-1 if a == axis else 1 for a in range(len(shape))])
    return ids, int(np.prod(counts))


def block_order(ids: np.ndarray) -> np.ndarray:
    """Flat indices that list the points block by block (block order), each block in C order."""
    return np.argsort(ids.ravel(), kind="stable")
