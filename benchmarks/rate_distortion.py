"""Rate-distortion at equal PSNR: bits/value of srnsz, SPERR and SZ3 at the same PSNR, each codec driven by its own
PSNR mode, its curve interpolated at the compared PSNRs.

    python benchmarks/rate_distortion.py [--targets 40 45 ... 100] [--at 50 70 90] [--fields a b] [--plot rd.png]

For every field each codec compresses at every target PSNR of its own mode (srnsz ``mode="psnr"``, SPERR
``mode="psnr"``, SZ3 ``PSNR``); the PSNR each actually reached (range / rmse, float64, computed here) and its
bits/value make its curve; bits at the compared PSNRs are read off it by linear interpolation (in PSNR), not
extrapolated (a PSNR outside a curve's reached span is left out of the comparison for every codec). Fields with
missing values (ipsl_tos: 1e20 land) are left out: the peers have no missing-value model. Columns: each codec's
bits/value, and srnsz / SPERR, srnsz / SZ3 (below 1: srnsz needs fewer bits). Run it with PYTHONPATH pointing at an
older checkout to see that release's figures.

``--metric ssim``: the same at equal SSIM (srnsz in its ssim mode; SPERR and SZ3 have none, so they run their PSNR
modes and their SSIM is measured), qualities on the ssim_db scale -10 log10(1 - SSIM) (20 dB: SSIM 0.99).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import srnsz
from srnsz.bounds import ssim_db
from srnsz.metrics import psnr_over, ssim_over

MISSING_FIELDS = {"ipsl_tos_24x170x180"}
PEER_PSNRS = [float(db) for db in range(25, 101, 5)]  # the peers' PSNR-mode targets when the metric is SSIM


def _srnsz(data: np.ndarray, db: float, metric: str) -> tuple[int, np.ndarray]:
    """srnsz in its own quality mode: psnr at ``db``, or ssim at the SSIM whose ssim_db is ``db``."""
    stream = (srnsz.compress(data, db, mode="psnr") if metric == "psnr"
              else srnsz.compress(data, 1.0 - 10.0 ** (-db / 10.0), mode="ssim"))
    return len(stream), srnsz.decompress(stream)


def _sperr(data: np.ndarray, db: float, metric: str) -> tuple[int, np.ndarray]:
    from numcodecs_wasm_sperr import Sperr

    codec = Sperr(mode="psnr", psnr=float(db))
    blob = codec.encode(np.ascontiguousarray(data))
    return int(np.asarray(blob).nbytes), np.asarray(codec.decode(blob)).reshape(data.shape)


def _sz3(data: np.ndarray, db: float, metric: str) -> tuple[int, np.ndarray]:
    from pysz import sz, szConfig, szErrorBoundMode

    config = szConfig()
    config.errorBoundMode, config.psnrErrorBound = szErrorBoundMode.PSNR, float(db)
    blob, _ = sz.compress(np.ascontiguousarray(data), config)
    out, _ = sz.decompress(blob, data.dtype, data.shape)
    return int(blob.size), out


def measure(data: np.ndarray, recon: np.ndarray, metric: str) -> float:
    """The quality on a dB scale: the PSNR, or ssim_db = -10 log10(1 - SSIM)."""
    return psnr_over(data, recon) if metric == "psnr" else ssim_db(ssim_over(data, recon))


CODECS: dict[str, Callable[[np.ndarray, float, str], tuple[int, np.ndarray]]] = {
    "srnsz": _srnsz, "sperr": _sperr, "sz3": _sz3}


def curve(codec: Callable, data: np.ndarray, targets: list[float], metric: str, own: bool
          ) -> tuple[list[tuple[float, float]], int, float]:
    """[(quality reached in dB, bits/value)] sorted by quality, how many targets were missed (quality reached below
    the target; ``own``: the targets are in the metric, else they are PSNRs of a peer's mode), and the
    compress+decompress seconds of the whole curve."""
    points = []
    missed = 0
    start = time.perf_counter()
    for db in targets:
        nbytes, recon = codec(data, db, metric)
        reached = measure(data, recon, metric)
        missed += own and reached < db
        points.append((reached, 8.0 * nbytes / data.size))
    return sorted(points), missed, time.perf_counter() - start


def bits_at(points: list[tuple[float, float]], db: float) -> float:
    """Bits/value at ``db`` by linear interpolation between the two reached PSNRs around it (nan outside)."""
    psnrs = np.array([p for p, _ in points])
    bits = np.array([b for _, b in points])
    if not psnrs.size or db < psnrs.min() or db > psnrs.max():
        return float("nan")
    # a codec's bits grow with PSNR; keep the cheapest point at or above each PSNR (the curve's lower envelope)
    order = np.argsort(psnrs)
    psnrs, bits = psnrs[order], np.minimum.accumulate(bits[order][::-1])[::-1]
    return float(np.interp(db, psnrs, bits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metric", choices=("psnr", "ssim"), default="psnr",
                        help="ssim: srnsz in its ssim mode, the peers in their PSNR modes; qualities as ssim_db")
    parser.add_argument("--targets", type=float, nargs="+", default=None,
                        help="in dB of the metric (default psnr 40..100, ssim_db 10..50 by 5)")
    parser.add_argument("--at", type=float, nargs="+", default=None,
                        help="qualities compared, in dB of the metric (default psnr 50 70 90, ssim_db 20 30 40)")
    parser.add_argument("--fields", nargs="*", default=None, help="field names (default: every shared .npy)")
    parser.add_argument("--codecs", nargs="+", default=list(CODECS))
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--plot", default=None, help="write the curves of every field to this PNG")
    args = parser.parse_args()
    if args.targets is None:
        args.targets = [float(t) for t in (range(40, 101, 5) if args.metric == "psnr" else range(10, 51, 5))]
    if args.at is None:
        args.at = [50.0, 70.0, 90.0] if args.metric == "psnr" else [20.0, 30.0, 40.0]
    data_dir = Path(args.data)
    names = args.fields or sorted(p.stem for p in data_dir.glob("*.npy") if p.stem not in MISSING_FIELDS)
    print(f"srnsz from {Path(srnsz.__file__).parent}")
    header = " | ".join(f"{c} b/v" for c in args.codecs)
    ours = "srnsz" in args.codecs
    ratios = [c for c in args.codecs if c != "srnsz"] if ours else []
    label = "PSNR" if args.metric == "psnr" else "SSIM (ssim_db)"
    print(f"| field | {label} | {header} | " + " | ".join(f"srnsz / {c}" for c in ratios) + " |")
    print("|---|---|" + "---|" * (len(args.codecs) + len(ratios)))
    curves: dict[str, dict[str, list[tuple[float, float]]]] = {}
    seconds = dict.fromkeys(args.codecs, 0.0)
    shortfalls = 0
    relative: dict[str, list[float]] = {c: [] for c in ratios}
    for name in names:
        data = np.load(data_dir / f"{name}.npy")
        curves[name] = {}
        for codec in args.codecs:
            own = codec == "srnsz" or args.metric == "psnr"
            curves[name][codec], missed, s = curve(CODECS[codec], data, args.targets if own else PEER_PSNRS,
                                                   args.metric, own)
            seconds[codec] += s
            if codec == "srnsz":
                shortfalls += missed
        for db in args.at:
            bits = {c: bits_at(curves[name][c], db) for c in args.codecs}
            if any(math.isnan(b) for b in bits.values()):
                continue
            cells = [f"{bits[c]:.3f}" for c in args.codecs]
            for c in ratios:
                relative[c].append(bits["srnsz"] / bits[c])
                cells.append(f"{bits['srnsz'] / bits[c]:.3f}")
            at = f"{db:g}" if args.metric == "psnr" else f"{1 - 10 ** (-db / 10):.5g} ({db:g})"
            print(f"| {name} | {at} | " + " | ".join(cells) + " |", flush=True)
    for c, values in relative.items():
        if values:
            geo = math.exp(np.mean(np.log(values)))
            print(f"srnsz / {c}: geo-mean {geo:.3f}, max {max(values):.3f}, points above 1.03: "
                  f"{sum(v > 1.03 for v in values)} of {len(values)}")
    if ours:
        print(f"srnsz targets missed (reached {args.metric} below the target): {shortfalls}")
    print("seconds per codec (all curves, compress + decompress): " +
          ", ".join(f"{c} {s:.1f}" for c, s in seconds.items()))
    if args.plot:
        _plot(curves, args.plot)


def _plot(curves: dict[str, dict[str, list[tuple[float, float]]]], path: str) -> None:
    from types import SimpleNamespace

    from srnsz.eval.plots import rate_distortion

    rows = [SimpleNamespace(field=name, codec=codec, bit_rate=bits, psnr_db=db, error=None)
            for name, by_codec in curves.items() for codec, points in by_codec.items() for db, bits in points]
    rate_distortion(rows, Path(path), reference="srnsz")


if __name__ == "__main__":
    main()
