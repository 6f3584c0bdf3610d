"""Metrics against direct formulas, the side-by-side benchmark, and the bench/eval plots from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run, smooth_field

from srnsz.eval import bench, peers
from srnsz.metrics import error_autocorrelation, pearson, quality, ssim


def _ssim_direct(a: np.ndarray, b: np.ndarray, value_range: float, width: int = 7) -> float:
    """Slow reference: loop over every full window."""
    c1, c2 = (0.01 * value_range) ** 2, (0.03 * value_range) ** 2
    values = []
    for start in np.ndindex(*(n - width + 1 for n in a.shape)):
        window = tuple(slice(s, s + width) for s in start)
        x, y = a[window].ravel(), b[window].ravel()
        mx, my = x.mean(), y.mean()
        vx, vy, cov = x.var(), y.var(), np.mean((x - mx) * (y - my))
        values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


@pytest.mark.parametrize("shape", [(20, 23), (9, 10, 11)])
def test_ssim_matches_the_direct_windowed_formula(shape):
    rng = np.random.default_rng(1)
    a = smooth_field(shape).astype(np.float64)
    b = a + rng.normal(0, 0.05, shape)
    value_range = float(np.ptp(a))
    assert ssim(a, b, value_range) == pytest.approx(_ssim_direct(a, b, value_range), rel=1e-9)
    assert ssim(a, a, value_range) == pytest.approx(1.0)
    assert ssim(a, b, value_range) < ssim(a, a + rng.normal(0, 0.005, shape), value_range) < 1.0


def test_pearson_autocorrelation_and_relative_error():
    rng = np.random.default_rng(2)
    x = rng.normal(size=5000)
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    assert abs(error_autocorrelation(rng.normal(size=(80, 80)))) < 0.05  # white noise
    smooth_error = smooth_field((80, 80)).astype(np.float64)
    assert error_autocorrelation(smooth_error) > 0.9
    a = smooth_field((30, 40)).astype(np.float64)
    q = quality(a, a + 0.01)
    assert q.max_rel_error == pytest.approx(0.01 / np.ptp(a))
    assert quality(a, a).error_autocorrelation == 0.0


def test_quality_mask_leaves_fill_values_out():
    a = smooth_field((40, 40)).astype(np.float64)
    a[:5] = 1e20
    b = a + 0.001
    b[:5] = 0.0  # whatever happens at fill cells is not compared
    q = quality(a, b, np.abs(a) < 1e19)
    assert q.max_abs_error == pytest.approx(0.001)
    assert q.psnr_db > 40


def test_bench_runs_every_available_codec_at_the_same_bound():
    data = smooth_field((24, 40, 36))
    codecs, skipped = bench.available_codecs(None)
    assert "srnsz-interp" in codecs and len(codecs) + len(skipped) == len(peers.list_codecs())
    rows = bench.bench_field("smooth", data, [1e-2, 1e-3], codecs)
    assert len(rows) == 2 * len(codecs)
    for r in rows:
        assert r.eb_abs == pytest.approx(r.eb_rel * float(np.ptp(data.astype(np.float64))))
        assert r.ratio > 1 and r.compress_mb_s > 0 and r.decompress_mb_s > 0
    assert all(r.bound_held and r.max_err_over_eb <= 1.0 for r in rows if r.codec == "srnsz-interp")


def test_bench_reports_a_violating_codec_instead_of_hiding_it(tmp_path):
    def sloppy_compress(data, eb):
        return peers.Compressed(data + 3 * eb, data.nbytes // 4)

    sloppy = peers.BenchCodec("sloppy", "adds 3 eb", sloppy_compress, lambda c, like: c.payload)
    rows = bench.bench_field("f", smooth_field((16, 16)), [1e-2], ["srnsz-interp", sloppy])
    bad = [r for r in rows if r.codec == "sloppy"][0]
    assert not bad.bound_held and bad.max_err_over_eb == pytest.approx(3.0, rel=1e-3)
    text = bench.summary(rows)
    assert "sloppy on f" in text and "VIOLATED" in bench.markdown_table(rows)
    bench.write_results(rows, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["bound_held"] for r in saved] == [True, False]


def test_bench_reports_a_failing_codec_and_carries_on():
    def crash(data, eb):
        raise RuntimeError("codec exploded")

    crashy = peers.BenchCodec("crashy", "fails", crash, lambda c, like: like)
    rows = bench.bench_field("f", smooth_field((16, 16)), [1e-2], [crashy, "srnsz-interp"])
    assert rows[0].error == "RuntimeError: codec exploded" and rows[1].bound_held
    assert "failed runs: crashy on f" in bench.summary(rows)
    assert "failed: RuntimeError" in bench.markdown_table(rows)
    assert "(1 runs failed)" in bench.overview_table(rows)


def test_cli_bench_writes_table_and_plots(tmp_path):
    out = tmp_path / "bench"
    proc = run("bench", "--codecs", "srnsz-interp", "--eb", "1e-2", "1e-3", "--out", str(out))
    assert "bound violations: none" in proc.stdout
    for name in ["results.csv", "results.json", "results.md", "rate_distortion.png", "errors_example.png"]:
        assert (out / name).stat().st_size > 0
    overview = (out / "results.md").read_text().splitlines()
    assert overview[0].startswith("| codec | rel 1e-02") and overview[2].startswith("| srnsz-interp |")
    run("bench", "--codecs", "srnsz-interp", "--eb", "1e-2", "--out", str(out), ok=False)  # no silent overwrite
    assert "invalid choice" in run("bench", "--codecs", "nope", "--out", str(tmp_path / "x"), ok=False).stderr


def test_cli_eval_plot(tmp_path):
    png = tmp_path / "eval.png"
    out = run("eval", "--example", "--eb", "1e-2", "--plot", str(png)).stdout
    assert png.stat().st_size > 10_000 and "SSIM" in out
    run("eval", "--example", "--eb", "1e-2", "--plot", str(png), ok=False)


def test_bench_survives_a_peer_that_crashes_the_interpreter():
    import os
    import signal

    def segfault(data, eb):
        os.kill(os.getpid(), signal.SIGKILL)  # like a segfault in native code, without faulthandler noise

    codec = peers.BenchCodec("segv", "dies", segfault, lambda c, like: like, isolated=True)
    rows = bench.bench_field("f", smooth_field((16, 16)), [1e-2], [codec, "srnsz-interp"])
    assert "crashed" in rows[0].error and rows[1].bound_held
