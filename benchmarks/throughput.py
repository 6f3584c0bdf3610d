"""Throughput and peak memory on a smooth 256^3 float32 field, srnsz beside SZ3 (pysz) in the same run.

Each measurement runs in a fresh subprocess so peak RSS (ru_maxrss) is its own; peak memory is reported as
RSS growth over the process's RSS after the input was loaded, and as a multiple of the input size.
Usage: python benchmarks/throughput.py [--size 256] [--rel 1e-3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def smooth_field(n: int) -> np.ndarray:
    """Deterministic smooth float32 n^3 field: a few low-frequency modes."""
    z, y, x = np.meshgrid(*[np.linspace(0, 1, n, dtype=np.float32)] * 3, indexing="ij", sparse=True)
    f = np.sin(2 * np.pi * (x + 0.5 * y)) * np.cos(3 * np.pi * z) + 0.5 * np.exp(-((x - .5)**2 + (y - .4)**2) * 8)
    return (f + 0.2 * np.sin(5 * np.pi * (y + z))).astype(np.float32)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(tool: str, n: int, rel: float, repeat: int) -> dict:
    data = smooth_field(n)
    eb = rel * float(data.max() - data.min())
    base = rss_mb()
    if tool == "srnsz":
        import srnsz
        enc = lambda: srnsz.compress(data, eb, "abs")  # noqa: E731
        dec = srnsz.decompress
    else:
        from pysz import sz, szConfig, szErrorBoundMode

        def enc():
            c = szConfig()
            c.errorBoundMode, c.absErrorBound = szErrorBoundMode.ABS, eb
            return sz.compress(data, c)[0]

        def dec(blob):
            return sz.decompress(blob, np.float32, data.shape)[0]
    tc, td = [], []
    for _ in range(repeat):
        t = time.perf_counter(); blob = enc(); tc.append(time.perf_counter() - t)  # noqa: E702
        after_c = rss_mb()
        t = time.perf_counter(); out = dec(blob); td.append(time.perf_counter() - t)  # noqa: E702
    err = float(np.max(np.abs(out.astype(np.float64) - data)))
    mb = data.nbytes / 1e6
    return {"tool": tool, "ratio": data.nbytes / len(blob), "compress_MBps": mb / min(tc),
            "decompress_MBps": mb / min(td), "peak_compress_x_input": (after_c - base) / mb,
            "peak_total_x_input": (rss_mb() - base) / mb, "max_err_over_eb": err / eb}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rel", type=float, default=1e-3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.size, args.rel, args.repeat)))
        return
    print(f"field: smooth float32 {args.size}^3 ({args.size**3 * 4 / 1e6:.0f} MB), rel eb {args.rel}")
    print(f"{'tool':8s} {'ratio':>8s} {'comp MB/s':>10s} {'decomp MB/s':>12s} {'peak/input':>11s} {'maxerr/eb':>10s}")
    for tool in ("srnsz", "sz3"):
        proc = subprocess.run([sys.executable, __file__, "--one", tool, "--size", str(args.size), "--rel",
                               str(args.rel), "--repeat", str(args.repeat)], capture_output=True, text=True)
        if proc.returncode:
            print(f"{tool}: failed: {proc.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(proc.stdout)
        print(f"{tool:8s} {r['ratio']:8.2f} {r['compress_MBps']:10.1f} {r['decompress_MBps']:12.1f} "
              f"{r['peak_total_x_input']:10.2f}x {r['max_err_over_eb']:10.4f}")


if __name__ == "__main__":
    main()
