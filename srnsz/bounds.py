"""Error-bound modes and their resolution to one absolute bound."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from srnsz.errors import InvalidInputError

MODES = ("abs", "rel", "psnr", "abs_and_rel")


@dataclass(frozen=True)
class ErrorBound:
    """An error bound as the user asked for it.

    ``mode``: ``abs`` (absolute, data units), ``rel`` (fraction of the value range of the finite values),
    ``psnr`` (target PSNR in dB on the value range) or ``abs_and_rel`` (the smaller of ``value`` as abs and
    ``rel`` as rel).
    """

    mode: str
    value: float
    rel: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(f"error-bound mode {self.mode!r} is unknown; use one of {', '.join(MODES)}")
        _check_number("error bound", self.value, allow_zero=self.mode != "psnr")
        # numpy scalars (e.g. a float32 bound taken from the data) become plain floats: the header is JSON.
        object.__setattr__(self, "value", float(self.value))
        if self.mode == "abs_and_rel":
            if self.rel is None:
                raise InvalidInputError("mode 'abs_and_rel' needs rel=<fraction of the value range>")
            _check_number("relative error bound", self.rel, allow_zero=True)
            object.__setattr__(self, "rel", float(self.rel))

    def resolve(self, data: np.ndarray, missing: np.ndarray | None = None) -> float:
        """Absolute bound (data units, >= 0) that this bound means for ``data`` whose ``missing`` points (bool
        mask, default none) are not data."""
        return float(self.value) if self.mode == "abs" else self.absolute(finite_range(data, missing))

    def absolute(self, value_range: float) -> float:
        """Absolute bound for data whose finite values span ``value_range`` (ignored by ``abs``)."""
        if self.mode == "abs":
            return float(self.value)
        if self.mode == "rel":
            return float(self.value) * value_range
        if self.mode == "abs_and_rel":
            return min(float(self.value), float(self.rel) * value_range)
        # psnr: PSNR = 20 log10(range / rmse); a uniform error in [-eb, eb] has rmse eb / sqrt(3).
        return value_range * math.sqrt(3.0) * 10.0 ** (-float(self.value) / 20.0)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def finite_range(data: np.ndarray, missing: np.ndarray | None = None) -> float:
    """max - min (float64) over the finite values of ``data`` outside ``missing`` (a bool mask; None: none);
    0.0 if there are none."""
    valid = np.isfinite(data) if missing is None else ~missing & np.isfinite(data)
    if valid.all():
        return float(np.max(data)) - float(np.min(data))
    if not valid.any():
        return 0.0
    values = data[valid]
    return float(np.max(values)) - float(np.min(values))


def _check_number(name: str, value: float, allow_zero: bool) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        allowed = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number {allowed}, got {value!r}")
