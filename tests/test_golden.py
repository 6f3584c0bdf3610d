"""Streams committed with every format version so far must keep decoding to the same values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bound

import srnsz

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name,version", [("v1", "1.0"), ("v1_1", "1.1"), ("v1_2", "1.2")])
def test_golden_stream_still_decodes(name, version):
    stream = (DATA / f"golden_{name}.srnsz").read_bytes()
    expected = np.load(DATA / f"golden_{name}_expected.npy")
    recon = srnsz.decompress(stream)
    assert np.array_equal(recon.view(np.uint32), expected.view(np.uint32))
    original = np.load(DATA / ("golden_v1_original.npy" if name == "v1" else "golden_field.npy"))
    assert_bound(original, recon, srnsz.info(stream).error_bound["abs"])
    assert srnsz.info(stream).format_version == version


def test_current_writer_reproduces_its_golden_stream():
    # The format is frozen: the same field, bound and options must give the same bytes.
    original = np.load(DATA / "golden_field.npy")
    assert srnsz.compress(original, 1e-3, "rel") == (DATA / "golden_v1_2.srnsz").read_bytes()
