"""Prequantization + Lorenzo on the integer grid, and the ae predictor's per-block mixing and checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_bound, smooth_field

import srnsz
from srnsz.decomposition import dualquant
from srnsz.decomposition.tiling import chunk_keys
from srnsz.predictors import blockwise


@pytest.mark.parametrize("shape", [(50,), (13, 17), (9, 10, 11), (3, 4, 5, 6)], ids=str)
@pytest.mark.parametrize("layers", [1, 2])
def test_block_decoding_equals_global_integration(shape, layers):
    rng = np.random.default_rng(0)
    d = rng.integers(-1000, 1000, shape)
    residual = dualquant.difference(d, layers)
    assert np.array_equal(dualquant.integrate(residual, layers), d)
    out = np.zeros_like(d)
    for block in chunk_keys(shape, (4,) * len(shape)):
        start = tuple(s.start for s in block)
        out[block] = dualquant.integrate_block(residual[block], out, start, layers)
    assert np.array_equal(out, d)


def test_prequantization_escapes_what_it_cannot_bound():
    data = np.array([0.0, 1.0, np.nan, np.inf, 1e30, -3.3e-7, 2.5], dtype=np.float32)
    pq = dualquant.prequantize(data, 0.01)
    assert pq.escaped.tolist() == [False, False, True, True, True, False, False]
    recon = dualquant.reconstruct(pq.d, 0.01, data.dtype, pq.escaped, pq.raw)
    assert_bound(data, recon, 0.01)


def test_lorenzo_picks_layers_and_is_exact_on_planes():
    ramp = np.add.outer(np.arange(64.0), 2 * np.arange(80.0))  # a plane: 1-layer residuals vanish inside
    stream = srnsz.compress(ramp, 0.5, "abs", predictor="lorenzo")
    assert srnsz.info(stream).predictor_params["layers"] in (1, 2)
    assert np.array_equal(srnsz.decompress(stream), ramp)
    assert len(stream) < ramp.nbytes / 50


def test_ae_blocks_mixed_with_lorenzo_decode_exactly(with_test_weights, monkeypatch):
    """Force a checkerboard of autoencoder and Lorenzo blocks so Lorenzo halos come from decoded AE blocks."""
    monkeypatch.setattr(blockwise, "choose_predictors", lambda costs: np.resize([0, 2, 1, 2], len(costs)))
    for shape in [(70, 90), (20, 19, 30)]:
        data = smooth_field(shape)
        stream = srnsz.compress(data, 1e-3, "rel", predictor="ae", model="test_ae", compete_interp=False,
                                device="cpu")
        info = srnsz.info(stream)
        params = info.predictor_params
        assert info.predictor == "ae" and params["blocks"]["ae"] > 0 and params["blocks"]["lorenzo2"] > 0
        recon = srnsz.decompress(stream)
        assert_bound(data, recon, srnsz.info(stream).error_bound["abs"])


@pytest.mark.parametrize("shape", [(64, 64), (24, 40, 36)], ids=str)
def test_ae_keeps_whichever_of_blocks_and_interp_is_smaller(shape, with_test_weights):
    data = smooth_field(shape)
    options = {"model": "test_ae", "device": "cpu"}
    chosen = srnsz.compress(data, 1e-2, "rel", predictor="ae", **options)
    blocks = srnsz.compress(data, 1e-2, "rel", predictor="ae", compete_interp=False, **options)
    interp = srnsz.compress(data, 1e-2, "rel")
    kept = srnsz.info(chosen).predictor
    assert kept == ("interp" if len(interp) < len(blocks) else "ae") or abs(len(interp) - len(blocks)) < 200
    assert len(chosen) <= min(len(interp), len(blocks)) + 200  # headers differ, payloads do not
    if kept == "interp":
        assert chosen == interp  # exactly the plain stream


def test_ae_refuses_other_weights_and_wrong_rank(with_test_weights, tmp_path, monkeypatch):
    data = smooth_field((40, 40))
    stream = srnsz.compress(data, 1e-3, "rel", predictor="ae", model="test_ae", compete_interp=False, device="cpu")
    recon = srnsz.decompress(stream)
    import shutil

    other = tmp_path / "other"
    shutil.copytree(with_test_weights, other)
    manifest = other / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"test_ae_2d"', '"renamed"').replace('"test_ae_3d"',
                                                                                         '"test_ae_2d"'))
    monkeypatch.setenv("SRNSZ_WEIGHTS", str(other))
    # the stream's weights are still there under another name: found by the hash it records
    assert np.array_equal(srnsz.decompress(stream), recon)
    entries = json.loads(manifest.read_text())
    del entries["renamed"]
    manifest.write_text(json.dumps(entries))
    with pytest.raises(srnsz.SrnszError, match="use the same weights"):
        srnsz.decompress(stream)


def test_ae_stream_with_few_autoencoder_blocks_decodes(monkeypatch, with_test_weights):
    """CPU inference depends on the batch: the compressor must predict the chosen blocks exactly as the decoder
    (only those latents, in the decoder's batches), whatever number of blocks it picks."""
    data = smooth_field((64, 96))
    for picked in ([4], [1, 3, 5]):
        pattern = np.array([2 if i in picked else 0 for i in range(6)])
        monkeypatch.setattr(blockwise, "choose_predictors", lambda costs, p=pattern: np.resize(p, len(costs)))
        stream = srnsz.compress(data, 1e-6, "rel", predictor="ae", model="test_ae", compete_interp=False,
                                device="cpu")
        assert srnsz.info(stream).predictor_params["blocks"]["ae"] == len(picked)
        assert_bound(data, srnsz.decompress(stream), srnsz.info(stream).error_bound["abs"])


@pytest.mark.parametrize("options", [{"batch": 0}, {"threads": 0}, {"threads": 2.0}])
def test_ae_inference_options_are_checked(options):
    with pytest.raises(srnsz.SrnszError, match="positive integers"):
        srnsz.compress(smooth_field((32, 32)), 1e-3, predictor="ae", **options)
