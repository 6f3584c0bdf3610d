"""The psnr mode: dead-zone quantization, the bound search, and streams tuned for bits at a target PSNR."""

from __future__ import annotations

import math

import numpy as np
import pytest

import srnsz
from srnsz.bounds import search_bound
from srnsz.metrics import psnr_over, quality
from srnsz.quantizer import ESCAPE, held_bound, quantize, reconstruct
from tests.conftest import assert_bound, smooth_field


@pytest.mark.parametrize("bias", [0.0, 0.05, 0.1, 0.2, 0.45])
def test_dead_zone_quantizer_holds_its_wider_bound_and_rounds_towards_zero(bias: float) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(scale=5.0, size=20000).astype(np.float32)
    pred = rng.normal(size=x.size)
    eb = 0.37
    q = quantize(x, pred, eb, bias)
    recon = reconstruct(pred, q.codes, eb, x.dtype, q.escaped)
    assert np.array_equal(recon, q.recon)  # the decoder needs no bias
    err = np.abs(x.astype(np.float64) - recon)
    assert err.max() <= held_bound(eb, bias)
    nearest = np.rint((x - pred) / (2 * eb))
    ok = q.codes != ESCAPE
    assert np.all(np.abs(q.codes[ok]) <= np.abs(nearest[ok]))  # never away from zero
    if bias == 0:
        assert np.array_equal(q.codes[ok], nearest[ok]) and err.max() <= eb
    else:
        assert np.count_nonzero(q.codes == 0) > np.count_nonzero(nearest == 0)


def test_round_bias_is_validated() -> None:
    data = smooth_field((20, 20))
    for bad in (-0.1, 0.5, "x"):
        with pytest.raises(srnsz.SrnszError, match="round_bias"):
            srnsz.compress(data, 1e-2, round_bias=bad)
    for bad in (-0.1, 1.5, "x"):
        with pytest.raises(srnsz.SrnszError, match="lone_slack"):
            srnsz.compress(data, 50.0, "psnr", lone_slack=bad)


def _lone_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, pred, the codes lone codes leave at eb 1, bias 0, slack 0.25) on a 6x8 grid (axes 0, 1) in a batch of 2
    blocks (axis 2). Residuals of 1.2 (code 1, within the slack): alone at (1, 1); a pair (4, 1)-(4, 2) (one
    neighbour each, two if the batch axis counted); a cross centred on (2, 5) (four neighbours: kept) whose arms have
    one each. 1.8 (code 1, beyond the slack) alone at (5, 7): kept. -1.2 at (0, 0) in the second block only."""
    residual = np.zeros((6, 8, 2))
    for i, j in ((1, 1), (4, 1), (4, 2), (2, 5), (1, 5), (3, 5), (2, 4), (2, 6)):
        residual[i, j] = 1.2
    residual[5, 7] = 1.8
    residual[0, 0, 1] = -1.2
    rng = np.random.default_rng(3)
    pred = rng.normal(0.0, 10.0, residual.shape)
    kept = np.zeros(residual.shape, np.int16)
    kept[2, 5], kept[5, 7] = 1, 1
    return (pred + residual + rng.uniform(-0.05, 0.05, residual.shape)).astype(np.float32), pred, kept


def test_lone_codes_are_dropped_within_the_slack_and_only_where_lone() -> None:
    from srnsz.quantizer import LONE_NEIGHBOURS, drop_lone_codes, held_bound, quantize, reconstruct

    x, pred, kept = _lone_case()
    q = quantize(x.ravel(), pred.ravel(), 1.0)
    assert np.count_nonzero(q.codes) == 9 * 2 + 1 and LONE_NEIGHBOURS == 1
    dropped = drop_lone_codes(q, x.ravel(), pred.ravel(), x.shape, (0, 1), 1.0, 0.0, 0.25)
    assert np.array_equal(dropped.codes.reshape(x.shape), kept)
    err = np.abs(x.astype(np.float64).ravel() - dropped.recon.astype(np.float64))
    assert err.max() <= held_bound(1.0, 0.0, 0.25) == 1.5
    assert np.array_equal(reconstruct(pred.ravel(), dropped.codes, 1.0, x.dtype, dropped.escaped), dropped.recon)
    assert np.count_nonzero(q.codes) == 9 * 2 + 1  # q itself is left alone
    # a dead zone widens the slack's bound alike; nothing lone within it: q comes back as it is
    assert held_bound(1.0, 0.1, 0.25) == pytest.approx(1.7)
    assert drop_lone_codes(q, x.ravel(), pred.ravel() + 5.0, x.shape, (0, 1), 1.0, 0.0, 0.25) is q


def test_the_ssim_mode_keeps_lone_codes(monkeypatch) -> None:
    # dropping lone codes is chosen for the PSNR: here the psnr tuner at the ssim mode's PSNR would drop them (the
    # stream would differ), but the ssim mode keeps them (what it did before lone codes)
    from srnsz.predictors.interp import InterpPredictor

    data = smooth_field((20, 30, 40), seed=3, noise=0.002)
    stream = srnsz.compress(data, 0.99, "ssim", wavelet=False)
    assert stream == srnsz.compress(data, 0.99, "ssim", lone_slack=0.0, wavelet=False)
    tune_for_psnr = InterpPredictor.for_psnr
    monkeypatch.setattr(InterpPredictor, "for_psnr", lambda self, *args, for_ssim=False: tune_for_psnr(self, *args))
    assert srnsz.compress(data, 0.99, "ssim", wavelet=False) != stream


def test_lone_slack_is_for_the_quality_modes_and_states_its_bound() -> None:
    data = smooth_field((30, 40, 50), noise=0.002)
    assert srnsz.compress(data, 1e-3) == srnsz.compress(data, 1e-3, lone_slack=0.0)
    with pytest.raises(srnsz.SrnszError, match="psnr"):
        srnsz.compress(data, 1e-3, lone_slack=0.25)
    plain = srnsz.compress(data, 50.0, "psnr", round_bias=0.1, lone_slack=0.0, restoration=False, wavelet=False)
    lone = srnsz.compress(data, 50.0, "psnr", round_bias=0.1, lone_slack=0.25, restoration=False, wavelet=False)
    recon = srnsz.decompress(lone)
    stated = srnsz.info(lone).error_bound["abs"]
    assert_bound(data, recon, stated)
    assert stated == pytest.approx(1.7 * srnsz.info(lone).predictor_params["eb"])
    assert psnr_over(data, recon) >= 50.0 and psnr_over(data, srnsz.decompress(plain)) >= 50.0
    # at one bound: fewer bytes, for errors beyond the bins (within the slack)
    from srnsz.predictors.interp import InterpPredictor

    eb = 0.1  # a low rate (0.9 bits per value here); at high rates dropping may not pay
    kept, dropped = (InterpPredictor("off", lone_slack=s).encode(data, eb) for s in (0.0, 0.25))
    assert dropped.nbytes < kept.nbytes and dropped.max_error == pytest.approx(1.5 * eb) and kept.max_error is None
    assert eb < np.abs(dropped.recon.astype(np.float64) - data).max() <= 1.5 * eb


def test_bound_search_finds_the_largest_bound_within_the_tolerance() -> None:
    calls = []

    def psnr_at(eb: float) -> float:  # 20 dB per decade, offset like a field with a non-uniform error
        calls.append(eb)
        return 40.0 - 17.0 * math.log10(eb)

    found, trials = search_bound(psnr_at, 60.0, 1e-3, tolerance_db=0.02, max_trials=8)
    assert found is not None and 60.0 <= found.db <= 60.02
    assert found.eb == max(t.eb for t in trials if t.db >= 60.0)
    assert len(calls) == len(trials) <= 8
    never, trials = search_bound(lambda eb: 10.0, 60.0, 1.0, max_trials=3)
    assert never is None and len(trials) == 3
    perfect, _ = search_bound(lambda eb: math.inf, 60.0, 1.0, max_trials=2)
    assert perfect is not None and perfect.eb == 10.0  # no error at all: larger bounds are tried


@pytest.mark.parametrize("shape,target", [((64, 96), 45.0), ((64, 96), 80.0), ((24, 40, 36), 55.0),
                                          ((3000,), 70.0)])
def test_psnr_mode_meets_the_target_closely_and_holds_its_stated_bound(shape, target) -> None:
    data = smooth_field(shape)
    stream = srnsz.compress(data, target, "psnr")
    recon = srnsz.decompress(stream)
    reached = quality(data, recon).psnr_db
    assert target <= reached <= target + 0.3  # the bound is searched, not estimated once
    assert_bound(data, recon, srnsz.info(stream).error_bound["abs"])
    assert srnsz.info(stream).error_bound["mode"] == "psnr"


def test_psnr_mode_needs_fewer_bits_than_the_uniform_error_estimate() -> None:
    """What the psnr mode did before: compress at the bound a uniform error would need (then tighten if short)."""
    # smooth waves with a trace of noise: low rates at moderate PSNRs, where the dead zone pays
    data = smooth_field((48, 64, 64), seed=5, waves=6, top=8.0, noise=0.002)
    value_range = float(data.max() - data.min())
    for target, at_most in ((45.0, 0.95), (60.0, 1.0)):
        tuned = srnsz.compress(data, target, "psnr")
        naive = srnsz.compress(data, value_range * math.sqrt(3) * 10 ** (-target / 20), "abs")
        assert psnr_over(data, srnsz.decompress(naive)) >= target
        assert len(tuned) < at_most * len(naive)


def test_psnr_mode_with_missing_values_and_float64() -> None:
    data = smooth_field((40, 50), dtype=np.float64)
    data[5:15, 10:30] = 1e20
    data[0, 0] = np.nan
    stream = srnsz.compress(data, 50.0, "psnr", fill_value=1e20)
    recon = srnsz.decompress(stream)
    valid = np.isfinite(data) & (data != 1e20)
    assert psnr_over(data, recon, valid) >= 50.0
    assert np.array_equal(recon[~valid].view("u8"), data[~valid].view("u8"))
    assert_bound(np.where(valid, data, 0), np.where(valid, recon, 0), srnsz.info(stream).error_bound["abs"])


def test_round_bias_is_for_the_psnr_mode_only() -> None:
    data = smooth_field((30, 40, 50))
    assert srnsz.compress(data, 1e-3) == srnsz.compress(data, 1e-3, round_bias=0.0)
    with pytest.raises(srnsz.SrnszError, match="psnr"):
        srnsz.compress(data, 1e-3, round_bias=0.1)
    fixed = srnsz.compress(data, 50.0, "psnr", round_bias=0.2, restoration=False, wavelet=False)
    stated = srnsz.info(fixed).error_bound["abs"]
    assert_bound(data, srnsz.decompress(fixed), stated)
    assert stated == pytest.approx(1.4 * srnsz.info(fixed).predictor_params["eb"])
    restored = srnsz.compress(data, 50.0, "psnr", round_bias=0.2, wavelet=False)  # the clip adds half the held bound
    assert srnsz.info(restored).restoration
    stated = srnsz.info(restored).error_bound["abs"]
    assert_bound(data, srnsz.decompress(restored), stated)
    assert stated == pytest.approx(1.5 * 1.4 * srnsz.info(restored).predictor_params["eb"])


@pytest.mark.parametrize("case", ["one", "constant", "all_nan", "huge", "tiny", "inf", "float64_4d"])
@pytest.mark.parametrize("target", [1.0, 60.0, 200.0])
def test_psnr_mode_edge_cases_keep_the_target_and_the_stated_bound(case, target) -> None:
    rng = np.random.default_rng(1)
    data = {"one": np.array([3.5], np.float32), "constant": np.full((9, 11), 7.0, np.float32),
            "all_nan": np.full((5, 5), np.nan, np.float32),
            "huge": (rng.standard_normal((30, 30)) * 1e30).astype(np.float32),
            "tiny": (rng.standard_normal((30, 30)) * 1e-30).astype(np.float32),
            "inf": np.where(rng.random((20, 20)) < 0.1, np.inf, rng.standard_normal((20, 20))).astype(np.float32),
            "float64_4d": rng.standard_normal((5, 6, 7, 8)).cumsum(3)}[case]
    stream = srnsz.compress(data, target, "psnr")
    recon = srnsz.decompress(stream)
    assert_bound(data, recon, srnsz.info(stream).error_bound["abs"])
    assert psnr_over(data, recon) >= target  # inf where nothing is lost (constant, all NaN)


def test_ssim_mode_meets_its_target_and_states_its_bound() -> None:
    from srnsz.bounds import ssim_db
    from srnsz.metrics import ssim_over

    data = smooth_field((40, 56, 48), seed=2)
    for target in (0.99, 0.9999):
        stream = srnsz.compress(data, target, "ssim")
        recon = srnsz.decompress(stream)
        reached = ssim_over(data, recon)
        assert target <= reached and ssim_db(reached) <= ssim_db(target) + 0.5  # searched, not just safe
        assert_bound(data, recon, srnsz.info(stream).error_bound["abs"])
        assert srnsz.info(stream).error_bound["mode"] == "ssim"
    masked = smooth_field((30, 40), seed=3)
    masked[:5] = np.nan
    assert ssim_over(masked, srnsz.decompress(srnsz.compress(masked, 0.999, "ssim"))) >= 0.999
    for bad, match in ((1.0, "below 1"), (0.0, "> 0"), (1.5, "below 1")):
        with pytest.raises(srnsz.SrnszError, match=match):
            srnsz.compress(data, bad, "ssim")
    with pytest.raises(srnsz.SrnszError, match="2 or more dimensions"):
        srnsz.compress(smooth_field((500,)), 0.99, "ssim")
    with pytest.raises(srnsz.SrnszError, match="previews"):
        srnsz.compress(data, 0.99, "ssim", predictor="lorenzo")


def test_the_search_metrics_agree_with_quality() -> None:
    """psnr_over and rmse_over (what the searches use) give exactly quality()'s figures, masked or not."""
    from srnsz.metrics import rmse_over

    data = smooth_field((30, 40)).astype(np.float64)
    data[3, 4] = np.nan
    recon = data + np.random.default_rng(0).uniform(-1e-3, 1e-3, data.shape)
    for mask in (None, data > 0, np.zeros(data.shape, bool)):
        full = quality(data, recon, mask)
        assert rmse_over(data, recon, mask) == full.rmse
        assert psnr_over(data, recon, mask) == full.psnr_db


def test_the_bound_search_survives_an_exact_trial_inside_its_bracket() -> None:
    from srnsz.bounds import search_bound

    def quality_at(eb: float) -> float:  # exact (inf dB) below 5e-4, short of the target above
        return math.inf if eb < 5e-4 else 40.0

    found, trials = search_bound(quality_at, 50.0, 1e-4, 0.02, 8)
    assert found is not None and found.db >= 50.0 and all(math.isfinite(t.eb) for t in trials)
