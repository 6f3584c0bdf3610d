"""What the memory layout of a 3D field costs: srnsz's ratio on each permutation of its axes (the array transposed and
made contiguous before compressing), against the layout as stored.

    python benchmarks/axis_layout.py [--rel 1e-2 1e-3] [--data ../shared/data]

The coder reads each code's neighbours along the contiguous axis and the traversal cuts chunks along it, so a field
whose smoothest axis comes first (a long time axis stored slowest) can code smaller transposed. srnsz does not
permute axes itself; this measures what it would gain. Fields: the 3D shared fields and the CCSM members of
timeseries/ (ipsl_tos is left out: its land would need the same permutation of the mask, which srnsz handles, but
its figures belong to benchmarks/missing_values.py).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

import srnsz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rel", type=float, nargs="+", default=[1e-2, 1e-3])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args()
    data_dir = Path(args.data)
    paths = sorted(data_dir.glob("*.npy")) + sorted((data_dir / "timeseries").glob("ccsm*.npy"))
    print(f"srnsz from {Path(srnsz.__file__).parent}")
    print("| field | rel | CR as stored | best permutation | its CR | gain |")
    print("|---|---|---|---|---|---|")
    for path in paths:
        data = np.load(path)
        if data.ndim != 3 or path.stem.startswith("ipsl"):
            continue
        for rel in args.rel:
            eb = rel * float(data.max() - data.min())
            ratios = {perm: data.nbytes / len(srnsz.compress(np.ascontiguousarray(data.transpose(perm)), eb, "abs"))
                      for perm in itertools.permutations(range(3))}
            best = max(ratios, key=ratios.get)
            print(f"| {path.stem} | {rel:g} | {ratios[(0, 1, 2)]:.1f} | {best} | {ratios[best]:.1f} | "
                  f"{ratios[best] / ratios[(0, 1, 2)]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
