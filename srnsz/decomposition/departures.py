"""Interpolation of a field's departures from its mean along one axis (a climatology along a long time axis).

A climate series x[t, y, x] is its mean over time m[y, x] (sharp: coasts, mountains) plus departures that are
large-scale and small. Splines across y and x mispredict m's sharp features the same way every year; splines
along t do not see m at all. So the passes along every axis but the mean's predict

    pred = spline(rec) + (m - spline(m))

that is m plus the spline of the departures rec - m (splines are linear), while the passes along the mean's axis
keep spline(rec). The mean m is coded in the stream (lossy, its own bound) and both sides use the decoded m, in
float64, so the predictions are the same bits on both sides; the quantizer bounds the error against these
predictions as against any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srnsz.decomposition.grid import odd_along
from srnsz.decomposition.interpolation import predict_odd

# The mean is coded with this share of the field's bound: its errors enter every correction (as a spline's error
# on them), and it is 1/n of the field along its axis.
MEAN_BOUND_SHARE = 0.25


def axis_mean(data: np.ndarray, axis: int, free: np.ndarray | None = None) -> np.ndarray:
    """The mean (float64, ``data``'s shape with 1 along ``axis``) of the finite values of ``data`` that are not
    ``free``, along ``axis``; 0 where there are none (or the sum overflows)."""
    return axis_means(data, [axis], free)[0]


def axis_means(data: np.ndarray, axes: list[int], free: np.ndarray | None = None) -> list[np.ndarray]:
    """:func:`axis_mean` along each of ``axes`` (one pass to find the valid values for all)."""
    valid = np.isfinite(data) if free is None else np.isfinite(data) & ~free
    every = bool(valid.all())
    with np.errstate(over="ignore", invalid="ignore"):
        filled = data.astype(np.float64) if every else np.where(valid, data, 0).astype(np.float64, copy=False)
        means = [filled.sum(axis, keepdims=True) / (data.shape[axis] if every else
                                                    np.maximum(valid.sum(axis, keepdims=True), 1)) for axis in axes]
    return [np.where(np.isfinite(mean), mean, 0.0) for mean in means]


@dataclass(frozen=True)
class AxisMean:
    """The decoded mean ``values`` (float64, the field's shape with 1 along ``axis``) the passes use."""

    axis: int
    values: np.ndarray

    def correction(self, key: tuple[slice, ...], chunk: tuple[slice, ...], along: int, kind: str
                   ) -> np.ndarray | float:
        """What to add to the ``kind`` spline predictions along ``along`` of chunk ``chunk`` of the lattice view
        ``key``: m - spline(m) at its odd points (1 along the mean's axis, broadcasting), 0 along the mean's axis."""
        if along == self.axis:
            return 0.0
        key = tuple(slice(None) if a == self.axis else k for a, k in enumerate(key))
        chunk = tuple(slice(None) if a == self.axis else c for a, c in enumerate(chunk))
        view = self.values[key][chunk]
        return view[odd_along(along, view.ndim)] - predict_odd(view, along, kind)


def departure_roughness(sample: np.ndarray, mean: np.ndarray, axis: int) -> float:
    """How rough the departures ``sample - mean`` are against ``sample`` itself across the axes other than ``axis``
    and the leading (batch) one: the ratio of their summed absolute second differences (finite ones only; 1 where
    the sample has none). A cheap screen of where interpolating departures can pay (the splines' errors follow the
    second differences)."""
    across = [a for a in range(1, sample.ndim) if a != axis and sample.shape[a] > 2]
    values = sample.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        sums = [_second_differences(array, across) for array in (values - mean, values)]
    return sums[0] / sums[1] if sums[1] > 0 else 1.0


def _second_differences(array: np.ndarray, axes: list[int]) -> float:
    total = 0.0
    for a in axes:
        d2 = np.abs(np.diff(array, 2, axis=a))
        total += float(d2[np.isfinite(d2)].sum())
    return total
