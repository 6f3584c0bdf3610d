"""Choose a bound for a target PSNR, then look at where the error is.

    python examples/psnr_error_map.py OUT_DIR [--psnr 60]

Compresses a generated 2-D field for the fewest bits at the target PSNR, reports the PSNR reached and the pointwise
bound the stream holds, and writes OUT_DIR/error_map.png: the field, its reconstruction and the error in units of
that bound.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import srnsz  # noqa: E402
from srnsz.examples import example_field  # noqa: E402


def main(out_dir: Path, target_db: float = 60.0) -> dict[str, float]:
    """Runs the example into ``out_dir``; returns the PSNR reached, the stated bound and the ratio."""
    out_dir.mkdir(parents=True, exist_ok=True)
    field = example_field((160, 192))
    stream = srnsz.compress(field, target_db, mode="psnr")
    recon = srnsz.decompress(stream)
    info = srnsz.info(stream)
    eb = float(info.error_bound["abs"])  # the pointwise bound the stream holds
    quality = srnsz.metrics.quality(field, recon)
    error = recon.astype(np.float64) - field
    assert quality.psnr_db >= target_db and np.abs(error).max() <= eb

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    for ax, image, title, cmap in ((axes[0], field, "original", "viridis"),
                                   (axes[1], recon, f"reconstruction, ratio {info.ratio:.1f}", "viridis"),
                                   (axes[2], error / eb, f"error / bound ({quality.psnr_db:.1f} dB)", "RdBu_r")):
        shown = ax.imshow(image, cmap=cmap, vmin=-1 if cmap == "RdBu_r" else None, vmax=1 if cmap == "RdBu_r" else None)
        ax.set_title(title)
        fig.colorbar(shown, ax=ax, shrink=0.8)
    fig.savefig(out_dir / "error_map.png", dpi=80)
    plt.close(fig)
    print(f"target {target_db} dB: reached {quality.psnr_db:.2f} dB at ratio {info.ratio:.1f}; "
          f"pointwise bound {eb:.3g}; wrote {out_dir / 'error_map.png'}")
    return {"psnr_db": quality.psnr_db, "eb": eb, "ratio": info.ratio}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for the PNG this example writes")
    parser.add_argument("--psnr", type=float, default=60.0, help="target PSNR in dB (default 60)")
    args = parser.parse_args()
    main(args.out_dir, args.psnr)
