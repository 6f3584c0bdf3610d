"""The ``wavelet`` predictor: the CDF 9/7 transform (srnsz.decomposition.wavelet) with a uniform quantizer and the
context-mixing coder, for the quality modes (format 1.15).

At low rates on smooth fields a wavelet's coarse coefficients are local averages, where interpolation's coarse
levels are point samples: the same PSNR then needs markedly fewer bits (equal-PSNR figures on docs/benchmarks/index.md).
It holds no pointwise bound of its own: its streams state the largest error its reconstruction has (computed when
compressing, checked by the pipeline like any stated bound), so it serves the quality modes (psnr, ssim) only, where
it competes with interpolation (srnsz.pipeline.psnr) and the smaller stream at the target is kept.

Stream: the coefficients' codes q = sign(c) floor(|c| / step + 1/2 - b) (b, the rounding bias, is the encoder's:
a dead zone), band by band -- bands in C order of their per-axis indices, each axis's approximation first and its
details from the coarsest level to the finest -- in one table of the CODE section, each band's codes with its
shape (context mixing reads neighbours within a band), codes beyond the int16 radius written as ESCAPE and their
values, in order, in the WESC section (int64, zstd). The header's ``levels`` (per axis) and ``step`` rebuild the
reconstruction: inverse(q * step), cast to the field's dtype.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from srnsz.bounds import finite_range, search_bound
from srnsz.coding import lossless
from srnsz.coding.entropy import CodeReader, ContextCodeWriter
from srnsz.decomposition import wavelet
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.metrics import psnr_over
from srnsz.neural.runtime import Runtime
from srnsz.predictors.base import Encoded, Predictor, Progress, register_predictor
from srnsz.quantizer import CODE_DTYPE, ESCAPE, RADIUS

FORMAT_MINOR = 15
ESCAPE_SECTION = "WESC"
# The rounding bias (a dead zone: more coefficients to 0). Measured (2026-12-07, 5 shared fields at 50 and 70 dB,
# bits at equal PSNR): 0.05-0.1 best, 0 costs 2-6% more, 0.2 2-7% more.
ROUND_BIAS = 0.1
# The approximation sizes whose levels are tried per field (wavelet.axis_levels): at equal PSNR the best one
# differed by field by 4-40% (same measurement: NCEP U 4, Gray-Scott and ECHAM5 T 8, CTH pressure 16).
APPROXIMATIONS = (4, 8, 16)
# The other sizes are tried only where they change the levels of an axis shorter than this: on longer axes they
# change only the coarsest levels, a few coefficients (0.04-0.22% of the bytes on SPERR's 999 x 999 field at 50-90 dB),
# not worth a trial coding each.
LONG_AXIS = 256
# Codes stay below 2^53 in magnitude: exact in the float64 product code * step, far from int64's end.
CODE_LIMIT = 2.0 ** 53


def _band_keys(shape: tuple[int, ...], levels: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The bands of a coefficient array, in stream order."""
    edges = [wavelet.band_edges(n, count) for n, count in zip(shape, levels)]
    return [tuple(slice(e[k], e[k + 1]) for e, k in zip(edges, combo))
            for combo in itertools.product(*[range(len(e) - 1) for e in edges])]


def _quantize(coefficients: np.ndarray, step: float, bias: float) -> np.ndarray:
    """int64 codes of the coefficients at ``step`` with rounding bias ``bias``; InvalidInputError where a code would
    reach CODE_LIMIT (a step too fine for the coefficients: a PSNR beyond what the codes hold)."""
    with np.errstate(over="ignore", invalid="ignore"):
        magnitude = np.floor(np.abs(coefficients) / step + (0.5 - bias))
    if magnitude.size and not float(magnitude.max()) < CODE_LIMIT:
        raise InvalidInputError(f"a wavelet step of {step:.3g} is too fine for this field's coefficients (codes of "
                                f"2^53 or more): the target asks more than the wavelet's integer codes hold")
    return (np.sign(coefficients) * np.maximum(magnitude, 0.0)).astype(np.int64)


def _reconstruct(codes: np.ndarray, step: float, levels: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The field the decoder rebuilds from the codes (every machine: the same bits, see srnsz.decomposition.wavelet)."""
    with np.errstate(over="ignore", invalid="ignore"):  # a hostile step overflows; the checksum refuses the result
        return wavelet.inverse(codes * step, levels).astype(dtype, copy=False)


@register_predictor
class WaveletPredictor(Predictor):
    """The CDF 9/7 wavelet transform, quantized and context-mixed (the quality modes only: it holds no pointwise
    bound).

    approximation: the fewest points an axis's approximation keeps (its levels, wavelet.axis_levels); None: the
    quality modes try APPROXIMATIONS and keep the smallest stream; round_bias: the quantizer's dead zone, in steps."""

    name = "wavelet"
    can_preview = True
    holds_bound = False

    def __init__(self, approximation: int | None = None, round_bias: float = ROUND_BIAS) -> None:
        if approximation is not None and (isinstance(approximation, bool) or not isinstance(approximation, int)
                                          or approximation < 1):
            raise InvalidInputError(f"approximation must be an integer >= 1, got {approximation!r}")
        try:
            self.round_bias = float(round_bias)
        except (TypeError, ValueError):
            raise InvalidInputError(f"round_bias must be a number, got {round_bias!r}") from None
        if not 0 <= self.round_bias < 0.5:
            raise InvalidInputError(f"round_bias must be in [0, 0.5), got {round_bias!r}")
        self.approximation = approximation

    def _levels(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return wavelet.levels_of(shape, self.approximation or APPROXIMATIONS[1])

    def _codes(self, data: np.ndarray, eb: float) -> tuple[np.ndarray, float, tuple[int, ...]]:
        """(codes, step, levels) of ``data`` at bound ``eb`` (the step is 2 eb, as interpolation's bin)."""
        if not eb > 0 or not math.isfinite(eb):
            raise InvalidInputError(f"the wavelet predictor needs a finite bound > 0, got {eb!r}")
        levels = self._levels(data.shape)
        step = 2.0 * float(eb)
        return _quantize(wavelet.forward(data, levels), step, self.round_bias), step, levels

    def preview(self, data: np.ndarray, eb: float, free: np.ndarray | None = None) -> np.ndarray:
        codes, step, levels = self._codes(data, eb)
        return _reconstruct(codes, step, levels, data.dtype)

    def compress(self, data: np.ndarray, eb: float, progress: Progress | None = None,
                 free: np.ndarray | None = None) -> Encoded:
        """Encode ``data`` at step 2 ``eb``; the encoding's ``max_error`` is the largest error of its
        reconstruction over the points not ``free`` (it may exceed ``eb``: no pointwise bound is held)."""
        if not np.isfinite(data).all():
            raise InvalidInputError("the wavelet predictor needs finite values (missing values are the pipeline's)")
        codes, step, levels = self._codes(data, eb)
        writer = ContextCodeWriter()
        escaped = []
        for key in _band_keys(data.shape, levels):
            band = codes[key]
            small = (band >= -RADIUS) & (band <= RADIUS)
            escaped.append(band[~small])
            writer.write(np.where(small, band, ESCAPE).astype(CODE_DTYPE).ravel(),
                         np.zeros(band.size, np.uint8), 0, shape=band.shape)
        sections = {"CODE": writer.finish()}
        outliers = np.concatenate(escaped)
        if outliers.size:
            sections[ESCAPE_SECTION] = lossless.pack(outliers.astype("<i8").tobytes())
        recon = _reconstruct(codes, step, levels, data.dtype)
        error = np.abs(recon.astype(np.float64) - data.astype(np.float64))
        max_error = float(error.max() if free is None else error[~free].max(initial=0.0))
        if progress:
            progress(data.size)
        return Encoded(sections, {"levels": list(levels), "step": step}, recon, predictor=self.name,
                       max_error=max_error, format_minor=FORMAT_MINOR)

    def for_psnr(self, data: np.ndarray, eb: float, free: np.ndarray | None, target_db: float,
                 for_ssim: bool = False) -> tuple[Predictor, float]:
        """The approximation size (levels) whose stream at ``target_db`` is smallest, where none was given: each of
        APPROXIMATIONS that changes the levels of an axis shorter than LONG_AXIS, at the step its preview reaches the
        target with (a few previews each), then coded."""
        if self.approximation is not None:
            return self, eb
        default = WaveletPredictor(APPROXIMATIONS[1], self.round_bias)
        short = [a for a, n in enumerate(data.shape) if n < LONG_AXIS]
        candidates, seen = [default], {tuple(default._levels(data.shape)[a] for a in short)}
        for size in APPROXIMATIONS:
            trial = WaveletPredictor(size, self.round_bias)
            key = tuple(trial._levels(data.shape)[a] for a in short)
            if key not in seen:
                seen.add(key)
                candidates.append(trial)
        valid = None if free is None else ~free
        value_range = finite_range(data, free)
        bounds = [_bound_for(trial, data, valid, target_db, eb, value_range) for trial in candidates]
        if len(candidates) == 1:
            return default, bounds[0]
        sizes = [trial.compress(data, bound, None, free).nbytes for trial, bound in zip(candidates, bounds)]
        best = int(np.argmin(sizes))
        return candidates[best], bounds[best]

    def decompress(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                   dtype: np.dtype, eb: float, progress: Progress | None = None) -> np.ndarray:
        levels, step = _read_params(params, shape)
        if "CODE" not in sections:
            raise StreamFormatError("the wavelet stream has no code section")
        reader = CodeReader(sections["CODE"], math.prod(shape))
        codes = np.empty(shape, np.int64)
        for key in _band_keys(shape, levels):
            band_shape = codes[key].shape
            codes[key] = reader.read(np.zeros(math.prod(band_shape), np.uint8), 0, shape=band_shape
                                     ).reshape(band_shape)
        count = int(np.count_nonzero(codes == ESCAPE))
        if (ESCAPE_SECTION in sections) != (count > 0):
            raise StreamFormatError(f"the wavelet stream has {count} escaped codes but "
                                    f"{'a' if ESCAPE_SECTION in sections else 'no'} escape section")
        if count:
            raw = lossless.unpack(sections[ESCAPE_SECTION], "wavelet escapes", max_size=8 * count)
            if len(raw) != 8 * count:
                raise StreamFormatError(f"the wavelet escape section holds {len(raw) // 8} codes, its code section "
                                        f"names {count}")
            outliers, used = np.frombuffer(raw, "<i8"), 0
            for key in _band_keys(shape, levels):  # in the order written: band by band, each in C order
                band = codes[key]  # a view
                here = band == ESCAPE
                n = int(np.count_nonzero(here))
                band[here] = outliers[used:used + n]
                used += n
        if progress:
            progress(math.prod(shape))
        return _reconstruct(codes, step, levels, dtype)

    @classmethod
    def from_params(cls, params: dict[str, Any], runtime: Runtime | None = None) -> WaveletPredictor:
        return cls()


def _read_params(params: dict[str, Any], shape: tuple[int, ...]) -> tuple[tuple[int, ...], float]:
    """(levels, step) from a header, checked against the field's shape."""
    levels, step = params.get("levels"), params.get("step")
    if not isinstance(levels, list) or len(levels) != len(shape) or \
            not all(isinstance(v, int) and not isinstance(v, bool) for v in levels):
        raise StreamFormatError(f"the wavelet levels {levels!r} do not fit a field of shape {list(shape)}")
    if any(not 0 <= v <= wavelet.axis_levels(n, 1) for v, n in zip(levels, shape)):
        raise StreamFormatError(f"the wavelet levels {levels} are more than the shape {list(shape)} allows")
    if isinstance(step, bool) or not isinstance(step, int | float) or not (math.isfinite(step) and step > 0):
        raise StreamFormatError(f"the wavelet step {step!r} is not a positive number")
    return tuple(levels), float(step)


def _bound_for(predictor: WaveletPredictor, data: np.ndarray, valid: np.ndarray | None, target_db: float,
               eb: float, value_range: float) -> float:
    """About the largest bound whose preview reaches ``target_db`` (a short geometric search from ``eb``); the
    psnr mode's own search refines the chosen one."""
    levels = predictor._levels(data.shape)
    coefficients = wavelet.forward(data, levels)  # once for every trial bound

    def psnr_at(bound: float) -> float:
        codes = _quantize(coefficients, 2.0 * bound, predictor.round_bias)
        return psnr_over(data, _reconstruct(codes, 2.0 * bound, levels, data.dtype), valid)

    found, _ = search_bound(psnr_at, target_db, eb, 0.1, 4)
    if found is not None:
        return found.eb
    return value_range * 10.0 ** (-target_db / 20.0) / 2.0
