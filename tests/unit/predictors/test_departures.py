"""Interpolating a field's departures from its mean along one axis (InterpConfig.mean_axis)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_bound, rewritten, series_field, smooth_field

import srnsz
from srnsz.decomposition.departures import axis_mean, departure_roughness
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.format.container import read_container


def _config(stream: bytes) -> dict:
    return read_container(stream).header["predictor"]["params"]["config"]


@pytest.mark.parametrize("shape", [(19, 26), (11, 14, 17)])
@pytest.mark.parametrize("traversal", ["sequential", "multidim"])
@pytest.mark.parametrize("kind", ["linear", "cubic", "fitted"])
def test_every_mean_axis_round_trips_within_the_bound(shape, traversal, kind):
    for dtype in (np.float32, np.float64):
        data = series_field(shape, seed=len(shape)).astype(dtype)
        data.flat[::41] = np.nan
        data.flat[5] = np.inf
        eb = 1e-3 * float(np.nanmax(data[np.isfinite(data)]) - np.nanmin(data[np.isfinite(data)]))
        for axis in range(len(shape)):
            stream = srnsz.compress(data, eb, "abs", tune="off", kind=kind, traversal=traversal, mean_axis=axis)
            assert read_container(stream).version[1] == 14  # a mean needs 1.13; every new stream 1.14
            assert _config(stream)["mean_axis"] == axis and {"MANC", "MCOD"} <= read_container(stream).sections.keys()
            assert_bound(data, srnsz.decompress(stream), eb)


def test_the_tuner_interpolates_the_departures_of_a_series_from_its_mean():
    data = series_field((48, 32, 32), seed=3)
    for rel in (1e-2, 1e-3):
        tuned = srnsz.compress(data, rel, "rel")
        plain = srnsz.compress(data, rel, "rel", mean_axis=None)
        assert _config(tuned)["mean_axis"] == 0 and "mean_axis" not in _config(plain)
        assert len(tuned) * 1.05 < len(plain)
        assert_bound(data, srnsz.decompress(tuned), srnsz.info(tuned).error_bound["abs"])


def test_a_smooth_field_keeps_no_mean():
    data = smooth_field((24, 28, 32), seed=4)
    assert "mean_axis" not in _config(srnsz.compress(data, 1e-3, "rel"))


def test_missing_values_stay_out_of_the_mean_and_come_back_exactly():
    data = series_field((30, 20, 24), seed=5)
    data[:, :6, :7] = np.float32(1e20)  # land, every year
    data[3, 10, 10] = np.nan
    stream = srnsz.compress(data, 1e-3, "rel", mean_axis=0)
    recon = srnsz.decompress(stream)
    land = data == np.float32(1e20)
    assert np.array_equal(recon[land], data[land]) and np.isnan(recon[3, 10, 10])
    assert_bound(np.where(land, 0, data), np.where(land, 0, recon), srnsz.info(stream).error_bound["abs"])


def test_the_mean_counts_only_valid_values():
    data = np.array([[1.0, 2.0], [3.0, np.nan], [np.inf, 6.0]])
    free = np.array([[False, False], [True, False], [False, False]])
    assert np.array_equal(axis_mean(data, 0, free), [[1.0, 4.0]])
    assert np.array_equal(axis_mean(np.full((3, 2), np.nan), 0), [[0.0, 0.0]])
    assert np.array_equal(axis_mean(np.full((2, 2), 1e308), 0), [[0.0, 0.0]])  # the sum overflows


def test_the_screen_tells_a_climatology_from_noise():
    rng = np.random.default_rng(0)
    sample = series_field((40, 24, 28), seed=6)[np.newaxis]  # a batch of one block
    mean = sample.mean(1, keepdims=True)
    assert departure_roughness(sample, mean, 1) < 0.5
    noise = rng.standard_normal((1, 40, 24, 28))
    assert departure_roughness(noise, noise.mean(1, keepdims=True), 1) > 0.9


@pytest.mark.parametrize("axis", [3, -1, 1.5, "0", True])
def test_a_mean_axis_that_is_no_axis_is_refused(axis):
    with pytest.raises(InvalidInputError, match="mean_axis"):
        srnsz.compress(smooth_field((6, 7, 8)), 1e-3, "rel", mean_axis=axis)


def _params(header: dict) -> dict:
    return header["predictor"]["params"]


@pytest.mark.parametrize("header_change,section_change", [
    (lambda h: _params(h)["config"].update(mean_axis=3), None),
    (lambda h: _params(h)["config"].update(mean_axis=-1), None),
    (lambda h: _params(h).pop("mean"), None),
    (lambda h: _params(h).update(mean=[1, 2]), None),
    (lambda h: _params(h)["mean"].update(bound=-1.0), None),
    (lambda h: _params(h)["mean"].update(bound="1"), None),
    (lambda h: _params(h)["mean"].pop("config"), None),
    (lambda h: _params(h)["mean"]["config"].update(mean_axis=0), None),
    (lambda h: _params(h)["mean"].update(levels=99), None),
    (None, lambda s: s.pop("MCOD")),
    (None, lambda s: s.pop("MANC")),
    (None, lambda s: s.update(MANC=s["MANC"][:-3])),
])
def test_a_damaged_mean_is_refused(header_change, section_change):
    stream = srnsz.compress(series_field((16, 10, 12), seed=2), 1e-3, "rel", mean_axis=0, tune="off")
    srnsz.decompress(rewritten(stream))  # the rewriting itself changes nothing
    with pytest.raises(StreamFormatError):
        srnsz.decompress(rewritten(stream, header_change, section_change))


def test_a_mean_bound_no_float_can_hold_is_refused():
    stream = srnsz.compress(series_field((16, 10, 12), seed=2), 1e-3, "rel", mean_axis=0, tune="off")
    for bound in (10**400, True, float("inf")):
        damaged = rewritten(stream, lambda h, b=bound: _params(h)["mean"].update(bound=b))
        with pytest.raises(StreamFormatError):
            srnsz.decompress(damaged)
        with pytest.raises(StreamFormatError):
            srnsz.info(damaged)
