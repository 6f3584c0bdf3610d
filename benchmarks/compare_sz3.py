"""srnsz versus SZ3 (pysz, default config) on every field of ../shared/data at the same absolute bounds.

The absolute bound is rel * value range, where the range ignores NaN/Inf and fill values (|x| >= 1e19, the
ocean model's land cells), so both compressors get the same meaningful bound.
Usage: python benchmarks/compare_sz3.py [--rel 1e-2 1e-3 1e-4] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import srnsz
from srnsz.metrics import quality
from srnsz.predictors.interp import InterpPredictor

FILL = 1e19


def sz3_ratio(data: np.ndarray, eb: float) -> tuple[float, float, float]:
    """SZ3's (ratio, max error, PSNR) at absolute bound ``eb``."""
    from pysz import sz, szConfig, szErrorBoundMode

    c = szConfig()
    c.errorBoundMode, c.absErrorBound = szErrorBoundMode.ABS, eb
    blob, _ = sz.compress(data, c)
    out, _ = sz.decompress(blob, data.dtype, data.shape)
    return data.nbytes / blob.size, float(np.max(np.abs(out.astype(np.float64) - data))), quality(data, out).psnr_db


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rel", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = ap.parse_args()
    fields = sorted(Path(args.data).glob("*.npy"))
    if not fields:
        raise SystemExit(f"no .npy fields in {args.data}")
    print("| field | rel eb | srnsz CR | SZ3 CR | srnsz/SZ3 | srnsz PSNR | SZ3 PSNR | max err/eb (srnsz, SZ3) "
          "| srnsz MB/s c/d | tuning share |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    shares = []
    ratios = {rel: [] for rel in args.rel}
    for path in fields:
        data = np.load(path)
        valid = data[np.isfinite(data) & (np.abs(data) < FILL)]
        value_range = float(valid.max()) - float(valid.min())
        for rel in args.rel:
            eb = rel * value_range
            t0 = time.perf_counter()
            stream = srnsz.compress(data, eb, "abs")
            t1 = time.perf_counter()
            recon = srnsz.decompress(stream)
            t2 = time.perf_counter()
            InterpPredictor().tuned(data, eb)  # the same tuning compress ran, timed alone
            share = (time.perf_counter() - t2) / (t1 - t0)
            shares.append(share)
            q = quality(data, recon)
            ours = data.nbytes / len(stream)
            theirs, their_err, their_psnr = sz3_ratio(data, eb)
            ratios[rel].append(ours / theirs)
            mb = data.nbytes / 1e6
            print(f"| {path.stem} | {rel:g} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.3f} | {q.psnr_db:.2f} | "
                  f"{their_psnr:.2f} | {q.max_abs_error / eb:.4f}, {their_err / eb:.4f} | {mb / (t1 - t0):.1f} / "
                  f"{mb / (t2 - t1):.1f} | {share:.0%} |",
                  flush=True)
            assert q.max_abs_error <= eb and q.nonfinite_preserved, f"bound broken on {path.stem} at {rel}"
    for rel, r in ratios.items():
        print(f"rel {rel:g}: geometric mean srnsz/SZ3 = {np.exp(np.mean(np.log(r))):.3f}, min = {min(r):.3f}")
    print(f"tuning share of compression time: median {np.median(shares):.0%}, max {max(shares):.0%}")


if __name__ == "__main__":
    main()
