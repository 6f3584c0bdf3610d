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


def quality(original: np.ndarray, recon: np.ndarray) -> Quality:
    """Compare ``recon`` to ``original`` (same shape); errors over the finite values of ``original``."""
    a = original.astype(np.float64, copy=False)
    b = recon.astype(np.float64, copy=False)
    finite = np.isfinite(a)
    err = np.abs(a[finite] - b[finite]) if finite.any() else np.zeros(1)
    rmse = float(np.sqrt(np.mean(err**2)))
    value_range = finite_range(original)
    psnr = float("inf") if rmse == 0 else (20 * np.log10(value_range / rmse) if value_range > 0 else float("-inf"))
    bits = f"u{original.itemsize}"
    preserved = np.array_equal(original[~finite].view(bits), recon[~finite].view(bits))
    return Quality(float(err.max()), rmse, float(psnr), rmse / value_range if value_range else float("nan"),
                   bool(preserved))


def compression_ratio(original_bytes: int, compressed_bytes: int) -> float:
    return original_bytes / compressed_bytes


def bit_rate(compressed_bytes: int, n_values: int) -> float:
    """Bits per value."""
    return 8.0 * compressed_bytes / n_values
