"""The quantizer's contract."""

from __future__ import annotations

import numpy as np

from srnsz.quantizer import ESCAPE, RADIUS, quantize, reconstruct


def test_quantizer_contract():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(10000).astype(np.float32)
    x[:3] = [np.nan, np.inf, 1e30]
    pred = x.astype(np.float64) + rng.normal(0, 0.1, x.size)
    pred[2] = 0.0  # 1e30 away: far beyond the code radius
    q = quantize(x, pred, 1e-3)
    assert q.codes[0] == ESCAPE and q.codes[1] == ESCAPE and q.codes[2] == ESCAPE
    assert np.abs(q.codes[q.codes != ESCAPE]).max() <= RADIUS
    finite = np.isfinite(x)
    assert np.abs(x[finite].astype(np.float64) - q.recon[finite]).max() <= 1e-3
    back = reconstruct(pred, q.codes, 1e-3, np.dtype(np.float32), q.escaped)
    assert np.array_equal(back.view(np.uint32), q.recon.view(np.uint32))
