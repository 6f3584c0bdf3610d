"""What cutting a large field into parts costs in ratio: the default stream (parts as the writer decides) against
one stream of the whole field, on generated 3D fields with a power-law energy spectrum.

    python benchmarks/parts_cost.py [--n 192] [--slopes 1.67 3 5] [--rel 1e-2 1e-3 1e-4]

Per field (n^3 values, energy spectrum k^-slope, seed 0: the steeper, the smoother) and bound: the parts the default
stream has, its bytes over one stream's, the one stream's ratio, and both compression times (2 threads). Run it with
PYTHONPATH pointing at an older checkout to see that release's figures.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import srnsz
from srnsz.decomposition.parts import PartLayout


def power_law_field(n: int, slope: float) -> np.ndarray:
    """An n^3 float32 field whose energy spectrum falls as k^-slope (seed 0)."""
    rng = np.random.default_rng(0)
    freq = np.fft.fftfreq(n)
    k = np.sqrt(freq[:, None, None] ** 2 + freq[None, :, None] ** 2 + np.fft.rfftfreq(n)[None, None, :] ** 2)
    k[0, 0, 0] = 1.0
    spectrum = np.fft.rfftn(rng.standard_normal((n, n, n))) * k ** (-slope / 2.0 - 1.0)
    return np.fft.irfftn(spectrum, s=(n, n, n), axes=(0, 1, 2)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=192)
    parser.add_argument("--slopes", type=float, nargs="+", default=[1.67, 3.0, 5.0])
    parser.add_argument("--rel", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4])
    args = parser.parse_args()
    print("| slope | rel | one stream's ratio | parts | parts / one stream (bytes) | seconds default / one stream |")
    print("|---|---|---|---|---|---|")
    for slope in args.slopes:
        data = power_law_field(args.n, slope)
        for rel in args.rel:
            eb = rel * float(data.max() - data.min())
            start = time.perf_counter()
            default = srnsz.compress(data, eb, "abs", threads=2)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            one = srnsz.compress(data, eb, "abs", threads=2, parts=PartLayout(points=1 << 62))
            one_seconds = time.perf_counter() - start
            assert np.abs(srnsz.decompress(default).astype(np.float64) - data).max() <= eb
            print(f"| {slope:g} | {rel:g} | {data.nbytes / len(one):.1f} | {srnsz.info(default).parts} | "
                  f"{len(default) / len(one):.4f} | {seconds:.1f} / {one_seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
