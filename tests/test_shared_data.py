"""The bound on the real fields of ../shared/data (skipped when the folder is absent)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_DATA, assert_bound

import srnsz

FIELDS = sorted(SHARED_DATA.glob("*.npy")) if SHARED_DATA.is_dir() else []
pytestmark = pytest.mark.skipif(not FIELDS, reason=f"shared data folder {SHARED_DATA} not present")


@pytest.mark.parametrize("path", FIELDS, ids=lambda p: p.stem)
@pytest.mark.parametrize("rel", [1e-2, 1e-4])
def test_bound_on_shared_fields(path, rel):
    data = np.load(path)
    stream = srnsz.compress(data, rel, "rel")
    assert_bound(data, srnsz.decompress(stream), srnsz.info(stream).error_bound["abs"])
    assert len(stream) < data.nbytes
