"""Peak memory of chunked compression: a field 4x larger than a memory limit, compressed and decompressed by the
CLI (``--chunk``) in child processes, each of whose whole peak RSS (VmHWM: interpreter and imports included)
must stay within the limit. Also prints the increment over the same commands on a one-chunk field, speed,
ratio and max error / bound. Exits 1 when a peak exceeds the limit or the bound breaks.

Usage: python benchmarks/chunked_memory.py [--limit-mb 128] [--chunk 64] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_field(path: Path, side: tuple[int, int, int]) -> None:
    """A smooth float32 field written slab by slab into a .npy memmap (never whole in memory)."""
    out = np.lib.format.open_memmap(path, "w+", np.float32, side)
    y, x = np.meshgrid(np.linspace(0, 6, side[1]), np.linspace(0, 6, side[2]), indexing="ij")
    for k in range(side[0]):
        out[k] = (np.sin(x + 0.01 * k) * np.cos(y) + 0.1 * np.sin(5 * x * y)).astype(np.float32)
    out.flush()
    del out


# The child reports its own high-water mark (VmHWM): rusage of a child would also count the parent's pages
# at fork time.
CHILD = ("import sys; from srnsz.cli import main; rc = main(sys.argv[1:]); "
         "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
         "print('HWM', hwm, file=sys.stderr); sys.exit(rc)")


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of ``srnsz <args>`` in a child process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"srnsz {' '.join(args)} failed: {proc.stderr[-2000:]}")
    kb = next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("HWM"))
    return int(kb) / 1024, time.perf_counter() - t0


def run(field: Path, chunk: int, work: Path) -> tuple[float, float, float, float]:
    stream, back = work / f"{field.stem}.srnsz", work / f"{field.stem}.back.npy"
    # one thread: the limit is per process, and each thread (or worker process) holds chunks of its own
    c_mb, c_s = peak_rss_mb(["compress", str(field), "-o", str(stream), "--force", "--eb", "1e-3",
                             "--chunk", str(chunk), str(chunk), str(chunk), "--threads", "1"])
    d_mb, d_s = peak_rss_mb(["decompress", str(stream), "-o", str(back), "--force", "--threads", "1"])
    return c_mb, c_s, d_mb, d_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit-mb", type=float, default=128.0, help="memory limit in MiB; the field is 4x larger")
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.dir))
    side = (int(4 * args.limit_mb * 2**20 / 4) // (512 * 512), 512, 512)
    big, tiny = work / "big.npy", work / "tiny.npy"
    try:
        make_field(big, side)
        make_field(tiny, (args.chunk, args.chunk, args.chunk))
        base = run(tiny, args.chunk, work)
        got = run(big, args.chunk, work)
        size_mb = big.stat().st_size / 2**20
        original, back = np.load(big, mmap_mode="r"), np.load(work / "big.back.npy", mmap_mode="r")
        eb = 1e-3 * (float(original.max()) - float(original.min()))
        worst = max(float(np.abs(original[k].astype(np.float64) - back[k]).max()) for k in range(side[0]))
        ratio = big.stat().st_size / (work / "big.srnsz").stat().st_size
    finally:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    print(f"field {side} float32 = {size_mb:.0f} MiB = {size_mb / args.limit_mb:.1f} x the limit of "
          f"{args.limit_mb:.0f} MiB; chunks {args.chunk}^3")
    ok = worst <= eb
    for name, peak, seconds, tiny_peak in (("compress", *got[:2], base[0]), ("decompress", *got[2:], base[2])):
        within = peak <= args.limit_mb
        ok &= within
        print(f"{name:10s}: peak RSS {peak:.0f} MiB ({'within' if within else 'OVER'} {args.limit_mb:.0f} MiB); "
              f"one-chunk field {tiny_peak:.0f} MiB -> +{peak - tiny_peak:.0f} MiB for the data; "
              f"{seconds:.1f} s ({size_mb / seconds:.1f} MiB/s)")
    print(f"max error / eb = {worst / eb:.4f}; ratio {ratio:.1f}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
