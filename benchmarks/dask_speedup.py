"""Serial versus Dask (LocalCluster, 2 workers) compression of a multi-chunk Zarr store with srnsz.

Usage: python benchmarks/dask_speedup.py [--dir /tmp]
Prints both times, the speed-up, and whether every chunk file is byte-identical.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from srnsz.io.distributed import compress_zarr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import zarr
    from dask.distributed import Client, LocalCluster

    work = Path(tempfile.mkdtemp(dir=args.dir))
    rng = np.random.default_rng(0)
    x = np.cumsum(np.cumsum(rng.normal(size=(128, 128, 256)), axis=1), axis=2).astype(np.float32)
    zarr.create_array(str(work / "src.zarr"), data=x, chunks=(64, 64, 64))
    eb = 1e-3 * float(x.max() - x.min())
    t = time.perf_counter()
    compress_zarr(str(work / "src.zarr"), str(work / "serial.zarr"), eb)
    serial = time.perf_counter() - t
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as c:
        t = time.perf_counter()
        compress_zarr(str(work / "src.zarr"), str(work / "dask.zarr"), eb, client=c)
        parallel = time.perf_counter() - t
    files = [p for p in (work / "serial.zarr").rglob("*") if p.is_file() and "c" in p.parts]
    same = all(p.read_bytes() == (work / "dask.zarr" / p.relative_to(work / "serial.zarr")).read_bytes()
               for p in files)
    err = float(np.abs(zarr.open_array(str(work / "dask.zarr"))[:] - x).max())
    print(f"{x.shape} float32 in {len(files)} chunks: serial {serial:.2f} s, dask 2 workers {parallel:.2f} s, "
          f"speed-up {serial / parallel:.2f}x, chunk bytes identical: {same}, max error / eb {err / eb:.4f}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
