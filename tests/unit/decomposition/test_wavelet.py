"""The CDF 9/7 lifting transform: perfect reconstruction on every length, the band layout, unit-norm bands."""

from __future__ import annotations

import numpy as np
import pytest

from srnsz.decomposition import wavelet

SHAPES = [(1,), (2,), (3,), (4,), (5,), (8,), (17,), (64,), (7, 9), (1, 40), (33, 2, 5), (17, 24, 31), (5, 6, 7, 8)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("approximation", [1, 2, 4, 8])
def test_inverse_undoes_forward(shape, approximation):
    x = np.random.default_rng(0).standard_normal(shape) * 100
    levels = wavelet.levels_of(shape, approximation)
    c = wavelet.forward(x, levels)
    assert c.shape == x.shape and c.dtype == np.float64
    assert np.abs(wavelet.inverse(c, levels) - x).max() <= 1e-11 * 100
    assert np.array_equal(wavelet.forward(x, (0,) * len(shape)), x)  # no levels: the values themselves


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 9, 17, 100, 1023])
@pytest.mark.parametrize("approximation", [1, 3, 4, 8])
def test_levels_and_band_edges(n, approximation):
    levels = wavelet.axis_levels(n, approximation)
    edges = wavelet.band_edges(n, levels)
    assert edges[0] == 0 and edges[-1] == n and len(edges) == levels + 2
    assert all(a < b for a, b in zip(edges, edges[1:]))
    assert edges[1] >= min(n, approximation)  # the approximation keeps at least that many (or all) points
    if levels:
        assert wavelet.axis_levels(edges[1], approximation) == 0 or edges[1] < 2 * approximation


def test_one_level_synthesis_functions_have_unit_norm():
    for position in (64, 128 + 64):  # an approximation and a detail coefficient, far from the edges
        impulse = np.zeros(256)
        impulse[position] = 1.0
        x = wavelet.inverse(impulse, (1,))
        assert np.sqrt(np.sum(x ** 2)) == pytest.approx(1.0, abs=1e-12)


def test_smooth_signals_leave_small_details():
    """Four vanishing moments: a cubic has no detail away from the edges, and a constant none anywhere."""
    t = np.linspace(0, 1, 256)
    c = wavelet.forward(np.full(256, 3.5), (3,))
    assert np.abs(c[wavelet.band_edges(256, 3)[1]:]).max() < 1e-12
    c = wavelet.forward(1 + t - 2 * t ** 2 + t ** 3, (1,))
    assert np.abs(c[128 + 4:-4]).max() < 1e-12


def test_forward_works_on_a_copy():
    x = np.arange(24.0).reshape(4, 6)
    kept = x.copy()
    wavelet.inverse(wavelet.forward(x, (1, 1)), (1, 1))
    assert np.array_equal(x, kept)
