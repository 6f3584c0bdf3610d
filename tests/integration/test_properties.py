"""Property tests: any finite or non-finite array, any bound, the guarantee holds."""

from __future__ import annotations

import numpy as np
from conftest import assert_bound
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import srnsz

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=arrays(np.float32, array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=9), elements=FLOATS),
       eb=st.floats(min_value=0, max_value=1e6, allow_subnormal=False),
       mode=st.sampled_from(["abs", "rel"]), kind=st.sampled_from(["linear", "cubic"]))
def test_bound_holds_for_any_array(data, eb, mode, kind):
    stream = srnsz.compress(data, eb, mode, kind=kind)
    assert_bound(data, srnsz.decompress(stream), srnsz.info(stream).error_bound["abs"])


@settings(max_examples=25, deadline=None)
@given(shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=40), seed=st.integers(0, 2**16),
       rel=st.sampled_from([1e-1, 1e-2, 1e-4]), dtype=st.sampled_from([np.float32, np.float64]))
def test_bound_holds_for_random_walks(shape, seed, rel, dtype):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(shape).cumsum(axis=-1).astype(dtype)
    stream = srnsz.compress(data, rel, "rel")
    assert_bound(data, srnsz.decompress(stream), srnsz.info(stream).error_bound["abs"])
