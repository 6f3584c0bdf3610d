"""The bound searches of the pipeline (target PSNR and ratio)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_bound, smooth_field

import srnsz
from srnsz.pipeline import targets


def test_target_psnr_and_ratio_are_met_with_a_hard_bound():
    from srnsz.metrics import quality
    from srnsz.pipeline.targets import compress_to_target

    data = smooth_field((40, 64, 48))
    for kw in ({"psnr": 70.0}, {"ratio": 30.0}):
        result = compress_to_target(data, **kw)
        recon = srnsz.decompress(result.stream)
        assert result.met
        assert_bound(data, recon, srnsz.info(result.stream).error_bound["abs"])
        q = quality(data, recon)
        assert q.psnr_db == pytest.approx(result.psnr_db)
        assert data.nbytes / len(result.stream) == pytest.approx(result.ratio)
        if "psnr" in kw:
            assert q.psnr_db >= 70.0
        else:
            assert result.ratio >= 30.0
    unreachable = compress_to_target(np.random.default_rng(0).random((32, 32)), ratio=1e6)
    assert not unreachable.met
    assert not compress_to_target(np.ones(50, np.float32), ratio=1e6).met  # constant fields too
    with pytest.raises(srnsz.SrnszError, match="exactly one"):
        compress_to_target(data, psnr=50, ratio=10)


@pytest.mark.parametrize("field", [np.array([0.0, 1.0], np.float32),
                                   np.random.default_rng(0).random(50).astype(np.float32)], ids=["two", "noise"])
def test_an_unreachable_ratio_keeps_the_closest_trial(field, monkeypatch):
    tried = []
    real = targets._trial

    def recorded(*args):
        tried.append(real(*args))
        return tried[-1]

    monkeypatch.setattr(targets, "_trial", recorded)
    result = targets.compress_to_target(field, ratio=1000.0)
    assert not result.met
    assert result.ratio == max(t.ratio for t in tried)
