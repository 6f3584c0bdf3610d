"""Quality and size metrics, in float64 over the finite values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srnsz.bounds import finite_range


@dataclass(frozen=True)
class Quality:
    """Distortion of a reconstruction against its original, over the compared (finite, unmasked) values."""

    max_abs_error: float
    rmse: float
    psnr_db: float  # 20 log10(value range / rmse)
    nrmse: float  # rmse / value range
    nonfinite_preserved: bool  # NaN/Inf positions and values identical
    max_rel_error: float = float("nan")  # max abs error / value range
    pearson: float = float("nan")  # correlation of original and reconstruction
    ssim: float = float("nan")  # mean windowed SSIM (7-wide windows, 2D or 3D; nan for 1D)
    error_autocorrelation: float = float("nan")  # lag-1 autocorrelation of the error, mean over axes


def nonfinite_preserved(original: np.ndarray, recon: np.ndarray) -> bool:
    """NaN/Inf of ``original`` sit at the same places in ``recon`` with the same bits."""
    finite = np.isfinite(original)
    bits = f"u{original.itemsize}"
    return bool(np.array_equal(original[~finite].view(bits), recon[~finite].view(bits)))


def max_finite_error(original: np.ndarray, recon: np.ndarray) -> float:
    """max |x - x'| in float64 over the finite x (NaN if a reconstruction there is NaN; 0 if none is finite)."""
    finite = np.isfinite(original)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(original[finite].astype(np.float64) - recon[finite].astype(np.float64))
    if not err.size:
        return 0.0
    return float("nan") if np.isnan(err).any() else float(err.max())


def bound_held(original: np.ndarray, recon: np.ndarray, eb: float) -> bool:
    """|x - x'| <= eb (in float64) for every finite x, and non-finite values preserved bit for bit."""
    return bool(max_finite_error(original, recon) <= eb) and nonfinite_preserved(original, recon)


def psnr_db(rmse: float, value_range: float) -> float:
    """20 log10(range / rmse): inf for no error, -inf for a zero range."""
    if rmse == 0:
        return float("inf")
    return float(20 * np.log10(value_range / rmse)) if value_range > 0 else float("-inf")


def _compared(original: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, float]:
    """(``original`` in float64, the compared points, their value range): the finite values of ``original`` where
    ``mask`` is True (all finite ones without a mask); what every metric here compares."""
    a = original.astype(np.float64, copy=False)
    valid = np.isfinite(a) if mask is None else np.isfinite(a) & mask
    if mask is None:
        return a, valid, finite_range(original)
    return a, valid, finite_range(a, ~mask)


def _rmse(a: np.ndarray, valid: np.ndarray, recon: np.ndarray) -> float:
    if not valid.any():
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        err = a[valid] - recon[valid].astype(np.float64)
    return float(np.sqrt(np.mean(err**2)))


def rmse_over(original: np.ndarray, recon: np.ndarray, mask: np.ndarray | None = None) -> float:
    """RMSE of ``recon`` as :func:`quality` computes it (same points; 0 when there are none), alone."""
    a, valid, _ = _compared(original, mask)
    return _rmse(a, valid, recon)


def psnr_over(original: np.ndarray, recon: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR (dB) of ``recon`` as :func:`quality` computes it (same points, same range), alone: for searches that
    need nothing else."""
    a, valid, value_range = _compared(original, mask)
    if not valid.any():
        return psnr_db(0.0, 0.0)
    return psnr_db(_rmse(a, valid, recon), value_range)


def ssim_over(original: np.ndarray, recon: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM of ``recon`` as :func:`quality` computes it (same points: the others count as 0 on both sides;
    same range), alone."""
    a, valid, value_range = _compared(original, mask)
    if not valid.any():
        return 1.0
    b = recon.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        return ssim(np.where(valid, a, 0.0), np.where(valid, b, 0.0), value_range)


def quality(original: np.ndarray, recon: np.ndarray, mask: np.ndarray | None = None) -> Quality:
    """Compare ``recon`` to ``original`` (same shape) over the finite values of ``original`` where ``mask``
    (bool, same shape, default all) is True; the value range is that of the compared values."""
    a, valid, value_range = _compared(original, mask)
    b = recon.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a[valid] - b[valid]) if valid.any() else np.zeros(1)
    rmse = float(np.sqrt(np.mean(err**2)))
    psnr = psnr_db(rmse, value_range)
    return Quality(
        max_abs_error=float(err.max()), rmse=rmse, psnr_db=float(psnr),
        nrmse=rmse / value_range if value_range else float("nan"),
        nonfinite_preserved=nonfinite_preserved(original, recon),
        max_rel_error=float(err.max()) / value_range if value_range else float("nan"),
        pearson=pearson(a[valid], b[valid]),
        ssim=ssim(np.where(valid, a, 0.0), np.where(valid, b, 0.0), value_range),
        error_autocorrelation=error_autocorrelation(np.where(valid, a - b, 0.0)),
    )


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two equal-size arrays (1.0 when both are the same constant)."""
    x = x.ravel() - x.mean() if x.size else x
    y = y.ravel() - y.mean() if y.size else y
    denom = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    if denom == 0:
        return 1.0 if np.array_equal(x, y) else float("nan")
    return float(np.dot(x, y) / denom)


def _window_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Mean over every full width^ndim window ('valid' positions), via cumulative sums along each axis."""
    for axis in range(x.ndim):
        c = np.cumsum(x, axis=axis)
        zero = np.zeros_like(np.take(c, [0], axis=axis))
        c = np.concatenate([zero, c], axis=axis)
        n = c.shape[axis]
        x = (np.take(c, np.arange(width, n), axis=axis) - np.take(c, np.arange(0, n - width), axis=axis)) / width
    return x


def ssim(a: np.ndarray, b: np.ndarray, value_range: float, width: int = 7) -> float:
    """Mean SSIM (Wang et al. 2004) over width^d windows, d = 2 or 3 (4D: per 3D volume); nan otherwise.

    Constants C1 = (0.01 L)^2, C2 = (0.03 L)^2 with L the value range; windows shrink to the smallest side."""
    if a.ndim not in (2, 3, 4):
        return float("nan")
    if value_range <= 0:
        return 1.0 if np.array_equal(a, b) else float("nan")
    if a.ndim == 4:
        return float(np.mean([ssim(a[i], b[i], value_range, width) for i in range(a.shape[0])]))
    width = max(1, min(width, *a.shape))
    c1, c2 = (0.01 * value_range) ** 2, (0.03 * value_range) ** 2
    mu_a, mu_b = _window_mean(a, width), _window_mean(b, width)
    var_a = _window_mean(a * a, width) - mu_a**2
    var_b = _window_mean(b * b, width) - mu_b**2
    cov = _window_mean(a * b, width) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def error_autocorrelation(err: np.ndarray) -> float:
    """Lag-1 autocorrelation of the error field along each axis (of size > 1), averaged; 0 for zero error."""
    e = err - err.mean()
    total = float(np.dot(e.ravel(), e.ravel()))
    if total == 0:
        return 0.0
    lags = [float(np.sum(np.take(e, np.arange(1, n), axis=ax) * np.take(e, np.arange(n - 1), axis=ax))) / total
            for ax, n in enumerate(e.shape) if n > 1]
    return float(np.mean(lags)) if lags else float("nan")


def bit_rate(compressed_bytes: int, n_values: int) -> float:
    """Bits per value."""
    return 8.0 * compressed_bytes / n_values
