"""The bound searches of the pipeline (target PSNR and ratio)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_bound, smooth_field

import srnsz


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
