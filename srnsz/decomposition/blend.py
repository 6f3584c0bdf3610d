"""Blending weights for the per-axis spline predictions of a multidim pass (HPEZ multi-dimensional
interpolation, with the blend fitted per pass instead of a plain mean).

A multidim pass predicts each target along every axis of its set S; the prediction is sum_a w_a p_a with
weights on a grid of 1/64 that sum to one (so equal inputs predict that value exactly). The encoder picks, on
the targets of the pass, whichever of these has the smallest L1 residual: each single axis (which is what the
sequential traversal would use), the plain mean (HPEZ), and the least-squares blend. The weights go into the
stream header, so decoding never fits anything.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np

WEIGHT_GRID = 64

Samples = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]


def snap(weights: np.ndarray) -> tuple[float, ...]:
    """Weights clipped to [0, 1], rounded to the 1/64 grid, summing to exactly one."""
    w = np.clip(np.nan_to_num(np.asarray(weights, np.float64), nan=0.0), 0.0, None)
    w = w / w.sum() if w.sum() > 0 else np.full(w.size, 1.0 / w.size)
    steps = np.round(w * WEIGHT_GRID).astype(np.int64)
    steps[int(np.argmax(steps))] += WEIGHT_GRID - int(steps.sum())
    return tuple(float(s) / WEIGHT_GRID for s in steps)


def valid_weights(weights: object, k: int) -> bool:
    """True for a list of ``k`` grid weights in [0, 1] summing to one (as :func:`snap` makes them)."""
    if not isinstance(weights, list) or len(weights) != k:
        return False
    if not all(isinstance(w, (int, float)) and 0 <= w <= 1 for w in weights):
        return False
    steps = [w * WEIGHT_GRID for w in weights]
    return all(s == int(s) for s in steps) and sum(steps) == WEIGHT_GRID


def _least_squares(samples: Samples, k: int) -> np.ndarray | None:
    # Sum-to-one blend: x - p_0 = sum_{a>0} w_a (p_a - p_0), so fit on differences (no cancellation on offsets).
    gram = np.zeros((k - 1, k - 1))
    cross = np.zeros(k - 1)
    for pred, x in samples():
        # Extreme values (near the float64 limit) overflow here; a non-finite fit is then left out.
        with np.errstate(over="ignore", invalid="ignore"):
            diff = pred[:, 1:] - pred[:, :1]
            gram += diff.T @ diff
            cross += diff.T @ (x - pred[:, 0])
    try:
        rest = np.linalg.solve(gram, cross)
    except np.linalg.LinAlgError:
        return None
    return np.concatenate([[1.0 - rest.sum()], rest]) if np.all(np.isfinite(rest)) else None


@functools.cache
def _fixed_candidates(k: int) -> tuple[tuple[float, ...], ...]:
    """Each single axis, then the plain mean, snapped (the same for every pass with ``k`` predictions: snapping them
    anew was 3-5% of the compression time, shared fields, rel 1e-2..1e-4)."""
    return tuple(snap(np.eye(k)[a]) for a in range(k)) + (snap(np.ones(k)),)


def choose_weights(samples: Samples, k: int) -> tuple[float, ...]:
    """Blend weights (k,) for a pass.

    samples: called twice; each call yields chunks of (predictions (n, k) float64, originals (n,) float64),
    finite rows only.
    """
    candidates = list(_fixed_candidates(k))
    fitted = _least_squares(samples, k)
    if fitted is not None:
        candidates.append(snap(fitted))
    candidates = list(dict.fromkeys(candidates))
    weights = np.array(candidates).T  # (k, m)
    l1 = np.zeros(len(candidates))
    for pred, x in samples():
        with np.errstate(over="ignore", invalid="ignore"):
            l1 += np.abs(x[:, None] - pred @ weights).sum(axis=0)
    return candidates[int(np.argmin(l1))]


def blend(predictions: list[np.ndarray], weights: tuple[float, ...]) -> np.ndarray:
    """sum_a weights[a] * predictions[a] over the nonzero weights (predictions of zero weight may be None)."""
    out: np.ndarray | None = None
    for w, p in zip(weights, predictions):
        if w == 0:
            continue
        term = p if w == 1 else w * p
        out = term.copy() if out is None else out + term
    assert out is not None  # weights sum to one
    return out
