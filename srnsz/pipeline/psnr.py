"""The quality modes: the fewest bits whose PSNR (psnr mode) or mean SSIM (ssim mode) over the valid points is at
least the target.

``ErrorBound("psnr", db)`` resolves to the bound a uniform error would need. :func:`compress_for_psnr` then lets
the predictor choose its configuration for bits at the target (:meth:`Predictor.for_psnr`: level-wise bounds,
rounding bias, spline and traversal, by trial on samples), searches the largest bound whose whole-field
reconstruction reaches the target (cheaply, without entropy coding, where the predictor can preview), and
compresses once at that bound. The stream still holds a hard pointwise bound, the one written in its header (for
the wavelet predictor the largest error its reconstruction has, computed when compressing).
:func:`meet_psnr` is the last check: a shortfall tightens the bound. Where a restoration filter run by the decoder
(srnsz.restoration) is expected to pay, a second encoding competes: its bound searched with the filter applied to
each preview, its stated bound the quantizer's plus the filter's clip. With interp, the wavelet predictor
(srnsz.predictors.wavelet) runs the same search and the smaller encoding at the target is kept; it holds no bound
of its own, and its stream states the largest error it has. (Searching the bound for a PSNR or a ratio
across whole compressions, for any predictor, is srnsz.pipeline.targets.)

:func:`compress_for_ssim` does the same for an SSIM target: the bound is searched on previews with the SSIM on a dB
scale (bounds.ssim_db), once with the options the size tuner picks and once with those the psnr tuner picks at the
PSNR that first bound reached; the smaller stream is kept, and a restoration filter is tried on it as in the psnr
mode. It needs a predictor that previews (interp).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from srnsz.bounds import finite_range, search_bound, ssim_db
from srnsz.errors import InvalidInputError
from srnsz.metrics import psnr_over, ssim_over
from srnsz.predictors.base import Encoded, Predictor, Progress
from srnsz.predictors.wavelet import WaveletPredictor
from srnsz.restoration import FORMAT_MINOR as RESTORATION_FORMAT_MINOR
from srnsz.restoration import SECTION as RESTORATION_SECTION
from srnsz.restoration import RestorationFilter, apply_restoration, fit_restoration

# The whole-field search stops within this many dB above the target (or after BOUND_SEARCH_TRIALS previews).
TOLERANCE_DB = 0.02
BOUND_SEARCH_TRIALS = 6
# A restoration filter is tried (a second bound search and encoding) where the PSNR it adds at the plain stream's
# bound, at 1/6 bit per value per dB but at most this share of the stream per dB, is worth more than its
# coefficients. Measured at 50-90 dB on 5 shared fields (2026-12-01): 3-8% fewer bits per dB gained.
RESTORATION_SHARE_PER_DB = 0.08


def compress_for_psnr(predictor: Predictor, field: np.ndarray, mask: np.ndarray | None, target_db: float,
                      eb_abs: float, progress: Progress | None = None, restoration: bool = True,
                      wavelet: bool = True) -> tuple[float, Encoded]:
    """(pointwise bound the encoding holds, encoding) of ``field`` whose PSNR over the points outside ``mask``
    is at least ``target_db``; ``eb_abs`` is the uniform-error estimate of the bound (data units). With
    ``restoration``, an encoding with a restoration filter competes where the filter is expected to pay; with
    ``wavelet`` and the interp predictor, the wavelet predictor's encoding at the target competes too."""
    valid = None if mask is None else ~mask
    tuned, start = predictor.for_psnr(field, eb_abs, mask, target_db)

    def psnr_at(eb: float) -> float:
        return psnr_over(field, tuned.preview(field, eb, mask), valid)

    eb = start
    if tuned.can_preview:
        found, _ = search_bound(psnr_at, target_db, start, TOLERANCE_DB, BOUND_SEARCH_TRIALS)
        if found is not None:
            eb = found.eb
    encoded = tuned.compress(field, eb, progress, mask)
    eb, encoded = meet_psnr(field, mask, target_db, eb, encoded, lambda e: tuned.compress(field, e, None, mask))
    if not predictor.holds_bound and psnr_over(field, encoded.recon, valid) < target_db:
        # no bound makes the PSNR certain here, as for a predictor that holds one (meet_psnr's last try)
        raise InvalidInputError(f"the {predictor.name} predictor does not reach {target_db:g} dB on this field; "
                                "interpolation (the default predictor) does")
    candidates = [(held(encoded, eb), encoded)]
    if restoration and tuned.can_preview:
        restored = _with_restoration(tuned, field, mask, lambda recon: psnr_over(field, recon, valid), target_db, eb,
                                     encoded)
        if restored is not None:
            candidates.append(restored)
    if _wavelet_competes(wavelet, predictor, field):
        # where the target needs steps finer than its integer codes hold, interpolation's stream alone
        with contextlib.suppress(InvalidInputError):
            candidates.append(compress_for_psnr(WaveletPredictor(), field, mask, target_db, eb_abs, None, False,
                                                False))
    return min(candidates, key=lambda c: c[1].nbytes)


def _wavelet_competes(wavelet: bool, predictor: Predictor, field: np.ndarray) -> bool:
    """Whether a quality mode also tries the wavelet predictor: asked for (``wavelet``), beside interp (the default),
    on a field of finite values (missing ones already extended)."""
    return wavelet and predictor.name == "interp" and bool(np.isfinite(field).all())


def _with_restoration(tuned: Predictor, field: np.ndarray, mask: np.ndarray | None,
                      quality: Callable[[np.ndarray], float], target_db: float, eb: float, plain: Encoded
                      ) -> tuple[float, Encoded] | None:
    """(bound held, encoding) with a restoration filter (srnsz.restoration) at the largest bound whose restored
    reconstruction reaches ``target_db`` by ``quality`` (dB of a reconstruction, about -20 dB per decade of the
    bound), or None where the filter is not expected to pay at ``eb`` (the bound ``plain`` was made at) or the
    result misses the target."""
    valid = None if mask is None else ~mask
    widening = held(plain, eb) / eb  # a dead-zone quantizer holds a wider bound than it was given
    plain_db = quality(plain.recon)

    def restored(recon: np.ndarray, bound: float, per_parity: bool) -> tuple[RestorationFilter, np.ndarray] | None:
        found = fit_restoration(recon, field, valid, bound, per_parity)
        return None if found is None else (found, apply_restoration(recon, found))

    # Bytes a dB is worth: 1/6 bit per value at high rates, capped where fewer bits are left to save.
    per_db = min(field.size / 48.0, RESTORATION_SHARE_PER_DB * plain.nbytes)
    options = []
    for per_parity in (False, True):
        first = restored(plain.recon, widening * eb, per_parity)
        if first is not None:
            gain = quality(first[1]) - plain_db
            options.append((gain * per_db - len(first[0].to_bytes()), gain, per_parity))
    if not options or max(options)[0] <= 0:
        return None
    _, gain, per_parity = max(options)

    def quality_at(bound: float) -> float:
        result = restored(tuned.preview(field, bound, mask), widening * bound, per_parity)
        return -math.inf if result is None else quality(result[1])

    found, _ = search_bound(quality_at, target_db, eb * 10.0 ** (gain / 20.0), TOLERANCE_DB, BOUND_SEARCH_TRIALS)
    if found is None or found.eb <= eb:
        return None
    encoded = tuned.compress(field, found.eb, None, mask)
    bound = held(encoded, found.eb)
    result = restored(encoded.recon, bound, per_parity)
    if result is None or quality(result[1]) < target_db:
        return None
    restoration, recon = result
    minor = max(encoded.format_minor or 0, RESTORATION_FORMAT_MINOR)
    return bound + restoration.clip, replace(encoded, sections={**encoded.sections, RESTORATION_SECTION:
                                                                restoration.to_bytes()},
                                             recon=recon, max_error=bound + restoration.clip, format_minor=minor,
                                             alternatives=[])


def held(encoded: Encoded, eb: float) -> float:
    """The pointwise bound ``encoded`` (compressed at ``eb``) holds."""
    return eb if encoded.max_error is None else encoded.max_error


def meet_psnr(data: np.ndarray, mask: np.ndarray | None, target_db: float, eb_abs: float, encoded: Encoded,
              compress_at: Callable[[float], Encoded]) -> tuple[float, Encoded]:
    """(bound compressed at, encoding) whose PSNR over the valid points (outside ``mask``) is at least
    ``target_db``: the bound an estimate gave is only an estimate, so a shortfall tightens the bound by it, and
    after two tries the bound becomes one whose held pointwise bound is range * 10^(-target/20), where
    PSNR >= target holds for certain (rmse <= max error)."""
    valid = None if mask is None else ~mask
    value_range = finite_range(data, mask)
    for attempt in range(3):
        achieved = psnr_over(data, encoded.recon, valid)
        if achieved >= target_db:
            break
        widening = held(encoded, eb_abs) / eb_abs  # a dead-zone quantizer holds a wider bound than it was given
        eb_abs = (eb_abs * 10.0 ** ((achieved - target_db) / 20.0) * 0.999 if attempt < 2
                  else value_range * 10.0 ** (-target_db / 20.0) / widening)
        encoded = compress_at(eb_abs)
    return eb_abs, encoded


def compress_for_ssim(predictor: Predictor, field: np.ndarray, mask: np.ndarray | None, target: float,
                      eb_abs: float, progress: Progress | None = None, restoration: bool = True,
                      wavelet: bool = True) -> tuple[float, Encoded]:
    """(pointwise bound the encoding holds, encoding) of ``field`` whose mean SSIM over the points outside
    ``mask`` is at least ``target`` (in (0, 1)); ``eb_abs`` is a first guess of the bound (data units). With
    ``restoration``, an encoding with a restoration filter competes where the filter is expected to pay; with
    ``wavelet`` and the interp predictor, the wavelet predictor's encoding at the target competes too (its levels
    chosen at the PSNR interpolation's first encoding reached)."""
    if sum(n > 1 for n in field.shape) < 2:
        raise InvalidInputError(f"the ssim mode needs a field of 2 or more dimensions, got shape {field.shape}")
    if not predictor.can_preview:
        raise InvalidInputError(f"the ssim mode searches its bound on previews, which the {predictor.name} "
                                "predictor has not: use interp, or a psnr target")
    valid = None if mask is None else ~mask
    goal = ssim_db(target)

    def quality(recon: np.ndarray) -> float:
        return ssim_db(ssim_over(field, recon, valid))

    def reach(chosen: Predictor, start: float) -> float | None:
        found, _ = search_bound(lambda eb: quality(chosen.preview(field, eb, mask)), goal, start, TOLERANCE_DB,
                                2 * BOUND_SEARCH_TRIALS)
        return None if found is None else found.eb

    sized = predictor.tuned(field, eb_abs, mask)
    eb_sized = reach(sized, eb_abs)
    if eb_sized is None:  # not even a bound 10^-12 of the guess: store the field as exactly as the predictor can
        raise InvalidInputError(f"no bound reaches an SSIM of {target} on this field; ask for eb=0 (lossless)")
    candidates = [(eb_sized, sized.compress(field, eb_sized, progress, mask), sized)]
    psnr = psnr_over(field, candidates[0][1].recon, valid)
    if np.isfinite(psnr):
        tuned, start = predictor.for_psnr(field, eb_sized, mask, psnr, for_ssim=True)
        eb_tuned = reach(tuned, start) if tuned is not sized else None
        if eb_tuned is not None:
            candidates.append((eb_tuned, tuned.compress(field, eb_tuned, None, mask), tuned))
    if _wavelet_competes(wavelet, predictor, field) and np.isfinite(psnr):
        with contextlib.suppress(InvalidInputError):  # steps finer than its integer codes hold: interpolation's
            transform, start = WaveletPredictor().for_psnr(field, eb_sized, mask, psnr)
            eb_transform = reach(transform, start)
            if eb_transform is not None:
                encoded = transform.compress(field, eb_transform, None, mask)
                if quality(encoded.recon) >= goal:
                    candidates.append((eb_transform, encoded, transform))
    eb, encoded, chosen = min(candidates, key=lambda c: c[1].nbytes)
    restored = (_with_restoration(chosen, field, mask, quality, goal, eb, encoded)
                if restoration and chosen.holds_bound else None)
    return min([(held(encoded, eb), encoded), *([restored] if restored else [])], key=lambda c: c[1].nbytes)
