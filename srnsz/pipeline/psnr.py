"""The psnr bound mode: a bound whose PSNR is at least the target, on the whole field.

``ErrorBound("psnr", db)`` resolves to the bound a uniform error would need; :func:`meet_psnr` then checks the
PSNR actually reached and tightens the bound until it holds. (Searching the bound for a PSNR or a ratio across
whole compressions, for any predictor, is srnsz.pipeline.targets.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from srnsz.bounds import finite_range
from srnsz.eval.metrics import quality
from srnsz.predictors.base import Encoded


def meet_psnr(data: np.ndarray, mask: np.ndarray | None, target_db: float, eb_abs: float, encoded: Encoded,
               compress_at: Callable[[float], Encoded]) -> tuple[float, Encoded]:
    """(bound, encoding) whose PSNR over the valid points (outside ``mask``) is at least ``target_db``: the
    uniform-error estimate behind the psnr mode is only an estimate, so a shortfall tightens the bound by it,
    and after two tries the bound becomes range * 10^(-target/20), where PSNR >= target holds for certain
    (rmse <= max error <= eb)."""
    valid = None if mask is None else ~mask
    value_range = finite_range(data, mask)
    for attempt in range(3):
        achieved = quality(data, encoded.recon, valid).psnr_db
        if achieved >= target_db:
            break
        eb_abs = (eb_abs * 10.0 ** ((achieved - target_db) / 20.0) * 0.999 if attempt < 2
                  else value_range * 10.0 ** (-target_db / 20.0))
        encoded = compress_at(eb_abs)
    return eb_abs, encoded
