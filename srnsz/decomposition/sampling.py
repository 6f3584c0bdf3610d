"""Samples of a field for trial compressions: evenly spread blocks (tuning) and central boxes."""

from __future__ import annotations

import itertools
import math

import numpy as np

FULL_TRIAL_POINTS = 1 << 20  # target searches run on the whole field up to this size
TUNE_FULL_POINTS = 1 << 15  # predictor tuning samples fields above this size
TUNE_FRACTION = 0.04
SAMPLE_FRACTION = 0.04


def sample_blocks(data: np.ndarray, block: int, full_points: int = FULL_TRIAL_POINTS,
                  fraction: float = SAMPLE_FRACTION) -> np.ndarray:
    """Evenly spread blocks of side ``block + 1`` (anchor to anchor), stacked on a new leading batch axis.

    ``fraction``: share of the field's points to sample. Returns (k, *block_shape). Fields of at most
    ``full_points`` come back whole as a batch of one.
    """
    if data.size <= full_points:
        return data[np.newaxis]
    side = [min(block + 1, n) for n in data.shape]
    starts = [range(0, max(n - s, 0) + 1, block) for n, s in zip(data.shape, side)]
    origins = list(itertools.product(*starts))
    wanted = max(1, math.ceil(fraction * data.size / math.prod(side)))
    picks = np.linspace(0, len(origins) - 1, min(wanted, len(origins))).round().astype(int)
    blocks = [data[tuple(slice(o, o + s) for o, s in zip(origins[i], side))] for i in picks]
    return np.stack(blocks)


def central_key(shape: tuple[int, ...], sides: list[int]) -> tuple[slice, ...]:
    """The index of the box of ``sides`` (each at most the field's) in the middle of a field of ``shape``."""
    return tuple(slice((n - m) // 2, (n - m) // 2 + m) for n, m in zip(shape, sides))
