"""The CDF 9/7 wavelet transform (JPEG 2000's irreversible one, the transform of SPERR), by lifting, separable:
every level along the first axis, then every level along the next, and so on (the anisotropic, or "rectangular",
decomposition, which lets a short axis stop halving while a long one goes on).

Contract. :func:`forward` maps a float64 array to coefficients of the same shape: along each axis the
approximation of the coarsest level first, then the details from the coarsest level to the finest
(:func:`band_edges`). :func:`inverse` maps coefficients back. Only the encoder runs :func:`forward`; the decoder's
reconstruction is :func:`inverse` of the dequantized coefficients, which is made of elementwise IEEE operations
(+, -, * by constants), each correctly rounded and none fused, in a fixed order: the same bits on every machine
and numpy build (no reductions, no library transcendental functions).

Edges use whole-sample symmetric extension (a sample's missing neighbour is its other neighbour), so any length
transforms into exactly as many coefficients, odd ones included. The bands are scaled so that the synthesis
functions of one level have unit L2 norm: a uniform quantization step then costs about the same squared error
per coefficient in every band (the transform is nearly orthogonal).
"""

from __future__ import annotations

import math

import numpy as np

# Lifting steps of the CDF 9/7 biorthogonal wavelet (Daubechies & Sweldens 1998; ISO 15444-1 Annex F).
ALPHA = -1.586134342059924
BETA = -0.052980118572961
GAMMA = 0.882911075530934
DELTA = 0.443506852043971
# Band scales making one level's synthesis functions of unit norm (measured on an impulse far from the edges:
# tests/unit/decomposition/test_wavelet.py checks them).
LOW_SCALE = 1.139764007654642
HIGH_SCALE = 0.8872770756359072


def axis_levels(n: int, approximation: int) -> int:
    """How many levels an axis of ``n`` points is transformed: halvings while its approximation keeps at least
    ``approximation`` points (>= 1; fewer levels on short axes, where the edges dominate)."""
    levels = 0
    while n > 1 and math.ceil(n / 2) >= approximation:
        n = math.ceil(n / 2)
        levels += 1
    return levels


def level_sizes(n: int, levels: int) -> list[int]:
    """The points entering each level along an axis of ``n`` transformed ``levels`` times, then the coarsest
    approximation's: [n, ceil(n/2), ...] (levels + 1 entries)."""
    sizes = [n]
    for _ in range(levels):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def band_edges(n: int, levels: int) -> list[int]:
    """Starts of the bands along an axis of ``n`` coefficients transformed ``levels`` times, then ``n``: the
    approximation, then the details from the coarsest level to the finest."""
    # level k + 1 takes sizes[k] points: its approximation sizes[k + 1] of them, its details the rest
    return [0, *reversed(level_sizes(n, levels))]


def _right_even(even: np.ndarray, n_odd: int) -> np.ndarray:
    """Each odd sample's right neighbour (the even one after it), mirrored at the end."""
    if len(even) > n_odd:
        return even[1:n_odd + 1]
    return np.concatenate([even[1:], even[-1:]])


def _left_right_odd(odd: np.ndarray, n_even: int) -> tuple[np.ndarray, np.ndarray]:
    """Each even sample's left and right neighbours (odd samples), mirrored at both ends."""
    left = np.concatenate([odd[:1], odd[:n_even - 1]])
    right = odd if len(odd) == n_even else np.concatenate([odd, odd[-1:]])
    return left, right


def _lift_odd(odd: np.ndarray, even: np.ndarray, weight: float) -> None:
    odd += weight * (even[:len(odd)] + _right_even(even, len(odd)))


def _lift_even(even: np.ndarray, odd: np.ndarray, weight: float) -> None:
    left, right = _left_right_odd(odd, len(even))
    even += weight * (left + right)


def _analysis(x: np.ndarray) -> np.ndarray:
    """One level along axis 0 of ``x`` (n >= 2, float64): [approximation (ceil(n/2)); details (floor(n/2))]."""
    even, odd = x[0::2].copy(), x[1::2].copy()
    _lift_odd(odd, even, ALPHA)
    _lift_even(even, odd, BETA)
    _lift_odd(odd, even, GAMMA)
    _lift_even(even, odd, DELTA)
    even *= LOW_SCALE
    odd *= HIGH_SCALE
    return np.concatenate([even, odd])


def _synthesis(c: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_analysis` along axis 0."""
    n_even = math.ceil(len(c) / 2)
    even, odd = c[:n_even] * (1.0 / LOW_SCALE), c[n_even:] * (1.0 / HIGH_SCALE)
    _lift_even(even, odd, -DELTA)
    _lift_odd(odd, even, -GAMMA)
    _lift_even(even, odd, -BETA)
    _lift_odd(odd, even, -ALPHA)
    out = np.empty((len(c), *c.shape[1:]), np.float64)
    out[0::2], out[1::2] = even, odd
    return out


def levels_of(shape: tuple[int, ...], approximation: int) -> tuple[int, ...]:
    """The levels of each axis of a field of ``shape`` (:func:`axis_levels`)."""
    return tuple(axis_levels(n, approximation) for n in shape)


def forward(x: np.ndarray, levels: tuple[int, ...]) -> np.ndarray:
    """Coefficients (float64, ``x``'s shape) of ``x`` transformed ``levels[a]`` times along each axis a."""
    c = np.array(x, dtype=np.float64)
    for axis, count in enumerate(levels):
        moved = np.moveaxis(c, axis, 0)
        for n in level_sizes(moved.shape[0], count)[:-1]:
            moved[:n] = _analysis(moved[:n])
    return c


def inverse(c: np.ndarray, levels: tuple[int, ...]) -> np.ndarray:
    """The array (float64, ``c``'s shape) whose :func:`forward` with ``levels`` is ``c``."""
    x = np.array(c, dtype=np.float64)
    for axis in reversed(range(len(levels))):
        moved = np.moveaxis(x, axis, 0)
        for n in reversed(level_sizes(moved.shape[0], levels[axis])[:-1]):
            moved[:n] = _synthesis(moved[:n])
    return x
