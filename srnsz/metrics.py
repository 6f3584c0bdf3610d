"""Quality and size metrics, in float64 over the finite values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srnsz.bounds import finite_range


@dataclass(frozen=True)
class Quality:
    """Distortion of a reconstruction against its original."""

    max_abs_error: float
    rmse: float
    psnr_db: float  # on the value range of the original
    nrmse: float  # rmse / value range
    nonfinite_preserved: bool  # NaN/Inf positions and values identical


def nonfinite_preserved(original: np.ndarray, recon: np.ndarray) -> bool:
    """NaN/Inf of ``original`` sit at the same places in ``recon`` with the same bits."""
    finite = np.isfinite(original)
    bits = f"u{original.itemsize}"
    return bool(np.array_equal(original[~finite].view(bits), recon[~finite].view(bits)))


def bound_held(original: np.ndarray, recon: np.ndarray, eb: float) -> bool:
    """|x - x'| <= eb (in float64) for every finite x, and non-finite values preserved bit for bit."""
    finite = np.isfinite(original)
    with np.errstate(invalid="ignore"):
        err = np.abs(original[finite].astype(np.float64) - recon[finite].astype(np.float64))
    return bool(np.all(err <= eb)) and nonfinite_preserved(original, recon)


def quality(original: np.ndarray, recon: np.ndarray) -> Quality:
    """Compare ``recon`` to ``original`` (same shape); errors over the finite values of ``original``."""
    a = original.astype(np.float64, copy=False)
    b = recon.astype(np.float64, copy=False)
    finite = np.isfinite(a)
    err = np.abs(a[finite] - b[finite]) if finite.any() else np.zeros(1)
    rmse = float(np.sqrt(np.mean(err**2)))
    value_range = finite_range(original)
    psnr = float("inf") if rmse == 0 else (20 * np.log10(value_range / rmse) if value_range > 0 else float("-inf"))
    return Quality(float(err.max()), rmse, float(psnr), rmse / value_range if value_range else float("nan"),
                   nonfinite_preserved(original, recon))


def compression_ratio(original_bytes: int, compressed_bytes: int) -> float:
    return original_bytes / compressed_bytes


def bit_rate(compressed_bytes: int, n_values: int) -> float:
    """Bits per value."""
    return 8.0 * compressed_bytes / n_values
