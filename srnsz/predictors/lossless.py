"""Lossless path (eb = 0): byte-shuffled values, zstd."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from srnsz.coding import lossless
from srnsz.errors import StreamFormatError
from srnsz.neural.runtime import Runtime
from srnsz.predictors.base import Encoded, Predictor, Progress, register_predictor


@register_predictor
class LosslessPredictor(Predictor):
    """Stores the values bit for bit; the byte planes are grouped first so zstd sees runs of exponents."""

    name = "lossless"
    lossy = False

    def compress(self, data: np.ndarray, eb: float, progress: Progress | None = None,
                 free: np.ndarray | None = None) -> Encoded:
        planes = np.ascontiguousarray(data).reshape(-1).view(np.uint8).reshape(-1, data.itemsize).T
        if progress:
            progress(data.size)
        return Encoded({"RAWD": lossless.pack(planes.tobytes(), level=9)}, {}, data.copy())

    def decompress(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                   dtype: np.dtype, eb: float, progress: Progress | None = None) -> np.ndarray:
        n = int(np.prod(shape))
        raw = lossless.unpack(sections["RAWD"], "lossless data", n * dtype.itemsize)
        if len(raw) != n * dtype.itemsize:
            raise StreamFormatError("the lossless data section does not match the shape")
        planes = np.frombuffer(raw, np.uint8).reshape(dtype.itemsize, n)
        if progress:
            progress(n)
        return np.ascontiguousarray(planes.T).view(dtype).reshape(shape)

    def check_sections(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                       dtype: np.dtype) -> None:
        declared = lossless.declared_size(sections["RAWD"]) if "RAWD" in sections else None
        if declared is not None and declared != math.prod(shape) * dtype.itemsize:
            raise StreamFormatError("the lossless data section does not match the shape")

    @classmethod
    def from_params(cls, params: dict[str, Any], runtime: Runtime | None = None) -> LosslessPredictor:
        return cls()
