"""PNG figures: rate-distortion curves, error maps, original/reconstruction/error side by side (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def require_matplotlib() -> None:
    """A clear SrnszError where matplotlib (the ``[train]`` extra) is not installed; call before the work."""
    from srnsz.errors import SrnszError

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SrnszError("figures need matplotlib: pip install 'srnsz[train]' (or leave out --plot; "
                         "bench: --no-plots)") from None


def _pyplot():
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def middle_slice(data: np.ndarray) -> np.ndarray:
    """A 2D view: the field itself if 2D, the middle slice along the slowest axes otherwise, 1D as one row."""
    while data.ndim > 2:
        data = data[data.shape[0] // 2]
    return data[None] if data.ndim == 1 else data


def rate_distortion(rows: list, path: Path, reference: str = "srnsz-interp") -> Path:
    """PSNR against bit rate, one panel per field, one line per codec."""
    plt = _pyplot()
    fields = list(dict.fromkeys(r.field for r in rows))
    cols = min(4, len(fields))
    nrows = -(-len(fields) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.2 * nrows), dpi=110, squeeze=False)
    codecs = list(dict.fromkeys(r.codec for r in rows))
    colours = plt.cm.tab20(np.linspace(0, 1, 20))[:: max(1, 20 // max(len(codecs), 1))]
    for ax, field in zip(axes.flat, fields):
        for i, codec in enumerate(codecs):
            pts = sorted((r.bit_rate, r.psnr_db) for r in rows if r.field == field and r.codec == codec and not r.error)
            if pts:
                ours = codec.startswith("srnsz")
                ax.plot(*zip(*pts), marker="os^vD<>ph*X"[i % 11], ms=3.5, lw=2.2 if codec == reference else 1.2,
                        ls="-" if ours else "--", color=colours[i % len(colours)], label=codec)
        ax.set_title(field, fontsize=9)
        ax.set_xlabel("bits per value")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(fields):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def error_maps(original: np.ndarray, recons: dict[str, np.ndarray], eb: float, path: Path, title: str) -> Path:
    """Middle-slice error (recon - original) of each codec, colour scale fixed to [-eb, eb]."""
    plt = _pyplot()
    cols = min(4, len(recons))
    rows = -(-len(recons) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows + 0.6), dpi=110, squeeze=False,
                             layout="constrained")
    for ax in list(axes.flat)[len(recons):]:
        ax.axis("off")
    base = middle_slice(original).astype(np.float64)
    for ax, (codec, recon) in zip(axes.flat, recons.items()):
        im = ax.imshow(middle_slice(recon).astype(np.float64) - base, cmap="RdBu_r", vmin=-eb, vmax=eb)
        ax.set_title(codec, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="error")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def side_by_side(original: np.ndarray, recon: np.ndarray, eb: float, path: Path, title: str = "") -> Path:
    """Original, reconstruction and error (scale [-eb, eb]) of the middle slice."""
    plt = _pyplot()
    a, b = middle_slice(original).astype(np.float64), middle_slice(recon).astype(np.float64)
    finite = np.isfinite(a)
    lo, hi = (np.min(a[finite]), np.max(a[finite])) if finite.any() else (0.0, 1.0)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), dpi=110)
    for ax, img, label in [(axes[0], a, "original"), (axes[1], b, "reconstruction")]:
        im = ax.imshow(img, cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(label)
        fig.colorbar(im, ax=ax, shrink=0.8)
    im = axes[2].imshow(b - a, cmap="RdBu_r", vmin=-eb, vmax=eb)
    axes[2].set_title(f"error (scale +-eb = {eb:.3g})")
    fig.colorbar(im, ax=axes[2], shrink=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
