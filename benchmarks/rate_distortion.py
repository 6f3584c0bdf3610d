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
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import srnsz
from srnsz.eval.metrics import quality

MISSING_FIELDS = {"ipsl_tos_24x170x180"}


def _srnsz(data: np.ndarray, db: float) -> tuple[int, np.ndarray]:
    stream = srnsz.compress(data, db, mode="psnr")
    return len(stream), srnsz.decompress(stream)


def _sperr(data: np.ndarray, db: float) -> tuple[int, np.ndarray]:
    from numcodecs_wasm_sperr import Sperr

    codec = Sperr(mode="psnr", psnr=float(db))
    blob = codec.encode(np.ascontiguousarray(data))
    return int(np.asarray(blob).nbytes), np.asarray(codec.decode(blob)).reshape(data.shape)


def _sz3(data: np.ndarray, db: float) -> tuple[int, np.ndarray]:
    from pysz import sz, szConfig, szErrorBoundMode

    config = szConfig()
    config.errorBoundMode, config.psnrErrorBound = szErrorBoundMode.PSNR, float(db)
    blob, _ = sz.compress(np.ascontiguousarray(data), config)
    out, _ = sz.decompress(blob, data.dtype, data.shape)
    return int(blob.size), out


CODECS: dict[str, Callable[[np.ndarray, float], tuple[int, np.ndarray]]] = {
    "srnsz": _srnsz, "sperr": _sperr, "sz3": _sz3}


def curve(codec: Callable, data: np.ndarray, targets: list[float]) -> tuple[list[tuple[float, float]], int, float]:
    """[(PSNR reached, bits/value)] sorted by PSNR, how many targets were missed (PSNR reached below the target),
    and the compress+decompress seconds of the whole curve."""
    points = []
    missed = 0
    start = time.perf_counter()
    for db in targets:
        nbytes, recon = codec(data, db)
        reached = quality(data, recon).psnr_db
        missed += reached < db
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
    parser.add_argument("--targets", type=float, nargs="+", default=list(range(40, 101, 5)))
    parser.add_argument("--at", type=float, nargs="+", default=[50.0, 70.0, 90.0])
    parser.add_argument("--fields", nargs="*", default=None, help="field names (default: every shared .npy)")
    parser.add_argument("--codecs", nargs="+", default=list(CODECS))
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--plot", default=None, help="write the curves of every field to this PNG")
    args = parser.parse_args()
    data_dir = Path(args.data)
    names = args.fields or sorted(p.stem for p in data_dir.glob("*.npy") if p.stem not in MISSING_FIELDS)
    print(f"srnsz from {Path(srnsz.__file__).parent}")
    header = " | ".join(f"{c} b/v" for c in args.codecs)
    ours = "srnsz" in args.codecs
    ratios = [c for c in args.codecs if c != "srnsz"] if ours else []
    print(f"| field | PSNR | {header} | " + " | ".join(f"srnsz / {c}" for c in ratios) + " |")
    print("|---|---|" + "---|" * (len(args.codecs) + len(ratios)))
    curves: dict[str, dict[str, list[tuple[float, float]]]] = {}
    seconds = dict.fromkeys(args.codecs, 0.0)
    shortfalls = 0
    relative: dict[str, list[float]] = {c: [] for c in ratios}
    for name in names:
        data = np.load(data_dir / f"{name}.npy")
        curves[name] = {}
        for codec in args.codecs:
            curves[name][codec], missed, s = curve(CODECS[codec], data, args.targets)
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
            print(f"| {name} | {db:g} | " + " | ".join(cells) + " |", flush=True)
    for c, values in relative.items():
        if values:
            geo = math.exp(np.mean(np.log(values)))
            print(f"srnsz / {c}: geo-mean {geo:.3f}, max {max(values):.3f}, points above 1.03: "
                  f"{sum(v > 1.03 for v in values)} of {len(values)}")
    if ours:
        print(f"srnsz targets missed (reached PSNR below the target): {shortfalls}")
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
