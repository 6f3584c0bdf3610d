"""A Dask array to a Zarr store compressed with srnsz, chunk by chunk in parallel, and back.

    python examples/dask_to_zarr.py OUT_DIR [--workers 2]

Builds a 3-D Dask array lazily (each chunk generated on demand), stores it in OUT_DIR/field.zarr with the srnsz
Zarr v3 serializer at an absolute bound (one bound for every chunk), reads it back with Dask and checks the bound.
With --workers N the chunks are compressed by a local Dask cluster of N processes instead of threads.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import zarr

from srnsz.io.codec import SrnszZarr3

SHAPE, CHUNKS, EB = (48, 64, 64), (24, 32, 32), 1e-3


def block(block_info: dict | None = None) -> np.ndarray:
    """One chunk of a smooth field, computed from its place in the array."""
    (z0, z1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    z, y, x = np.meshgrid(np.arange(z0, z1), np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
    return (np.sin(x / 9.0 + z / 17.0) * np.cos(y / 11.0) + 0.1 * np.sin((x + y) / 3.0)).astype(np.float32)


def main(out_dir: Path, workers: int = 0) -> dict[str, float]:
    """Runs the example into ``out_dir``; returns the ratio and the largest error over the bound."""
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = tuple((c,) * (n // c) for n, c in zip(SHAPE, CHUNKS))  # SHAPE is a whole number of CHUNKS
    field = da.map_blocks(block, chunks=grid, dtype=np.float32, meta=np.array((), np.float32))
    path = out_dir / "field.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: the srnsz codec is not part of the Zarr v3 specification
        target = zarr.create_array(str(path), shape=SHAPE, chunks=CHUNKS, dtype=np.float32,
                                   serializer=SrnszZarr3(eb=EB), compressors=None, overwrite=True)
        if workers:
            from dask.distributed import Client, LocalCluster

            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster):
                da.store(field, target, lock=False)
        else:
            da.store(field, target, lock=False, scheduler="threads")
        back = da.from_zarr(str(path)).compute()
    original = field.compute()
    worst = float(np.abs(back - original).max()) / EB
    assert worst <= 1.0, worst
    stored = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    ratio = original.nbytes / stored
    print(f"{path}: {len(list(path.glob('c/*/*/*')))} chunks, ratio {ratio:.1f}, max error {worst:.3f} x eb")
    return {"ratio": ratio, "max_error_over_eb": worst}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for the Zarr store this example writes")
    parser.add_argument("--workers", type=int, default=0, help="Dask worker processes (default 0: threads)")
    args = parser.parse_args()
    main(args.out_dir, args.workers)
