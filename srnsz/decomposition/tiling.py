"""Cutting a field into blocks of equal side (smaller at the high edges), numbered in C order of the block grid."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np


def chunk_keys(shape: tuple[int, ...], chunk: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """Regions of ``shape`` cut into blocks of ``chunk`` (smaller at the far edges), C order of the block grid."""
    starts = [range(0, n, c) for n, c in zip(shape, chunk)]
    for origin in itertools.product(*starts):
        yield tuple(slice(o, min(o + c, n)) for o, c, n in zip(origin, chunk, shape))


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
