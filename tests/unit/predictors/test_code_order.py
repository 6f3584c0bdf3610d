"""The interp predictor's code order (InterpConfig.code_order): the axis order the coder scans codes in."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_bound, rewritten, series_field, smooth_field

import srnsz
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.format.container import read_container
from srnsz.predictors.interp import CodeScan, code_orders


def _config(stream: bytes) -> dict:
    return read_container(stream).header["predictor"]["params"]["config"]


@pytest.mark.parametrize("shape", [(17, 23), (9, 12, 14), (5, 6, 7, 8)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_code_order_round_trips_within_the_bound(shape, dtype):
    data = smooth_field(shape, dtype, seed=len(shape))
    data.flat[::37] = np.nan
    eb = 1e-3 * float(np.nanmax(data) - np.nanmin(data))
    for order in code_orders(len(shape)):
        stream = srnsz.compress(data, eb, "abs", tune="off", code_order=order)
        assert srnsz.info(stream).format_version == "1.14"  # a code order needs 1.13; every new stream 1.14
        assert _config(stream)["code_order"] == list(order)
        assert_bound(data, srnsz.decompress(stream), eb)


def test_a_scan_and_its_inverse_are_each_others_undoing():
    shape = (3, 4, 5)
    values = np.arange(60)
    for order in code_orders(3):
        scan = CodeScan(order)
        scanned = scan.forward(values, shape)
        assert scan.shape(shape) == tuple(shape[a] for a in order)
        assert np.array_equal(scanned, values.reshape(shape).transpose(order).ravel())
        assert np.array_equal(scan.back(scanned, shape), values)
    assert CodeScan(None).forward(values, shape) is values


def test_the_code_order_is_recorded_only_where_it_is_not_the_fields():
    data = smooth_field((12, 16, 20), seed=1)
    plain = srnsz.compress(data, 1e-3, "rel", code_order=None)
    assert "code_order" not in _config(plain)


def test_the_tuner_scans_a_persistent_axis_last():
    """Departures whose amplitude persists along axis 0: the coder models a code best from its neighbour along that
    axis, so the tuner scans it last, and the stream is smaller than in the field's own order."""
    data = series_field((40, 24, 28), seed=3)
    tuned = srnsz.compress(data, 1e-2, "rel")
    own = srnsz.compress(data, 1e-2, "rel", code_order=None)
    assert _config(tuned)["code_order"][-1] == 0 and "code_order" not in _config(own)
    assert len(tuned) * 1.01 < len(own)
    assert_bound(data, srnsz.decompress(tuned), srnsz.info(tuned).error_bound["abs"])


@pytest.mark.parametrize("order", [(0, 0, 1), (0, 1), (1, 2, 3), ("a", 0, 1), 2, (True, False, 2)])
def test_a_code_order_that_is_no_permutation_of_the_axes_is_refused(order):
    with pytest.raises(InvalidInputError, match="code_order"):
        srnsz.compress(smooth_field((6, 7, 8)), 1e-3, "rel", code_order=order)


@pytest.mark.parametrize("recorded", [[0, 0, 1], [0, 1], [1, 2, 3], "210", [0.5, 1, 2]])
def test_a_hostile_code_order_in_the_header_is_refused(recorded):
    stream = srnsz.compress(series_field((16, 8, 8), seed=2), 1e-3, "rel", code_order=(1, 2, 0))

    def change(header):
        header["predictor"]["params"]["config"]["code_order"] = recorded

    with pytest.raises(StreamFormatError):
        srnsz.decompress(rewritten(stream, change))
