"""A stream committed with format 1.0 must keep decoding to the same values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import assert_bound

import srnsz

DATA = Path(__file__).parent / "data"


def test_golden_stream_still_decodes():
    stream = (DATA / "golden_v1.srnsz").read_bytes()
    expected = np.load(DATA / "golden_v1_expected.npy")
    recon = srnsz.decompress(stream)
    assert np.array_equal(recon.view(np.uint32), expected.view(np.uint32))
    assert_bound(np.load(DATA / "golden_v1_original.npy"), recon, srnsz.info(stream).error_bound["abs"])
    assert srnsz.info(stream).format_version == "1.0"
