"""Sample blocks of a field for trial compression (tuning)."""

from __future__ import annotations

import itertools
import math

import numpy as np

FULL_TRIAL_POINTS = 1 << 20  # fields up to this size are tuned on the whole field
SAMPLE_FRACTION = 0.04


def sample_blocks(data: np.ndarray, block: int) -> np.ndarray:
    """Evenly spread blocks of side ``block + 1`` (anchor to anchor), stacked on a new leading batch axis.

    Returns (k, *block_shape). Small fields come back whole as a batch of one.
    """
    if data.size <= FULL_TRIAL_POINTS:
        return data[np.newaxis]
    side = [min(block + 1, n) for n in data.shape]
    starts = [range(0, max(n - s, 0) + 1, block) for n, s in zip(data.shape, side)]
    origins = list(itertools.product(*starts))
    wanted = max(1, math.ceil(SAMPLE_FRACTION * data.size / math.prod(side)))
    picks = np.linspace(0, len(origins) - 1, min(wanted, len(origins))).round().astype(int)
    blocks = [data[tuple(slice(o, o + s) for o, s in zip(origins[i], side))] for i in picks]
    return np.stack(blocks)
