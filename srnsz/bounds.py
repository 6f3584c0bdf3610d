"""Error-bound modes and their resolution to one absolute bound."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from srnsz.errors import InvalidInputError

MODES = ("abs", "rel", "psnr", "ssim", "abs_and_rel")
# A first guess for the ssim mode: the PSNR of error-bounded reconstructions of the shared fields ran 19-30 dB above
# ssim_db (the SSIM's dissimilarity in dB) at rel 1e-1..1e-4; the bound is searched from there.
SSIM_TO_PSNR_DB = 25.0


@dataclass(frozen=True)
class ErrorBound:
    """An error bound as the user asked for it.

    ``mode``: ``abs`` (absolute, data units), ``rel`` (fraction of the value range of the finite values),
    ``psnr`` (target PSNR in dB on the value range), ``ssim`` (target mean SSIM in (0, 1), 7-wide windows, for
    fields of 2 or more dimensions) or ``abs_and_rel`` (the smaller of ``value`` as abs and ``rel`` as rel).
    The quality modes (psnr, ssim) resolve to a first guess that srnsz.pipeline.psnr then searches.
    """

    mode: str
    value: float
    rel: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(f"error-bound mode {self.mode!r} is unknown; use one of {', '.join(MODES)}")
        _check_number("error bound", self.value, allow_zero=self.mode not in ("psnr", "ssim"))
        if self.mode == "ssim" and not float(self.value) < 1:
            raise InvalidInputError(f"an SSIM target must be below 1 (1 is lossless: use eb=0), got {self.value!r}")
        # numpy scalars (e.g. a float32 bound taken from the data) become plain floats: the header is JSON.
        object.__setattr__(self, "value", float(self.value))
        if self.mode == "abs_and_rel":
            if self.rel is None:
                raise InvalidInputError("mode 'abs_and_rel' needs rel=<fraction of the value range>")
            _check_number("relative error bound", self.rel, allow_zero=True)
            object.__setattr__(self, "rel", float(self.rel))

    def resolve(self, data: np.ndarray, missing: np.ndarray | None = None) -> float:
        """Absolute bound (data units, >= 0) that this bound means for ``data`` whose ``missing`` points (bool
        mask, default none) are not data. A quality mode (psnr, ssim) on values spanning more than
        QUALITY_LARGEST_RANGE is refused: its squared errors would overflow float64."""
        if self.mode == "abs":
            return float(self.value)
        value_range = finite_range(data, missing)
        if self.mode in ("psnr", "ssim") and value_range > QUALITY_LARGEST_RANGE:
            raise InvalidInputError(f"the {self.mode} mode measures squared errors, which overflow float64 on values "
                                    f"spanning {value_range:.3g}; use an abs or rel bound")
        return self.absolute(value_range)

    def absolute(self, value_range: float) -> float:
        """Absolute bound for data whose finite values span ``value_range`` (ignored by ``abs``)."""
        if self.mode == "abs":
            return float(self.value)
        if self.mode == "rel":
            return float(self.value) * value_range
        if self.mode == "abs_and_rel":
            return min(float(self.value), float(self.rel) * value_range)
        # psnr: PSNR = 20 log10(range / rmse); a uniform error in [-eb, eb] has rmse eb / sqrt(3).
        db = float(self.value) if self.mode == "psnr" else ssim_db(float(self.value)) + SSIM_TO_PSNR_DB
        return value_range * math.sqrt(3.0) * 10.0 ** (-db / 20.0)

    def to_json(self) -> dict:
        """The bound as JSON: mode, value and rel when set (the stream header adds the resolved abs)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


LARGEST_BOUND = float(np.finfo(np.float64).max)
LARGEST_DECADE = 308.0  # a bound search goes no higher than 1e308, then LARGEST_BOUND
QUALITY_LARGEST_RANGE = 1e140  # squared errors up to it, summed over 1e12 points, stay finite


def value_span(low: float, high: float) -> float:
    """high - low, at most the largest float64: float64 values near +-1.8e308 can span up to twice that, and a
    relative bound on an overflowed span would be inf. The clamp makes such a bound at most half as loose as asked,
    never looser."""
    return min(float(high) - float(low), LARGEST_BOUND)


def finite_range(data: np.ndarray, missing: np.ndarray | None = None) -> float:
    """max - min (float64, :func:`value_span`) over the finite values of ``data`` outside ``missing`` (a bool mask;
    None: none); 0.0 if there are none."""
    valid = np.isfinite(data) if missing is None else ~missing & np.isfinite(data)
    if valid.all():
        return value_span(np.min(data), np.max(data))
    if not valid.any():
        return 0.0
    values = data[valid]
    return value_span(np.min(values), np.max(values))


def _check_number(name: str, value: float, allow_zero: bool) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        allowed = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number {allowed}, got {value!r}")


def ssim_db(ssim: float) -> float:
    """An SSIM on a dB scale: -10 log10(1 - SSIM) (inf for 1), which falls by about 20 dB per decade of the
    bound, like the PSNR (measured on the shared fields), so the same search finds bounds for both."""
    return math.inf if ssim >= 1 else -10.0 * math.log10(1.0 - ssim)


# The PSNR of an error-bounded reconstruction falls by about 20 dB per decade of the bound (less at low rates).
DB_PER_DECADE = 20.0


@dataclass(frozen=True)
class BoundTrial:
    """One reconstruction tried while searching a bound: the bound (data units) and the quality (dB) it reached."""

    eb: float
    db: float  # the PSNR, or another quality on a dB scale (ssim_db)


def search_bound(quality_at: Callable[[float], float], target_db: float, eb: float, tolerance_db: float = 0.05,
                 max_trials: int = 6) -> tuple[BoundTrial | None, list[BoundTrial]]:
    """The largest bound found whose PSNR (or any quality in dB that falls about 20 dB per decade of the bound,
    such as :func:`ssim_db`) is at least ``target_db``, searched from ``eb`` (data units, > 0): steps of the
    -20 dB/decade rule until the target is bracketed, then secants inside the bracket; stops once a trial lands
    within ``tolerance_db`` above the target or after ``max_trials`` calls of ``quality_at(eb) -> dB``.
    Returns (that trial or None if none reached the target, every trial in order)."""
    trials: list[BoundTrial] = []
    met: BoundTrial | None = None  # largest bound that reached the target
    short: BoundTrial | None = None  # smallest bound that did not
    aim = target_db + tolerance_db / 2
    x = math.log10(eb)
    for _ in range(max_trials):
        bound = 10.0 ** x if x < LARGEST_DECADE else LARGEST_BOUND  # float64 values near +-1.8e308
        trial = BoundTrial(bound, float(quality_at(bound)))
        trials.append(trial)
        if trial.db >= target_db:
            met = trial if met is None or trial.eb > met.eb else met
        else:
            short = trial if short is None or trial.eb < short.eb else short
        if met is not None and met.db - target_db <= tolerance_db:
            break
        if met is not None and short is not None and short.eb > met.eb:
            lo, hi = math.log10(met.eb), math.log10(short.eb)
            drop = met.db - short.db
            share = (met.db - aim) / drop if drop > 0 else 0.5
            if not math.isfinite(share):  # an exact trial (inf dB) met the target: halfway in the bracket
                share = 0.5
            x = lo + (hi - lo) * min(max(share, 0.1), 0.9)  # stay strictly inside the bracket
        else:
            step = (trial.db - aim) / DB_PER_DECADE
            if not math.isfinite(step):  # no error at all: ten times larger; nothing usable: ten times smaller
                step = 1.0 if trial.db > target_db else -1.0
            x += step
    return met, trials
