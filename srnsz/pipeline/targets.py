"""Compress to a target PSNR or compression ratio by searching the error bound.

The bound is searched on sampled blocks first (fields above a million points), then refined with whole-field
compressions. The returned stream still carries a hard pointwise bound: the one the search settled on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from srnsz import api, missing
from srnsz.bounds import finite_range
from srnsz.decomposition.sampling import FULL_TRIAL_POINTS, sample_blocks
from srnsz.errors import InvalidInputError
from srnsz.metrics import psnr_db, psnr_over, rmse_over
from srnsz.predictors.base import PREDICTORS

MAX_FULL_TRIALS = 8
RELATIVE_TOLERANCE = 1.03  # stop when the bracket's ends differ by less than this factor


@dataclass(frozen=True)
class TargetResult:
    """The stream and what it achieved. `met` is False when no bound reaches the target (closest returned)."""

    stream: bytes
    eb_abs: float
    psnr_db: float
    ratio: float
    met: bool
    trials: int


@dataclass(frozen=True)
class _Trial:
    eb: float
    stream: bytes
    psnr: float
    ratio: float


def _trial(data: np.ndarray, valid: np.ndarray | None, eb: float, predictor: str, options: dict[str, Any],
           value_range: float) -> _Trial:
    """Compress at ``eb``; PSNR over the ``valid`` points (None: all finite) on ``value_range`` (the whole field's,
    also when ``data`` is a sample)."""
    stream = api.compress(data, eb, "abs", predictor, **options)
    rmse = rmse_over(data, api.decompress(stream), valid)
    return _Trial(eb, stream, psnr_db(rmse, value_range), data.nbytes / len(stream))


def _search(ok: Callable[[_Trial], bool], score: Callable[[_Trial], float], run: Callable[[float], _Trial],
            start: float, prefer_large: bool, budget: int) -> tuple[_Trial | None, _Trial, int]:
    """Bracket then bisect in log(eb). ok(trial) must be monotone: True for small eb (PSNR) or for large eb
    (ratio) -- `prefer_large` says which end is wanted. Returns (best ok trial, the trial of the highest
    ``score`` -- the closest to the target where none is ok --, trials used)."""
    trials = 0
    best: _Trial | None = None
    closest: _Trial | None = None
    low, high = None, None  # low: eb whose result is on the "small eb" side, high: on the "large eb" side
    eb, last = start, None
    while trials < budget:
        last = run(eb)
        trials += 1
        if closest is None or score(last) > score(closest):
            closest = last
        good = ok(last)
        if good and (best is None or (last.eb > best.eb) == prefer_large):
            best = last
        small_side = good if prefer_large else not good  # PSNR: good = small side; ratio: good = large side
        if small_side:
            low = eb
        else:
            high = eb
        if low is None:
            eb /= 4
        elif high is None:
            eb *= 4
        elif high / low < RELATIVE_TOLERANCE:
            break
        else:
            eb = math.sqrt(low * high)
    assert closest is not None  # budget >= 1
    return best, closest, trials


def compress_to_target(array: Any, *, psnr: float | None = None, ratio: float | None = None,
                       predictor: str = "interp", **options: Any) -> TargetResult:
    """Compress ``array`` with the largest bound keeping PSNR >= ``psnr`` dB, or the smallest bound reaching a
    compression ratio >= ``ratio``; exactly one target."""
    if (psnr is None) == (ratio is None):
        raise InvalidInputError("give exactly one of a target PSNR or a target ratio")
    if ratio is not None and not ratio > 1:
        raise InvalidInputError(f"target ratio must be > 1, got {ratio}")
    data = np.asarray(array)
    rule = missing.MissingRule.from_options(options)

    def valid_points(x: np.ndarray) -> np.ndarray | None:
        mask = missing.find_missing(x, rule).mask
        return None if mask is None else ~mask

    valid = valid_points(data)
    value_range = finite_range(data, None if valid is None else ~valid) if data.size else 0.0
    if not value_range > 0 or not np.isfinite(value_range):
        stream = api.compress(data, 0.0, "abs", predictor, **options)
        achieved = data.nbytes / len(stream)
        return TargetResult(stream, 0.0, float("inf"), achieved, ratio is None or achieved >= ratio, 1)
    if psnr is not None and predictor in PREDICTORS and PREDICTORS[predictor].can_preview:
        # the psnr mode chooses the configuration for the bits at the target, not only the bound
        stream = api.compress(data, psnr, "psnr", predictor, **options)
        reached = psnr_over(data, api.decompress(stream), valid)
        eb_abs = float(api.info(stream).error_bound["abs"])
        return TargetResult(stream, eb_abs, reached, data.nbytes / len(stream), reached >= psnr, 1)
    if psnr is not None:
        ok, score = (lambda t: t.psnr >= psnr), (lambda t: t.psnr)  # noqa: E731
        start, prefer_large = value_range * 10 ** (-psnr / 20) * math.sqrt(3), True
    else:
        ok, score = (lambda t: t.ratio >= ratio), (lambda t: t.ratio)  # noqa: E731
        start, prefer_large = value_range * 1e-3, False
    used = 0
    if data.size > FULL_TRIAL_POINTS and data.ndim < 4:
        sample = sample_blocks(data, 32)
        sample_valid = valid_points(sample)
        rule_options = {k: options[k] for k in missing.RULE_OPTIONS if k in options}
        best, closest, n = _search(ok, score, lambda eb: _trial(sample, sample_valid, eb, "interp", rule_options,
                                                                 value_range), start, prefer_large, 16)
        start = (best or closest).eb
        used += n
    best, closest, n = _search(ok, score, lambda eb: _trial(data, valid, eb, predictor, options, value_range),
                               start, prefer_large, MAX_FULL_TRIALS)
    used += n
    chosen = best or closest
    return TargetResult(chosen.stream, chosen.eb, chosen.psnr, chosen.ratio, best is not None, used)
