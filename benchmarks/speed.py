"""Speed side by side: srnsz (one stream per field; chunked with 1 and N threads on a large field), srnsz's fast
profile, SZ3, SPERR, ZFP; and srnsz's scaling with threads on one stream.

    python benchmarks/speed.py [--rel 1e-2 1e-3 1e-4] [--large-mb 256] [--threads 2] [--codecs srnsz sz3 ...]
    python benchmarks/speed.py --scaling [--scaling-mb 64 256] [--large-rel 1e-3] [--threads 2]

Scaling (``--scaling``): srnsz.compress / srnsz.decompress of one stream with threads = 1, 2, ... up to --threads
(default: the cores available), best and fast profiles, on generated fields of --scaling-mb MB (a power-law
spectrum, seed 0: 256^3 for 64 MB, 256 x 512 x 512 for 256 MB; cached under /tmp/srnsz-bench) and on the shared
fields together (total MB over total seconds), each run in a child process. Rows "one part" code the field as one
stream, as before format 1.11 (parts switched off in the child): the ratio and speed the parts are judged against.
Peak memory: the growth of the parent's RSS over its RSS with the input loaded, and the largest worker's RSS, as
multiples of the input. Same bytes: every thread count's stream hashed against threads=1.

Shared fields (``../shared/data/*.npy`` without missing values: the peers have no missing-value model): every codec
at the same absolute bound (rel x range), one process, one core; per bound the total MB over total seconds, both
ways, and the geometric-mean ratio. Large field: a generated smooth float32 field of about ``--large-mb`` MB,
srnsz chunked (128^3 chunks) with threads=1 and threads=N (the streams must be the same bytes), and the peers on the
whole array; MB/s both ways and peak memory (RSS growth of a child process over its RSS with the input loaded, as
a multiple of the input). Run it with PYTHONPATH pointing at an older checkout to see that release's srnsz figures.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MISSING_FIELDS = {"ipsl_tos_24x170x180"}
CHUNK = 128


def _compressors() -> dict:
    """name -> (compress(data, eb) -> blob, decompress(blob, like) -> array, size(blob) -> bytes)."""
    def srnsz_pair(profile: str = "best"):
        import srnsz
        options = {"profile": profile} if profile != "best" else {}  # older checkouts have no profiles
        return (lambda d, eb: srnsz.compress(d, eb, "abs", **options), lambda b, like: srnsz.decompress(b), len)

    def sz3_pair():
        from pysz import sz, szConfig, szErrorBoundMode

        def compress(d, eb):
            config = szConfig()
            config.errorBoundMode, config.absErrorBound = szErrorBoundMode.ABS, eb
            return sz.compress(np.ascontiguousarray(d), config)[0]

        return compress, lambda b, like: sz.decompress(b, like.dtype, like.shape)[0], lambda b: int(b.size)

    def sperr_pair():
        from numcodecs_wasm_sperr import Sperr

        return (lambda d, eb: Sperr(mode="pwe", pwe=float(eb)).encode(np.ascontiguousarray(d)),
                lambda b, like: np.asarray(Sperr(mode="pwe", pwe=1.0).decode(b)).reshape(like.shape),
                lambda b: int(np.asarray(b).nbytes))

    def zfp_pair():
        import zfpy

        return (lambda d, eb: zfpy.compress_numpy(np.ascontiguousarray(d), tolerance=eb),
                lambda b, like: zfpy.decompress_numpy(b), len)

    return {"srnsz": srnsz_pair, "srnsz-fast": lambda: srnsz_pair("fast"), "sz3": sz3_pair, "sperr": sperr_pair,
            "zfp": zfp_pair}


def large_field(megabytes: float) -> np.ndarray:
    """A smooth float32 field of about ``megabytes`` MB (n x 512 x 512), built plane by plane."""
    n = max(1, round(megabytes * 1e6 / (4 * 512 * 512)))
    y, x = np.meshgrid(np.linspace(0, 6, 512), np.linspace(0, 6, 512), indexing="ij")
    out = np.empty((n, 512, 512), np.float32)
    for k in range(n):
        out[k] = np.sin(x + 0.01 * k) * np.cos(y + 0.003 * k) + 0.1 * np.sin(5 * x * y / 36 + 0.02 * k)
    return out


def shared(args: argparse.Namespace) -> None:
    data_dir = Path(args.data)
    fields = [np.load(p) for p in sorted(data_dir.glob("*.npy")) if p.stem not in MISSING_FIELDS]
    total_mb = sum(d.nbytes for d in fields) / 1e6
    pairs = _compressors()
    print(f"shared fields: {len(fields)}, {total_mb:.1f} MB; srnsz from {Path(__import__('srnsz').__file__).parent}")
    print("| codec | rel | compress MB/s | decompress MB/s | geo-mean ratio |")
    print("|---|---|---|---|---|")
    for name in args.codecs:
        compress, decompress, size = pairs[name]()
        for rel in args.rel:
            tc = td = 0.0
            logs = []
            for d in fields:
                eb = rel * (float(d.max()) - float(d.min()))
                t = time.perf_counter()
                blob = compress(d, eb)
                tc += time.perf_counter() - t
                t = time.perf_counter()
                decompress(blob, d)
                td += time.perf_counter() - t
                logs.append(math.log(d.nbytes / size(blob)))
            print(f"| {name} | {rel:g} | {total_mb / tc:.2f} | {total_mb / td:.2f} | {math.exp(np.mean(logs)):.2f} |",
                  flush=True)


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key + ":"))


def _reset_peak() -> float:
    """Reset the peak RSS to the current RSS (Linux; elsewhere the peak includes building the input) and return
    the current RSS in MB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_mb("VmRSS")
    except OSError:
        return _rss_mb()


def _rss_mb() -> float:
    """Peak RSS (MB) since the last reset."""
    try:
        return _status_mb("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one_large(spec: dict) -> dict:
    """In a child: compress and decompress the large field with one codec; seconds, sizes, peak memory."""
    data = large_field(spec["mb"])
    eb = spec["rel"] * float(data.max() - data.min())
    base = _reset_peak()
    if spec["codec"] in ("srnsz", "srnsz-fast"):
        from srnsz.io import chunked

        buf = io.BytesIO()
        t = time.perf_counter()
        options = {"profile": "fast"} if spec["codec"] == "srnsz-fast" else {}
        chunked.compress_chunked(data, buf, eb, "abs", chunk=(CHUNK,) * 3, threads=spec["threads"], **options)
        tc = time.perf_counter() - t
        peak_c = _rss_mb() - base
        blob = buf.getvalue()
        t = time.perf_counter()
        chunked.decompress_chunked(io.BytesIO(blob), threads=spec["threads"])
        td = time.perf_counter() - t
        nbytes, digest = len(blob), __import__("hashlib").sha256(blob).hexdigest()[:16]
    else:
        compress, decompress, size = _compressors()[spec["codec"]]()
        t = time.perf_counter()
        blob = compress(data, eb)
        tc = time.perf_counter() - t
        peak_c = _rss_mb() - base
        t = time.perf_counter()
        decompress(blob, data)
        td = time.perf_counter() - t
        nbytes, digest = size(blob), ""
    peak = _rss_mb() - base
    return {"c": tc, "d": td, "bytes": nbytes, "digest": digest, "peak_c": peak_c, "peak": peak,
            "mb": data.nbytes / 1e6}


def large(args: argparse.Namespace) -> None:
    print(f"\nlarge field: about {args.large_mb} MB float32, rel {args.large_rel:g} (srnsz: chunks of {CHUNK}^3)")
    print("| codec | threads | compress MB/s | decompress MB/s | ratio | peak memory c / c+d (x input) |")
    print("|---|---|---|---|---|---|")
    runs = [("srnsz", 1), ("srnsz", args.threads)] + [(c, 1) for c in args.codecs if c != "srnsz"]
    results = {}
    for codec, threads in runs:
        if codec not in args.codecs:
            continue
        spec = {"codec": codec, "threads": threads, "mb": args.large_mb, "rel": args.large_rel}
        child = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                               text=True, timeout=3600)
        if child.returncode != 0:
            print(f"| {codec} | {threads} | failed: {child.stderr.strip().splitlines()[-1:]} |||")
            continue
        r = json.loads(child.stdout.strip().splitlines()[-1])
        results[codec, threads] = r
        ratio = r["mb"] * 1e6 / r["bytes"]
        print(f"| {codec} | {threads} | {r['mb'] / r['c']:.2f} | {r['mb'] / r['d']:.2f} | {ratio:.1f} | "
              f"{r['peak_c'] / r['mb']:.2f} / {r['peak'] / r['mb']:.2f} |", flush=True)
    one, many = results.get(("srnsz", 1)), results.get(("srnsz", args.threads))
    if one and many and args.threads > 1:
        print(f"srnsz threads={args.threads} vs 1: compress {one['c'] / many['c']:.2f}x, decompress "
              f"{one['d'] / many['d']:.2f}x, same bytes: {one['digest'] == many['digest']}")


def scaling_field(megabytes: int) -> Path:
    """A generated float32 field of ``megabytes`` MB (64: 256^3; 256: 256 x 512 x 512; else n x 256 x 256) with a
    power-law spectrum (k^-3.5 energy, seed 0), saved once under /tmp/srnsz-bench."""
    shape = {64: (256, 256, 256), 256: (256, 512, 512)}.get(megabytes, (max(1, megabytes * 4), 256, 256))
    path = Path("/tmp/srnsz-bench") / f"spectral_{'x'.join(map(str, shape))}.npy"
    if not path.exists():
        rng = np.random.default_rng(0)
        spectrum = np.fft.rfftn(rng.standard_normal(shape, dtype=np.float32))
        k = np.meshgrid(*[np.fft.fftfreq(n).astype(np.float32) for n in shape[:-1]],
                        np.fft.rfftfreq(shape[-1]).astype(np.float32), indexing="ij", sparse=True)
        k2 = sum(a * a for a in k)
        k2[(0,) * len(shape)] = 1.0
        spectrum *= k2 ** np.float32(-3.5 / 4)
        field = np.fft.irfftn(spectrum, s=shape, axes=tuple(range(len(shape)))).astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, field / field.std())
    return path


def _one_scaling(spec: dict) -> dict:
    """In a child: one stream of each field of ``spec`` with ``threads``; seconds, bytes, digest, peak memory."""
    import hashlib

    import srnsz
    from srnsz.decomposition.parts import DEFAULT_LAYOUT, PartLayout

    layout = PartLayout(points=1 << 62) if spec["one_part"] else DEFAULT_LAYOUT
    fields = [np.load(p) for p in spec["paths"]]
    base = _reset_peak()
    tc = td = 0.0
    nbytes, digest = 0, hashlib.sha256()
    logs = []
    for data in fields:
        eb = spec["rel"] * float(data.max() - data.min())
        t = time.perf_counter()
        blob = srnsz.compress(data, eb, "abs", profile=spec["profile"], threads=spec["threads"], parts=layout)
        tc += time.perf_counter() - t
        peak_c = _rss_mb() - base
        t = time.perf_counter()
        srnsz.decompress(blob, threads=spec["threads"])
        td += time.perf_counter() - t
        nbytes += len(blob)
        digest.update(blob)
        logs.append(math.log(data.nbytes / len(blob)))
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    mb = sum(d.nbytes for d in fields) / 1e6
    return {"c": tc, "d": td, "bytes": nbytes, "digest": digest.hexdigest()[:16], "peak_c": peak_c,
            "peak": _rss_mb() - base, "worker": worker, "mb": mb, "geo_ratio": math.exp(np.mean(logs))}


def scaling(args: argparse.Namespace) -> None:
    import os

    cores = args.threads
    targets = [(f"{mb} MB generated", [str(scaling_field(mb))]) for mb in args.scaling_mb]
    shared_paths = [str(p) for p in sorted(Path(args.data).glob("*.npy")) if p.stem not in MISSING_FIELDS]
    if shared_paths:
        targets.append((f"shared fields ({len(shared_paths)})", shared_paths))
    print(f"scaling at rel {args.large_rel:g}, threads 1..{cores}, the fastest of {args.repeat} runs each; load "
          f"before: {os.getloadavg()}")
    print("| field | profile | threads | compress MB/s | decompress MB/s | speedup c / d | ratio | vs one part | "
          "same bytes | peak memory c / c+d / worker (x input) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, paths in targets:
        for profile in ("best", "fast"):
            runs = [(1, True)] + [(t, False) for t in range(1, cores + 1)]
            results = {}
            for threads, one_part in runs:
                spec = {"paths": paths, "rel": args.large_rel, "profile": profile, "threads": threads,
                        "one_part": one_part}
                tries = []
                for _ in range(args.repeat):
                    child = subprocess.run([sys.executable, __file__, "--child-scaling", json.dumps(spec)],
                                           capture_output=True, text=True, timeout=7200)
                    if child.returncode != 0:
                        break
                    tries.append(json.loads(child.stdout.strip().splitlines()[-1]))
                if child.returncode != 0:
                    print(f"| {label} | {profile} | {threads} | failed: {child.stderr.strip().splitlines()[-1:]} |")
                    continue
                r = results[threads, one_part] = {**tries[0], "c": min(t["c"] for t in tries),
                                                  "d": min(t["d"] for t in tries)}
                first = results.get((1, False), r)
                whole = results.get((1, True), r)
                print(f"| {label} | {profile} | {'one part, 1' if one_part else threads} | {r['mb'] / r['c']:.2f} | "
                      f"{r['mb'] / r['d']:.2f} | {first['c'] / r['c']:.2f} / {first['d'] / r['d']:.2f} | "
                      f"{r['mb'] * 1e6 / r['bytes']:.2f} (geo {r['geo_ratio']:.2f}) | "
                      f"{whole['bytes'] / r['bytes']:.4f} | {r['digest'] == first['digest']} | "
                      f"{r['peak_c'] / r['mb']:.2f} / {r['peak'] / r['mb']:.2f} / {r['worker'] / r['mb']:.2f} |",
                      flush=True)
    print(f"load after: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rel", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4])
    parser.add_argument("--codecs", nargs="+", default=["srnsz", "srnsz-fast", "sz3", "sperr", "zfp"])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--large-mb", type=float, default=256.0, help="0: skip the large field")
    parser.add_argument("--large-rel", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=None, help="default: 2; with --scaling the cores available")
    parser.add_argument("--scaling", action="store_true", help="only the scaling table (see above)")
    parser.add_argument("--scaling-mb", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeat", type=int, default=1, help="--scaling: runs per row, the fastest kept")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-scaling", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_one_large(json.loads(args.child))))
        return
    if args.child_scaling:
        print(json.dumps(_one_scaling(json.loads(args.child_scaling))))
        return
    if args.scaling:
        from srnsz.parallel import available_cores

        args.threads = args.threads or available_cores()
        scaling(args)
        return
    args.threads = args.threads or 2
    shared(args)
    if args.large_mb > 0:
        large(args)


if __name__ == "__main__":
    main()
