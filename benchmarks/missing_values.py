"""Cost of missing values: the same field at the same absolute bound with its fills kept as data, as NaN, replaced
by the mean of the valid values, and masked (srnsz's missing-value model: fills detected or declared).

    python benchmarks/missing_values.py [--rel 1e-2 1e-3] [--data ../shared/data]

Fields: ipsl_tos (its own 1e20 land, 31%), and shared 2D/3D fields given the tos land mask (resized to their last
two axes, nearest neighbour) filled with 1e20, so the masks cut real data of other kinds, and two 3D fields (24
levels) under a land that grows with depth from 31% to 50%. The bound is rel x the range of the valid values.
Columns: compression ratios, masked / mean-filled, and compress MB/s of the masked run.
Run it with PYTHONPATH pointing at an older checkout to see that release's figures (columns it cannot make: -).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import srnsz

FILL = np.float32(1e20)
MASKED_FIELDS = ["echam5_t_17x96x192", "ncep_climo_Z3_17x64x128", "cosmo_hsurf_438x450", "sperr_vorticity_512x512",
                 "cth_pressure"]

DEPTH_FIELDS = ["sperr_vorticity_41x128x128", "grayscott_pypde_64"]


def tos_land(data_dir: Path) -> np.ndarray:
    tos = np.load(data_dir / "ipsl_tos_24x170x180.npy")
    return tos[0] == FILL


def masked_copy(name: str, data_dir: Path, land2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(data_dir / f"{name}.npy").astype(np.float32)
    rows = (np.arange(data.shape[-2]) * land2d.shape[0] // data.shape[-2])
    cols = (np.arange(data.shape[-1]) * land2d.shape[1] // data.shape[-1])
    land = np.broadcast_to(land2d[np.ix_(rows, cols)], data.shape).copy()
    data[land] = FILL
    return data, land


def depth_copy(name: str, data_dir: Path, land2d: np.ndarray, levels: int = 24, bottom: float = 0.5
               ) -> tuple[np.ndarray, np.ndarray]:
    """The first ``levels`` levels of a 3D shared field under an ocean-like land that grows with depth: the tos land
    (resized) at the top, then at each level the sea points nearest a coast, up to ``bottom`` of the level at the
    deepest one (land growing from 31% to 50%), filled with 1e20."""
    from scipy import ndimage

    data = np.load(data_dir / f"{name}.npy")[:levels].astype(np.float32)
    rows = (np.arange(data.shape[-2]) * land2d.shape[0] // data.shape[-2])
    cols = (np.arange(data.shape[-1]) * land2d.shape[1] // data.shape[-1])
    top = land2d[np.ix_(rows, cols)]
    distance = ndimage.distance_transform_edt(~top)
    land = np.empty(data.shape, bool)
    for k in range(data.shape[0]):
        share = top.mean() + (bottom - top.mean()) * k / max(data.shape[0] - 1, 1)
        land[k] = top | (distance <= np.quantile(distance, share))
    data[land] = FILL
    return data, land


def ratio(data: np.ndarray, eb: float, **kw) -> float:
    try:
        return data.nbytes / len(srnsz.compress(data, eb, "abs", **kw))
    except (TypeError, ValueError):  # an older srnsz without this option: fills are data there
        return data.nbytes / len(srnsz.compress(data, eb, "abs")) if kw.get("detect_fills") is False \
            else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rel", type=float, nargs="+", default=[1e-2, 1e-3])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args()
    data_dir = Path(args.data)
    fields = [("ipsl_tos", np.load(data_dir / "ipsl_tos_24x170x180.npy"))]
    land2d = tos_land(data_dir)
    fields += [(f"{n}+tos_land", masked_copy(n, data_dir, land2d)[0]) for n in MASKED_FIELDS
               if (data_dir / f"{n}.npy").exists()]
    fields += [(f"{n}[:24]+land_growing_with_depth", depth_copy(n, data_dir, land2d)[0]) for n in DEPTH_FIELDS
               if (data_dir / f"{n}.npy").exists()]
    print(f"srnsz from {Path(srnsz.__file__).parent}")
    print("| field | land | rel | CR fills kept | CR NaN | CR mean-filled | CR masked | masked / mean | "
          "masked MB/s c |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, data in fields:
        land = data == FILL
        valid = data[~land].astype(np.float64)
        nan = data.copy()
        nan[land] = np.nan
        mean = data.copy()
        mean[land] = valid.mean()
        for rel in args.rel:
            eb = rel * float(valid.max() - valid.min())
            kept = ratio(data, eb, detect_fills=False)
            t0 = time.perf_counter()
            masked = ratio(data, eb, fill_value=1e20)
            seconds = time.perf_counter() - t0
            cr_mean = ratio(mean, eb)
            print(f"| {name} | {land.mean():.0%} | {rel:g} | {kept:.1f} | {ratio(nan, eb):.1f} | {cr_mean:.1f} | "
                  f"{masked:.1f} | {masked / cr_mean:.3f} | {data.nbytes / 1e6 / seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
