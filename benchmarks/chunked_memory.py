"""Peak memory of chunked compression: a field 4x larger than a memory budget, compressed and decompressed by
the CLI in child processes; peak RSS reported against the same commands on a tiny field (interpreter,
imports).

Usage: python benchmarks/chunked_memory.py [--budget-mb 64] [--chunk 64] [--dir /tmp]
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
    """(peak RSS in MB, seconds) of ``srnsz <args>`` in a child process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"srnsz {' '.join(args)} failed: {proc.stderr[-2000:]}")
    kb = next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("HWM"))
    return int(kb) / 1024, time.perf_counter() - t0


def run(field: Path, chunk: int, work: Path) -> tuple[float, float, float, float]:
    stream, back = work / f"{field.stem}.srnsz", work / f"{field.stem}.back.npy"
    c_mb, c_s = peak_rss_mb(["compress", str(field), "-o", str(stream), "--force", "--eb", "1e-3",
                             "--chunk", str(chunk), str(chunk), str(chunk)])
    d_mb, d_s = peak_rss_mb(["decompress", str(stream), "-o", str(back), "--force"])
    return c_mb, c_s, d_mb, d_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget-mb", type=float, default=64.0)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.dir))
    points = int(4 * args.budget_mb * 2**20 / 4)
    side = (points // (512 * 512), 512, 512)
    big, tiny = work / "big.npy", work / "tiny.npy"
    make_field(big, side)
    make_field(tiny, (args.chunk, args.chunk, args.chunk))
    base = run(tiny, args.chunk, work)
    got = run(big, args.chunk, work)
    size_mb = big.stat().st_size / 2**20
    original, back = np.load(big, mmap_mode="r"), np.load(work / "big.back.npy", mmap_mode="r")
    eb = 1e-3 * (float(original.max()) - float(original.min()))
    worst = max(float(np.abs(original[k].astype(np.float64) - back[k]).max()) for k in range(side[0]))
    print(f"field {side} float32 = {size_mb:.0f} MB, budget {args.budget_mb:.0f} MB, chunks {args.chunk}^3")
    print(f"compress  : peak RSS {got[0]:.0f} MB (tiny field: {base[0]:.0f} MB) -> +{got[0] - base[0]:.0f} MB "
          f"for the data, {got[1]:.1f} s ({size_mb / got[1]:.1f} MB/s)")
    print(f"decompress: peak RSS {got[2]:.0f} MB (tiny field: {base[2]:.0f} MB) -> +{got[2] - base[2]:.0f} MB "
          f"for the data, {got[3]:.1f} s ({size_mb / got[3]:.1f} MB/s)")
    print(f"max error / eb = {worst / eb:.4f}; ratio {big.stat().st_size / (work / 'big.srnsz').stat().st_size:.1f}")
    for p in work.iterdir():
        p.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
