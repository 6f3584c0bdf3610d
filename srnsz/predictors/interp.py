"""Classical grid expansion with spline interpolation (SZ3): the ``interp`` predictor."""

from __future__ import annotations

import functools
import math
import numbers
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Protocol

import numpy as np

from srnsz.bounds import finite_range, search_bound
from srnsz.coding import lossless
from srnsz.coding.batch import CodeBatch
from srnsz.coding.context import curvature_details, magnitudes, multi_view_contexts, neighbour_contexts
from srnsz.coding.context_mixing import BINARISATION_1
from srnsz.coding.entropy import CodeReader, ContextCodeWriter, format_minor, written_binarisation
from srnsz.decomposition.blend import Samples, blend, choose_weights, valid_weights
from srnsz.decomposition.departures import MEAN_BOUND_SHARE, AxisMean, axis_mean, axis_means, departure_roughness
from srnsz.decomposition.grid import CHUNK_POINTS, TRAVERSALS, Pass, Plan, along, chunks, make_plan, odd_along
from srnsz.decomposition.interpolation import KINDS, predict_odd
from srnsz.decomposition.sampling import TUNE_FRACTION, TUNE_FULL_POINTS, sample_blocks
from srnsz.errors import InvalidInputError, ReconstructionMismatchError, StreamFormatError
from srnsz.metrics import psnr_db
from srnsz.neural.runtime import Runtime
from srnsz.parallel import check_threads
from srnsz.predictors.base import Encoded, Predictor, Progress, register_predictor
from srnsz.quantizer import ESCAPE, drop_lone_codes, held_bound, quantize, reconstruct

CONFIG_KINDS = (*KINDS, "quintic", "fitted")
FAST_KINDS = ("linear", "fitted")
SIZE_KINDS = ("linear", "cubic", "fitted")  # tune="best" in the bound modes
QUINTIC_FORMAT_MINOR = 4  # streams of the quintic spline are format 1.4 (older readers refuse them clearly)
TUNED_LAYOUT_FORMAT_MINOR = 13  # streams with a code_order or a mean_axis
# Streams whose header gives the finest level's bound ("eb") for the decoder to derive the others from alpha and beta,
# instead of listing them ("level_bounds": 40-60 bytes of a header): every new stream, but those of binarisation 1
DERIVED_BOUNDS_FORMAT_MINOR = 14
MEAN_SECTIONS = {"ANCH": "MANC", "CODE": "MCOD", "ESCP": "MESC"}  # the mean's sections (mean_axis), as its own


@dataclass(frozen=True)
class InterpConfig:
    """Options of the interpolation predictor.

    kind: ``cubic`` or ``linear`` spline, or ``fitted``: every pass blends the linear and the cubic spline along
    each of its axes with weights fitted on the pass (srnsz.decomposition.blend, stored in the header).
    anchor_stride: power of two, 0 = default for the dimensionality.
    dim_order: axes in the order each level visits them (None: slowest first).
    alpha, beta: level-wise bound (QoZ): level l (1 = finest) uses eb / min(alpha^(l-1), beta), because
    coarse points are predictors for many fine ones.
    traversal: ``sequential`` (SZ3, one pass per axis) or ``multidim`` (HPEZ, points odd on several axes
    predicted by a blend of the splines along each of them; see srnsz.decomposition.grid and srnsz.decomposition.blend).
    code_order: the axes in the order the coder scans each chunk's codes, slowest first (None: the field's own). The
    coder models a code from its neighbours before it in the scan, the last axis's most finely: a field whose
    code magnitudes persist along a slow axis (a location's variability over a long time axis) codes smaller with
    that axis scanned last. Stored in the header only when given (format 1.13).
    mean_axis: the passes along the other axes interpolate the field's departures from its mean along this axis
    (srnsz.decomposition.departures; the mean is coded in the stream): a climate series whose mean over time has
    sharp coasts and mountains. None: the field itself. Stored in the header only when given (format 1.13).
    """

    kind: str = "cubic"
    anchor_stride: int = 0
    dim_order: tuple[int, ...] | None = None
    alpha: float = 1.25
    beta: float = 2.0
    traversal: str = "sequential"
    code_order: tuple[int, ...] | None = None
    mean_axis: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in CONFIG_KINDS:
            raise InvalidInputError(f"interpolation kind {self.kind!r} is unknown; use one of {CONFIG_KINDS}")
        if not isinstance(self.anchor_stride, numbers.Integral) or isinstance(self.anchor_stride, bool) or \
                self.anchor_stride < 0 or self.anchor_stride & (self.anchor_stride - 1):
            raise InvalidInputError(f"anchor_stride must be 0 or a power of two, got {self.anchor_stride}")
        object.__setattr__(self, "anchor_stride", int(self.anchor_stride))  # (a NumPy integer: the header is JSON)
        if self.traversal not in TRAVERSALS:
            raise InvalidInputError(f"traversal {self.traversal!r} is unknown; use one of {TRAVERSALS}")
        if not (self.alpha >= 1 and self.beta >= 1):
            raise InvalidInputError(f"alpha and beta must be >= 1, got {self.alpha}, {self.beta}")
        if self.dim_order is not None:
            try:
                axes = tuple(operator.index(a) for a in self.dim_order)
            except TypeError:
                raise InvalidInputError(f"dim_order must list axes (whole numbers), got {self.dim_order!r}") from None
            object.__setattr__(self, "dim_order", axes)
        if self.code_order is not None:
            try:
                if any(isinstance(a, bool) for a in self.code_order):
                    raise TypeError
                order = tuple(operator.index(a) for a in self.code_order)
            except TypeError:
                raise InvalidInputError(f"code_order must list axes (whole numbers), got {self.code_order!r}") from None
            if sorted(order) != list(range(len(order))):
                raise InvalidInputError(f"code_order must be a permutation of the axes, got {self.code_order!r}")
            object.__setattr__(self, "code_order", order)
        if self.mean_axis is not None:
            try:
                if isinstance(self.mean_axis, bool):
                    raise TypeError
                axis = operator.index(self.mean_axis)
            except TypeError:
                raise InvalidInputError(f"mean_axis must be an axis (a whole number), got {self.mean_axis!r}") from None
            if axis < 0:
                raise InvalidInputError(f"mean_axis must be an axis (0 or more), got {self.mean_axis!r}")
            object.__setattr__(self, "mean_axis", axis)

    def header_fields(self) -> dict[str, Any]:
        """The fields as the header records them (code_order and mean_axis only when given: other streams keep their
        bytes)."""
        recorded = asdict(self)
        for name in ("code_order", "mean_axis"):
            if recorded[name] is None:
                del recorded[name]
        if self.code_order is not None:
            recorded["code_order"] = list(self.code_order)
        return recorded


def _finite(pred: np.ndarray, view: np.ndarray, axis: int) -> np.ndarray:
    """Spline predictions ``pred`` of ``view``'s odd points along ``axis`` with the non-finite ones (NaN/Inf
    neighbours) replaced by the left neighbour, or 0 (a copy when any is replaced)."""
    bad = ~np.isfinite(pred)
    if bad.any():
        pred = pred.copy()
        key = [slice(None)] * view.ndim
        key[axis] = slice(0, 2 * pred.shape[axis], 2)
        left = view[tuple(key)].astype(np.float64)
        pred[bad] = np.where(np.isfinite(left[bad]), left[bad], 0.0)
    return pred


class _ChunkSplines:
    """Spline predictions (predict_odd) of a pass's views, for one chunk at a time: the blend fit, the prediction
    and the context details all need them. Valid within the pass: it reads only points no pass target changes."""

    def __init__(self, p: Pass, rec: np.ndarray, mean: AxisMean | None = None) -> None:
        self.lattices = [(rec[key], axis) for key, axis in p.views]
        self.keys = [key for key, _ in p.views]
        self.mean = mean
        self._chunk: tuple | None = None
        self._raw: dict[tuple[int, str], np.ndarray] = {}

    def at(self, c: tuple[slice, ...]) -> Callable[[int, str], np.ndarray]:
        """(view index, kind) -> predictions of chunk ``c`` (do not modify them)."""
        tag = tuple((s.start, s.stop, s.step) for s in c)
        if tag != self._chunk:
            self._chunk, self._raw = tag, {}

        def raw(i: int, kind: str) -> np.ndarray:
            if (i, kind) not in self._raw:
                view, axis = self.lattices[i]
                with np.errstate(over="ignore", invalid="ignore"):
                    pred = predict_odd(view[c], axis, kind)
                    if self.mean is not None:
                        pred += self.mean.correction(self.keys[i], c, axis, kind)
                self._raw[i, kind] = pred
            return self._raw[i, kind]

        return raw

    def finite(self, c: tuple[slice, ...], i: int, kind: str) -> np.ndarray:
        """Predictions of view ``i`` on chunk ``c`` by ``kind``, non-finite ones replaced (see :func:`_finite`)."""
        view, axis = self.lattices[i]
        return _finite(self.at(c)(i, kind), view[c], axis)


# How free (missing) points are coded; encoder-only choices, the decoder needs neither. "follow": a free point takes
# its prediction when it lies within `free_slack` bins of the smooth extension the pipeline put there (code 0),
# else it is coded towards the extension; following always (inf) codes zeros but lets the reconstruction drift
# from the extension across levels, which costs on some fields (CTH pressure) and pays on others at tight bounds.
# "nan": free points are NaN to the predictor (escaped; predictions that would use them fall back to a neighbour),
# so nothing is extrapolated across a coast: 1.3-1.4x smaller on smooth NCEP Z3. The tuner picks per field (the
# first option wins ties, as samples where nothing drifts tie and the whole fields at 1e-2 prefer slack 2).
FREE_OPTIONS = ({"free_mode": "follow", "free_slack": 2.0}, {"free_mode": "follow", "free_slack": float("inf")},
                {"free_mode": "nan"})
FREE_MODES = ("follow", "nan")
FREE_SLACK_DEFAULT = float("inf")
PassPrediction = Callable[[tuple[slice, ...]], np.ndarray]


class PassHook(Protocol):
    """The extension point of the interp traversal (``hat`` uses it): called once per pass, in traversal order,
    on both sides, with the interpolation's predictions of the pass (chunk key -> predictions of the chunk's
    targets); returns the predictions to use instead. ``data`` is the original (NaN at free points) when
    compressing and None when decompressing: what a hook decides from the data it must store in its own
    sections and read back when decoding. A hook object lives for one call (it may keep state)."""

    def __call__(self, p: Pass, plan: Plan, rec: np.ndarray, data: np.ndarray | None,
                 interp: PassPrediction) -> PassPrediction: ...


# One chunk's step of the traversal: (pass, chunk, odd-point index, prediction (chunk shape), contexts (n,),
# details (n,) or None, the level's bound) -> (reconstructed values (n,), codes (n,)); quantizes when encoding,
# reads the codes and recovers the values when decoding.
PointStep = Callable[[Pass, tuple[slice, ...], tuple[slice, ...], np.ndarray, np.ndarray, np.ndarray | None, float],
                     tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class CodeScan:
    """The order the coder scans a chunk's codes in (InterpConfig.code_order; None: the chunk's own C order)."""

    order: tuple[int, ...] | None

    def shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The layout the coder sees of a chunk of ``shape``."""
        return shape if self.order is None else tuple(shape[a] for a in self.order)

    def forward(self, values: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
        """``values`` (n,) of a chunk of ``shape`` (C order) in the scan's order (n,)."""
        if self.order is None or values is None:
            return values
        return np.ascontiguousarray(values.reshape(shape).transpose(self.order)).ravel()

    def batch(self, batch: CodeBatch) -> CodeBatch:
        """A queued batch of a chunk (in its C order) in the scan's order."""
        shape = batch.shape
        return CodeBatch(self.forward(batch.codes, shape), self.forward(batch.contexts, shape), batch.table,
                         self.forward(batch.detail, shape), self.shape(shape))

    def back(self, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Inverse of :meth:`forward`: values (n,) in the scan's order back in the chunk's C order."""
        if self.order is None:
            return values
        return np.ascontiguousarray(values.reshape(self.shape(shape)).transpose(np.argsort(self.order))).ravel()


@dataclass
class _Run:
    """The state of one compression or decompression: the blend weights (compressing: one per blended pass,
    appended; decoding: the header's, taken in order) and the splines of the current pass."""

    blends: list[tuple[float, ...]] = field(default_factory=list)
    decoding: bool = False
    splines: _ChunkSplines | None = None
    taken: int = 0
    mean: AxisMean | None = None

    def next_blend(self) -> tuple[float, ...]:
        self.taken += 1
        return self.blends[self.taken - 1]


@dataclass(frozen=True)
class _Coded:
    """What the passes of an encoding produced: the reconstruction, the queued codes, the escaped values (coding
    order), the blend weights of the blended passes and the coded mean (mean_axis; None without)."""

    plan: Plan
    rec: np.ndarray
    writer: ContextCodeWriter
    escaped: np.ndarray
    blends: list[tuple[float, ...]]
    mean: Encoded | None


@dataclass(frozen=True)
class SampleTrial:
    """A trial compression of sampled blocks: its estimated size (bytes) and reconstruction (the sample's shape);
    the queued codes and their estimated bytes (part of ``nbytes``), from which the same trial in another code
    order is estimated without predicting again."""

    nbytes: int
    recon: np.ndarray
    writer: ContextCodeWriter | None = None
    code_bytes: int = 0

    def in_code_order(self, order: tuple[int, ...]) -> SampleTrial:
        """This trial (made in the field's own code order) with its codes scanned in ``order``."""
        writer = replace(self.writer, batches=[CodeScan(order).batch(b) for b in self.writer.batches])
        code_bytes = writer.estimated_bytes()
        return SampleTrial(self.nbytes - self.code_bytes + code_bytes, self.recon, writer, code_bytes)


Trial = Callable[[dict[str, Any], float], SampleTrial]  # (options, bound) -> trial compression of the sample
TUNE_MODES = ("fast", "best", "off")
# Share of the field that trial compressions sample, per mode.
TUNE_FRACTIONS = {"fast": TUNE_FRACTION, "best": 2 * TUNE_FRACTION}
# (alpha, beta) pairs tried after the default (QoZ's search space, thinned to the pairs that win somewhere);
# only by ``best``: with context-mixing coding the default won on all 30 shared field/bound pairs.
LEVEL_BOUND_OPTIONS = ({"alpha": 1.5, "beta": 3.0}, {"alpha": 2.0, "beta": 4.0})
# Rounding biases (dead zones, see srnsz.quantizer) the psnr mode tries: at 50 dB a bias of 0.05-0.1 saved 10-19%
# of the bits at the same PSNR on Gray-Scott and ECHAM5 T, at 90 dB it cost 1% on vorticity: chosen per field.
ROUND_BIAS_OPTIONS = ({"round_bias": 0.0}, {"round_bias": 0.05}, {"round_bias": 0.1}, {"round_bias": 0.2})
# Lone codes dropped within this slack (bins; srnsz.quantizer.drop_lone_codes), tried before the dead zone at low
# rates: 0.25 saved as much as 0.5 or 1 on ECHAM5 T and NCEP U at 50 dB, and widens the stated bound least.
LONE_SLACK_OPTIONS = ({"lone_slack": 0.25},)
# ... and kept only where the sample's estimate shows them saving at least 2%: on the three CTH fields at 90 dB where
# they then cost 0.7-3% on the whole field, the sample had shown 0.2-0.7%; where they paid, 8-25%.
LONE_MIN_GAIN = 1.02
# A code order other than the field's (InterpConfig.code_order) or departures from a mean (mean_axis) must win by
# this much on the size tuner's small blocks and then on the larger sample of the multidim check (SECOND_OPINION):
# on the shared fields (2026-12-06, rel 1e-2 / 1e-3) the small blocks alone chose a code order on NCEP Z3 at 1e-3
# that was 3.5% smaller there and 1.2% larger on the whole field (the larger sample: 1.1% larger).
LAYOUT_MIN_GAIN = 1.02
SECOND_OPINION = ("code_order", "mean_axis")
# The screen of mean axes (InterpPredictor._mean_axes): departures at most this rough against the field. On the shared
# fields and CCSM members (2026-12-06, rel 1e-2 / 1e-3), where the mean paid the ratio was 0.02-0.35 (CCSM over time
# 0.19: 1.94x / 1.18x; NCEP Z3 zonal 0.02: 1.10x / 1.64x; NCEP T zonal 0.35: 1.14x at 1e-2) and 0.63-0.68 where it
# gained at most 2% (NCEP U, ECHAM5 T zonal); the other axes that pass (CTH void fraction 0.44, plot3d 0.53) lose
# 5-30% and are left to the trials. Only where an axis passes do the tuners try other code orders: over the 54 shared
# field/bound pairs (rel 1e-2..1e-4) they won 2.8-3.4% in 4, all on fields that pass (CCSM members, IPSL tos), and
# nothing elsewhere.
MEAN_SCREEN = 0.5
# What a mean costs a stream besides its coded sections (their frames and its record in the header): 94 bytes on
# a 17 x 24 x 32 field at 90 dB, where a mean saving 50 bytes of codes would have grown the stream by 44. (Format
# 1.14 frames them in 43-47 bytes; the writer of formats 1.2-1.6 reproduces its streams with this figure.)
MEAN_RECORD_BYTES = 96
# Sampled blocks span this many grid steps (at most the anchor stride): many small blocks spread the sample.
TUNE_BLOCK = {3: 16, 4: 8}
# The multidim check (_tuned_for_size): where the multidim traversal wins the size tuner's small blocks, it must also
# beat the best sequential option on the psnr mode's larger sample (PSNR_TUNE_*) to be chosen. On the small blocks
# it won 5 of 60 field/bound pairs (14 shared fields and 5 time-series snapshots, rel 1e-2..1e-4, 2026-12-01) and the
# whole field was smaller sequential in 4 of them (Gray-Scott t4000 10.8%, grayscott_pypde 9.5%, turbulence s19 2.7%,
# NCEP U 2.1%: sample multidim / sequential 0.97-0.99, whole field 1.02-1.12); the larger sample ranked all 5 right
# (1.00-1.11 there, and 0.984 on COSMO at 1e-2, where multidim is 1.1% smaller). Asked only then: it costs two trial
# compressions of up to a quarter of the field.
# The fast profile (api.compress(profile="fast")): no trial compressions, the cubic spline one axis at a time and the
# two-model coder (binarisation 3, format 1.8). On the shared fields at rel 1e-2 / 1e-3 against the best profile: the
# trials and blend fits were half of the compression time for 10-14% of the ratio; the coder 2x faster for 4-6%.
FAST_PROFILE = {"tune": "off", "kind": "cubic", "traversal": "sequential", "fast_coding": True}
# Encoder-only options a caller may leave open (None): the tuners may choose them, the others stay as given.
OPEN_ENCODER_OPTIONS = ("round_bias", "lone_slack", "row_deltas", "fast_coding")
# The psnr mode's trials: fields up to PSNR_TUNE_FULL_POINTS whole, else a quarter of them in large blocks.
PSNR_TUNE_BLOCK = {1: 256, 2: 64, 3: 32, 4: 16}
PSNR_TUNE_FULL_POINTS = 1 << 18
PSNR_TUNE_FRACTION = 0.25
# At this many bits per value or more (on the sample, at the target) the psnr mode keeps the size tuner's options:
# on the 14 shared fields at 90 dB the dead zone and level-wise bounds changed nothing there.
HIGH_RATE_BITS = 3.0


def _handicap(options: dict[str, Any]) -> float:
    """What a tuner multiplies an option set's size by: dropping lone codes must win by LONE_MIN_GAIN, another
    code order and interpolating departures from a mean by LAYOUT_MIN_GAIN each."""
    layouts = sum(options.get(name) is not None for name in SECOND_OPINION)
    return (LONE_MIN_GAIN if options.get("lone_slack") else 1.0) * LAYOUT_MIN_GAIN ** layouts


def code_orders(ndim: int) -> list[tuple[int, ...]]:
    """The code orders (InterpConfig.code_order) the tuners try besides the field's own: each other axis scanned
    last, the others in order (the last axis's neighbour is the one the coder models most finely)."""
    return [(*(a for a in range(ndim) if a != last), last) for last in range(ndim - 1)]


def derived_level_bounds(levels: int, eb: float, alpha: float, beta: float) -> list[float]:
    """Absolute bound per level, coarsest first: ``eb`` / min(alpha^k, beta) k levels above the finest, alpha^k by
    repeated multiplication (IEEE basic operations: the same floats on every platform, which decoders of format 1.14
    rely on: they derive the bounds instead of reading them)."""
    bounds, power = [], 1.0
    for _ in range(levels):
        bounds.append(eb / min(power, beta))
        power *= alpha
    return bounds[::-1]


def recorded_bound(params: dict[str, Any]) -> float:
    """The finest level's bound an interp header records (format 1.14: ``eb``), checked to be a positive number."""
    eb = params.get("eb")
    try:
        if isinstance(eb, bool) or not isinstance(eb, int | float) or not 0 < float(eb) < math.inf:
            raise ValueError
    except (ValueError, OverflowError):
        raise StreamFormatError("the bound in the interp parameters is invalid") from None
    return float(eb)


@register_predictor
class InterpPredictor(Predictor):
    """Anchors stored exactly, then cubic/linear spline levels, residuals quantized, codes context-coded.

    ``tune="fast"`` picks the spline kind, the traversal and the dimension order that the user left open by trial
    compression of sampled blocks; ``"best"`` samples twice as much and also tries level-wise bounds. The choice
    is stored in the header, so decoding never tunes.
    """

    name = "interp"
    can_preview = True

    def __init__(self, tune: str = "fast", free_mode: str = "follow", free_slack: float = FREE_SLACK_DEFAULT,
                 round_bias: float | None = None, lone_slack: float | None = None, row_deltas: bool | None = None,
                 fast_coding: bool | None = None, binarisation: int | None = None, threads: int | None = None,
                 **options: Any) -> None:
        if tune not in TUNE_MODES:
            raise InvalidInputError(f"tune must be one of {TUNE_MODES}, got {tune!r}")
        if free_mode not in FREE_MODES:
            raise InvalidInputError(f"free_mode must be one of {FREE_MODES}, got {free_mode!r}")
        # free_*, round_bias, lone_slack, row_deltas, fast_coding and binarisation are encoder-only (see FREE_OPTIONS,
        # ROUND_BIAS_OPTIONS, LONE_SLACK_OPTIONS, coding.batch.METHOD_ROW_DELTAS, FAST_PROFILE), not in the header
        self.tune, self.free_mode, self.row_deltas = tune, free_mode, bool(row_deltas)
        self.fast_coding = bool(fast_coding)
        # threads coding the code tables side by side (encoder only: the same bytes for any; None: the cores available)
        self.coding_threads = check_threads(threads)
        # the context mixing's binarisation (None: the writer's); 1 writes the codes as formats 1.2-1.6 did
        self.binarisation = binarisation if binarisation is None else written_binarisation(binarisation).ident
        try:  # a round_bias or lone_slack left open (None) is 0 unless the psnr mode tunes it
            self.free_slack, self.round_bias = float(free_slack), float(round_bias or 0.0)
            self.lone_slack = float(lone_slack or 0.0)
        except (TypeError, ValueError):
            raise InvalidInputError(f"free_slack (bins), round_bias and lone_slack must be numbers, got "
                                    f"{free_slack!r}, {round_bias!r}, {lone_slack!r}") from None
        if not 0 <= self.round_bias < 0.5:
            raise InvalidInputError(f"round_bias must be in [0, 0.5), got {round_bias!r}")
        if not 0 <= self.lone_slack <= 1:
            raise InvalidInputError(f"lone_slack must be in [0, 1] (bins), got {lone_slack!r}")
        given = dict(zip(OPEN_ENCODER_OPTIONS, (round_bias, lone_slack, row_deltas, fast_coding)))
        self.fixed = frozenset(options) | {name for name, value in given.items() if value is not None}
        self.config = InterpConfig(**options)

    def tuned(self, data: np.ndarray, eb: float, free: np.ndarray | None = None) -> InterpPredictor:
        """This predictor with the open options chosen for ``data`` (itself if there is nothing to tune).

        Greedy trial compression of sampled blocks, sizes estimated from the code entropy: the spline kind,
        then the traversal and dimension order, then, where an axis passes the screen of :meth:`_mean_axes`, a mean
        to interpolate departures from and the code order, then the level-wise bounds (alpha, beta), then, when
        there are ``free`` points (see :meth:`Predictor.compress`), how closely they follow their predictions."""
        if self.tune == "off":
            return self
        mean_axes = self._mean_axes(data, free)
        stages = self._tuning_stages(data.ndim, free is not None and bool(free.any()), mean_axes)
        if not stages:
            return self
        # the larger sample is cut only where a choice the small blocks misjudge wins them
        large_trial = functools.cache(lambda: self._sample_trials(data, free, True, bool(mean_axes))[0])
        return self._tuned_for_size(eb, stages, self._sample_trials(data, free, False, bool(mean_axes))[0],
                                    large_trial)

    def _tuned_for_size(self, eb: float, stages: list[list[dict[str, Any]]], trial: Trial,
                        large_check: Callable[[], Trial] | None = None) -> InterpPredictor:
        """This predictor with the options of ``stages`` chosen greedily for the smallest ``trial`` at ``eb``. Where
        ``large_check`` gives a second trial (on larger blocks), a winner the small blocks misjudge must also win
        there: the multidim traversal against the stage's best sequential option (the multidim check, noted at
        TUNE_BLOCK), a mean or another code order against the stage's first option (noted at LAYOUT_MIN_GAIN)."""
        chosen: dict[str, Any] = {}
        for stage in stages:
            options = [{**chosen, **option} for option in stage]
            best = min(options, key=lambda o: trial(o, eb).nbytes * _handicap(o))
            sequential = [o for o in options if o.get("traversal") == "sequential"]
            rival = None
            if best.get("traversal") == "multidim" and sequential:
                rival = min(sequential, key=lambda o: trial(o, eb).nbytes * _handicap(o))
            elif any(best.get(name) is not None and chosen.get(name) is None for name in SECOND_OPINION):
                rival = chosen
            if large_check is not None and rival is not None:
                check = large_check()
                best = min((rival, best), key=lambda o: check(o, eb).nbytes * _handicap(o))
            chosen = best
        return self._with(chosen)

    def for_psnr(self, data: np.ndarray, eb: float, free: np.ndarray | None, target_db: float,
                 for_ssim: bool = False) -> tuple[InterpPredictor, float]:
        """The open options chosen for the fewest bits at ``target_db``, and the bound reaching it on the sample.
        ``for_ssim``: lone codes are kept (at the same SSIM dropping them cost 6-12% on three of four shared fields
        checked and saved 9% on NCEP U, 2026-12-01: their isolated errors are structure to SSIM; choosing per field
        would tune twice).

        The bound is first searched on large sampled blocks with the current options. At high rates (at least
        HIGH_RATE_BITS per value there) the error is close to uniform in every configuration and the options of
        :meth:`tuned` at that bound are kept. Below, greedy stages (rounding bias, spline, traversal, level-wise
        bounds) score each option by its bits at the target, found by its own bound search on the sample. The
        coder may code a level's codes as row differences where smaller (not in the trials' estimates)."""
        if for_ssim and "lone_slack" not in self.fixed:
            return self.with_fixed(lone_slack=0.0).for_psnr(data, eb, free, target_db)
        deltas = {"row_deltas": self.row_deltas if "row_deltas" in self.fixed else True}
        if self.tune == "off":
            return self._with(deltas), eb
        mean_axes = self._mean_axes(data, free)
        trial, sample, valid = self._sample_trials(data, free, True, bool(mean_axes))
        value_range = finite_range(data, free)
        original = sample.astype(np.float64)[valid]
        per_value = 8.0 / sample.size

        def psnr(options: dict[str, Any], bound: float) -> float:
            err = trial(options, bound).recon[valid] - original
            return psnr_db(float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0, value_range)

        def reach(options: dict[str, Any], start: float, tolerance_db: float) -> tuple[float, float]:
            """(bound reaching the target on the sample, bits/value there): the bits interpolated in PSNR
            between the two trials nearest the target."""
            found, tried = search_bound(lambda bound: psnr(options, bound), target_db, start, tolerance_db,
                                             max_trials=4)
            near = sorted(tried, key=lambda t: abs(t.db - target_db))[:2]
            bits = [trial(options, t.eb).nbytes * per_value for t in near]
            if len(near) == 2 and near[0].db != near[1].db and np.isfinite(near[1].db):
                share = (target_db - near[0].db) / (near[1].db - near[0].db)
                bits[0] += (bits[1] - bits[0]) * min(max(share, -1.0), 2.0)
            return (found.eb if found is not None else tried[-1].eb), bits[0]

        has_free = free is not None and bool(free.any())
        at, base_bits = reach({}, eb, 0.2)
        if base_bits >= HIGH_RATE_BITS:
            stages = self._tuning_stages(data.ndim, has_free, mean_axes, for_psnr=True)
            return self._tuned_for_size(at, stages, trial)._with(deltas), at
        reached: dict[tuple, tuple[float, float]] = {}

        def bits_at_target(options: dict[str, Any]) -> float:
            key = tuple(sorted(options.items()))
            if key not in reached:
                reached[key] = reach(options, at, 0.1)
            return reached[key][1]

        def score(options: dict[str, Any]) -> float:
            return bits_at_target(options) * _handicap(options)

        chosen: dict[str, Any] = {}
        for stage in self._tuning_stages(data.ndim, has_free, mean_axes, for_psnr=True, low_rate=True):
            chosen = min(({**chosen, **option} for option in stage), key=score)
        if chosen.get("mean_axis") is not None and deltas["row_deltas"] and data.size <= PSNR_TUNE_FULL_POINTS:
            # The trials leave out row differences, which pay most where a mean would also help (a profile
            # repeated across the other axes); on a field the trials took whole, it is finished at its bound against
            # the field's own layout: a mean chosen on a 17 x 24 x 32 profile at 90 dB grew the stream by 15%.
            def finished(options: dict[str, Any]) -> float:
                bits_at_target(options)
                bound = reached[tuple(sorted(options.items()))][0]
                encoded = self._with({**options, **deltas}).encode(data, bound, free=free)
                record = MEAN_RECORD_BYTES if options.get("mean_axis") is not None else 0
                return sum(map(len, encoded.sections.values())) + record

            own = {name: None for name in SECOND_OPINION if name not in self.fixed}
            chosen = min(({**chosen, **own}, chosen), key=finished)
        return (self._with({**chosen, **deltas}),
                reached.get(tuple(sorted(chosen.items())), (at, 0.0))[0])

    def _with(self, chosen: dict[str, Any]) -> InterpPredictor:
        """This predictor's options with ``chosen`` over them, tuning off."""
        return InterpPredictor(tune="off", **{**asdict(self.config), **self._encoder_options(), **chosen})

    def with_fixed(self, **forced: Any) -> InterpPredictor:
        """This predictor as the caller made it (before tuning) with the ``forced`` options fixed too."""
        kept = {name: value for name, value in asdict(self.config).items() if name in self.fixed}
        encoder = {name: getattr(self, name) if name in self.fixed else None for name in OPEN_ENCODER_OPTIONS}
        return InterpPredictor(tune=self.tune, free_mode=self.free_mode, free_slack=self.free_slack,
                               binarisation=self.binarisation, threads=self.coding_threads,
                               **{**encoder, **kept, **forced})

    def tuned_with(self, data: np.ndarray, eb: float, free: np.ndarray | None = None, **forced: Any
                   ) -> InterpPredictor:
        """:meth:`tuned` with the ``forced`` options fixed too (the ones fixed by the caller stay fixed)."""
        return self.with_fixed(**forced).tuned(data, eb, free)

    def _sampling(self, shape: tuple[int, ...], for_psnr: bool = False) -> tuple[int, int, float]:
        """(block side, full_points, fraction) of the trial samples (see sample_blocks). The psnr mode samples
        larger blocks and more of them: the dead zone and the level-wise bounds act across levels, and on the
        small blocks of the size tuner their rankings differed from the whole field's."""
        stride = self._plan(shape).anchor_stride
        if for_psnr:
            return min(stride, PSNR_TUNE_BLOCK.get(len(shape), 16)), PSNR_TUNE_FULL_POINTS, PSNR_TUNE_FRACTION
        return min(stride, TUNE_BLOCK.get(len(shape), 8)), TUNE_FULL_POINTS, TUNE_FRACTIONS[self.tune]

    def _sample_trials(self, data: np.ndarray, free: np.ndarray | None, for_psnr: bool = False,
                       rescans: bool = False) -> tuple[Trial, np.ndarray, np.ndarray]:
        """((options, bound) -> the trial compression of the sampled blocks of ``data`` with ``options`` over this
        predictor's, each computed once; the sampled data; the sampled mask of valid points). ``rescans``: the
        trials keep their queued codes (4 bytes a sampled point each), from which the same trial in another code
        order is estimated; else they are dropped and every trial predicts."""
        stride, full_points, fraction = self._sampling(data.shape, for_psnr)

        def sample(array: np.ndarray) -> np.ndarray:
            return sample_blocks(array, stride, full_points=full_points, fraction=fraction)

        sample_data = sample(data)
        sample_free = None if free is None else sample(free)
        valid = np.isfinite(sample_data) if sample_free is None else np.isfinite(sample_data) & ~sample_free
        tried: dict[tuple, SampleTrial] = {}

        @functools.cache
        def field_mean(axis: int) -> np.ndarray:  # one pass over the field per axis, whatever the bounds tried
            return axis_mean(data, axis, free).astype(data.dtype)

        @functools.cache
        def sampled_mean(axis: int, eb: float) -> tuple[AxisMean, float]:
            """The whole field's mean along ``axis`` as the sample's blocks see it, and its coded bytes' share
            of the sample: a block's own mean would be a noisier and costlier one."""
            coded = self._mean_coder().encode(field_mean(axis), eb * MEAN_BOUND_SHARE)
            seen = sample(np.broadcast_to(coded.recon.astype(np.float64), data.shape))
            nbytes = sum(map(len, coded.sections.values())) + MEAN_RECORD_BYTES
            return (AxisMean(axis + 1, np.ascontiguousarray(seen[along(seen.ndim, axis + 1, 0)])),
                    nbytes * sample_data.size / data.size)

        def trial(options: dict[str, Any], eb: float) -> SampleTrial:
            config = {**asdict(self.config), **self._encoder_options(), **options}
            order = config["dim_order"] if config["dim_order"] is not None else tuple(range(data.ndim))
            # Shift axes by one: the sample's leading axis is the batch of blocks (scanned slowest).
            scan, mean_axis = config["code_order"], config["mean_axis"]
            config = {**config, "dim_order": tuple(a + 1 for a in order), "anchor_stride": stride,
                      "code_order": None if scan is None else (0, *(a + 1 for a in scan)),
                      "mean_axis": None if mean_axis is None else mean_axis + 1}
            key = (*sorted(config.items()), eb)
            if key not in tried and scan is not None and rescans:  # the same predictions as in the field's own order
                tried[key] = trial({**options, "code_order": None}, eb).in_code_order(config["code_order"])
            if key not in tried:  # each stage's first option is the previous stage's winner
                mean, mean_bytes = sampled_mean(mean_axis, eb) if mean_axis is not None else (None, 0.0)
                done = InterpPredictor(tune="off", **config).trial(sample_data, eb, sample_free, mean=mean)
                tried[key] = replace(done, nbytes=done.nbytes + round(mean_bytes),
                                     writer=done.writer if rescans else None)
            return tried[key]

        return trial, sample_data, valid

    def _encoder_options(self) -> dict[str, Any]:
        return {"free_mode": self.free_mode, "free_slack": self.free_slack, "round_bias": self.round_bias,
                "lone_slack": self.lone_slack, "row_deltas": self.row_deltas, "fast_coding": self.fast_coding,
                "binarisation": self.binarisation, "threads": self.coding_threads}

    def _free_as_nan(self, data: np.ndarray, free: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(data, free) as the passes see them: with free_mode "nan", free points become NaN (and are no longer
        free: the predictor escapes them and predicts around them)."""
        if free is None or self.free_mode != "nan":
            return data, free
        return np.where(free, np.nan, data).astype(data.dtype), None

    def _mean_axes(self, data: np.ndarray, free: np.ndarray | None) -> list[int]:
        """The axes whose mean the tuners try interpolating departures from (mean_axis), most promising first: those
        whose departures are at most MEAN_SCREEN as rough as the field across the other axes on the size tuner's
        sample (srnsz.decomposition.departures.departure_roughness)."""
        if data.ndim < 2 or self.tune == "off" or {"mean_axis", "code_order"} <= self.fixed:
            return []
        stride, full_points, fraction = self._sampling(data.shape)

        def sample(array: np.ndarray) -> np.ndarray:
            return sample_blocks(array, stride, full_points=full_points, fraction=fraction)

        seen = sample(data) if free is None else np.where(sample(free), np.nan, sample(data))
        means = axis_means(data, list(range(data.ndim)), free)
        ratios = {axis: departure_roughness(seen, sample(np.broadcast_to(mean, data.shape)), axis + 1)
                  for axis, mean in enumerate(means)}
        return sorted((axis for axis, ratio in ratios.items() if ratio <= MEAN_SCREEN), key=ratios.get)

    def _tuning_stages(self, ndim: int, has_free: bool = False, mean_axes: Sequence[int] = (),
                       for_psnr: bool = False, low_rate: bool = False) -> list[list[dict[str, Any]]]:
        """The options left open, one list of alternatives per stage (stages with one alternative dropped), the
        ``mean_axes`` (see :meth:`_mean_axes`) and other code orders where there are any; the psnr mode
        (``for_psnr``) also tries the quintic spline and, at low rates, rounding biases, dropping lone codes and
        level-wise bounds."""
        stages: list[list[dict[str, Any]]] = []
        # First: at low rates dropping lone codes and the dead zone move the bits most, and the other choices depend
        # on them; lone codes before the dead zone, whose best width is smaller once they are dropped (NCEP U at
        # 50 dB: 0.2 without, 0.05 with).
        if low_rate and "lone_slack" not in self.fixed:
            stages.append([{}, *LONE_SLACK_OPTIONS])
        if low_rate and "round_bias" not in self.fixed:
            stages.append(list(ROUND_BIAS_OPTIONS))
        if "kind" not in self.fixed:
            # fast leaves out plain cubic: fitted blends it with linear per pass and came within 1.2% of it on
            # the two shared field/bound pairs (of 30) where cubic won. Quintic only in the psnr mode for now:
            # in the bound modes it would change the streams of the fields it wins (format 1.4).
            kinds = [*(SIZE_KINDS if self.tune == "best" else FAST_KINDS), *(["quintic"] if for_psnr else [])]
            stages.append([{"kind": kind} for kind in kinds])
        if ndim > 1:
            orders = ([self.config.dim_order] if "dim_order" in self.fixed
                      else [tuple(range(ndim)), tuple(reversed(range(ndim)))])
            traversals = [self.config.traversal] if "traversal" in self.fixed else list(TRAVERSALS)
            # The multidim blend weighs the axes per pass: the order only shuffles its passes.
            stages.append([{"traversal": t, "dim_order": o} for t in traversals
                           for o in (orders if t == "sequential" else orders[:1])])
        # The mean after the spline and traversal: judged against them tuned (before them, a mean chosen on the
        # default spline cost 1% on a small psnr golden field and the zonal mean of NCEP Z3 lost 10-20%).
        if mean_axes and "mean_axis" not in self.fixed:
            stages.append([{}, *({"mean_axis": axis} for axis in mean_axes)])
        if mean_axes and "code_order" not in self.fixed:  # where a mean screens in (noted at MEAN_SCREEN)
            stages.append([{}, *({"code_order": order} for order in code_orders(ndim))])
        if (self.tune == "best" or low_rate) and not {"alpha", "beta"} & self.fixed:
            stages.append([{}, *LEVEL_BOUND_OPTIONS])
        if has_free:
            stages.append(list(FREE_OPTIONS))
        return [stage for stage in stages if len(stage) > 1]

    def trial(self, sample: np.ndarray, eb: float, free: np.ndarray | None = None, hook: PassHook | None = None,
              mean: AxisMean | None = None) -> SampleTrial:
        """Estimated stream size for ``sample`` (codes and escapes; anchors are the same for every trial) and its
        reconstruction, this configuration as it is, ``hook`` as in :meth:`encode`: the context-mixing bytes of the
        codes without trying the other codings or packing the sections. Escaped NaN are free points (free_mode
        "nan"): the pipeline stores them anyway, so they count nothing. ``mean``: the decoded mean along mean_axis
        to use (its cost not counted) instead of coding the sample's own."""
        sample, free = self._free_as_nan(sample, free)
        coded = self._encode_passes(sample, eb, None, free, hook, mean)
        mean_bytes = sum(map(len, coded.mean.sections.values())) if coded.mean is not None else 0
        code_bytes = coded.writer.estimated_bytes()
        return SampleTrial(code_bytes + coded.escaped[np.isfinite(coded.escaped)].nbytes + mean_bytes, coded.rec,
                           coded.writer, code_bytes)

    @classmethod
    def from_params(cls, params: dict[str, Any], runtime: Runtime | None = None) -> InterpPredictor:
        try:
            return cls(tune="off", **params["config"])
        except (KeyError, TypeError, ValueError, OverflowError, InvalidInputError) as exc:
            raise StreamFormatError(f"the interp predictor parameters are invalid ({exc})") from None

    @classmethod
    def options(cls) -> set[str]:
        """Its own options and InterpConfig's (which it takes through ``**options``)."""
        return super().options() | {f.name for f in fields(InterpConfig)}

    def check_sections(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                       dtype: np.dtype) -> None:
        try:
            plan = self._plan(shape)
        except InvalidInputError as exc:
            raise StreamFormatError(f"the interp traversal cannot cover the header's shape ({exc})") from None
        anchors = math.prod(len(range(*k.indices(n))) for k, n in zip(plan.anchor_key, shape))
        declared = lossless.declared_size(sections["ANCH"]) if "ANCH" in sections else None
        if declared is not None and declared != anchors * dtype.itemsize:
            raise StreamFormatError("the anchor section does not match the shape")
        if self.config.mean_axis is not None:
            if not {"MANC", "MCOD"} <= sections.keys() or not isinstance(params.get("mean"), dict):
                raise StreamFormatError("the stream lacks the mean its interp predictor interpolates around")
            mean_sections, mean_params, mean_shape, _ = self._recorded_mean(sections, params, shape)
            InterpPredictor.from_params(mean_params).check_sections(mean_sections, mean_params, mean_shape, dtype)

    def _recorded_mean(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...]
                       ) -> tuple[dict[str, bytes], dict[str, Any], tuple[int, ...], float]:
        """(sections, params, shape, bound) of the mean along mean_axis as the stream records it."""
        mean_sections = {name: sections[tag] for name, tag in MEAN_SECTIONS.items() if tag in sections}
        mean_params = params["mean"]
        bound = mean_params.get("bound") if isinstance(mean_params, dict) else None
        try:
            if isinstance(bound, bool) or not isinstance(bound, int | float) or not 0 <= float(bound) < math.inf:
                raise ValueError
        except (ValueError, OverflowError):
            raise StreamFormatError("the bound of the mean in the header is invalid") from None
        config = mean_params.get("config")
        if not isinstance(config, dict) or config.get("mean_axis") is not None:
            raise StreamFormatError("the mean's own interp parameters in the header are invalid")
        mean_shape = tuple(1 if a == self.config.mean_axis else n for a, n in enumerate(shape))
        return mean_sections, mean_params, mean_shape, float(bound)

    def _plan(self, shape: tuple[int, ...]) -> Plan:
        if self.config.code_order is not None and len(self.config.code_order) != len(shape):
            raise InvalidInputError(f"code_order {self.config.code_order} does not fit a {len(shape)}D field")
        if self.config.mean_axis is not None and self.config.mean_axis >= len(shape):
            raise InvalidInputError(f"mean_axis {self.config.mean_axis} is not an axis of a {len(shape)}D field")
        try:
            return make_plan(shape, self.config.anchor_stride, self.config.dim_order, self.config.traversal)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None

    def level_bounds(self, plan: Plan, eb: float) -> list[float]:
        """Absolute bound per level, coarsest first (:func:`derived_level_bounds`; the writer of formats 1.2-1.6,
        binarisation 1, lists them in the header as it computed them, with alpha ** k)."""
        c = self.config
        if self.binarisation == BINARISATION_1.ident:
            return [eb / min(c.alpha ** (plan.levels - 1 - level), c.beta) for level in range(plan.levels)]
        return derived_level_bounds(plan.levels, eb, c.alpha, c.beta)

    def _pass_predictor(self, run: _Run, p: Pass, rec: np.ndarray, data: np.ndarray | None) -> PassPrediction:
        """Interpolation's predictions of pass ``p`` chunk by chunk (chunk keys are relative to ``rec[p.key]``);
        ``data`` is the original when compressing (the blend weights are fitted on it) and None when decoding."""
        run.splines = splines = _ChunkSplines(p, rec, run.mean)
        views = self._spline_views(p)
        if len(views) == 1:
            (i, kind), = views
            return lambda c: splines.finite(c, i, kind)
        if run.decoding:
            weights = run.next_blend()
        else:
            weights = choose_weights(self._blend_samples(splines, p, views, data), len(views))
            run.blends.append(weights)
        return lambda c: blend([splines.finite(c, i, kind) if w else None
                                for (i, kind), w in zip(views, weights)], weights)

    def _spline_views(self, p: Pass) -> list[tuple[int, str]]:
        """(view index in ``p.views``, spline kind) of every prediction a pass blends (one: nothing to blend)."""
        kinds = KINDS if self.config.kind == "fitted" else (self.config.kind,)
        return [(i, kind) for i in range(len(p.views)) for kind in kinds]

    @staticmethod
    def _contexts(p: Pass, mag: np.ndarray, c: tuple[slice, ...]) -> np.ndarray:
        if not p.also:
            return neighbour_contexts(mag[p.key][c], p.axis)
        return multi_view_contexts([mag[key][c] for key, _ in p.views], list(p.axes))

    @staticmethod
    def _details(run: _Run, p: Pass, c: tuple[slice, ...], bound: float, detailed: bool) -> np.ndarray | None:
        """Context details of chunk ``c`` of pass ``p`` (streams before format 1.1 have none), from the pass's
        splines (set by :meth:`_pass_predictor`)."""
        if not detailed:
            return None
        return curvature_details(run.splines.at(c), len(p.views), 2.0 * bound).ravel()

    @staticmethod
    def _recorded_blends(plan: Plan, params: dict[str, Any]) -> list[tuple[float, ...]]:
        """The blend weights of the header, in pass order."""
        per_view = len(KINDS) if params["config"].get("kind") == "fitted" else 1
        sizes = [len(p.views) * per_view for p in plan.passes() if len(p.views) * per_view > 1]
        recorded = params.get("blend_weights", [])
        if not isinstance(recorded, list) or len(recorded) != len(sizes) or not all(
                valid_weights(w, k) for w, k in zip(recorded, sizes)):
            raise StreamFormatError("the blend weights in the header do not match the multidim traversal")
        return [tuple(float(x) for x in w) for w in recorded]

    @staticmethod
    def _blend_samples(splines: _ChunkSplines, p: Pass, views: list[tuple[int, str]], data: np.ndarray) -> Samples:
        odd = odd_along(p.axis, data.ndim)
        target = data[p.key]

        def samples() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for c in chunks(target.shape, p.axes):
                x = target[c][odd].astype(np.float64).ravel()
                pred = np.stack([splines.finite(c, i, kind).ravel() for i, kind in views], 1)
                with np.errstate(invalid="ignore", over="ignore"):
                    keep = np.isfinite(x) & np.isfinite(pred @ np.ones(len(views)))
                yield (pred, x) if keep.all() else (pred[keep], x[keep])  # no copies where all are finite

        if target[odd].size * len(views) > CHUNK_POINTS:
            return samples  # recomputed on each call: memory stays at one chunk
        cached = list(samples())  # choose_weights reads them twice
        return lambda: iter(cached)

    def compress(self, data: np.ndarray, eb: float, progress: Progress | None = None,
                 free: np.ndarray | None = None) -> Encoded:
        chosen = self.tuned(data, eb, free) if self.tune != "off" else self
        return chosen.encode(data, eb, progress, free)

    def encode(self, data: np.ndarray, eb: float, progress: Progress | None = None, free: np.ndarray | None = None,
               hook: PassHook | None = None) -> Encoded:
        """Compress with this configuration as it is (no tuning), ``hook`` (if any) adjusting each pass's
        predictions; :meth:`decode` with the same hook mirrors it."""
        data, free = self._free_as_nan(data, free)
        coded = self._encode_passes(data, eb, progress, free, hook)
        plan = coded.plan
        anchors = np.ascontiguousarray(data[plan.anchor_key])
        if progress:
            progress(anchors.size)
        code = coded.writer.finish()
        sections = {"ANCH": lossless.pack(anchors.tobytes()), "CODE": code}
        if coded.escaped.size:
            sections["ESCP"] = lossless.pack(coded.escaped.tobytes())
        config = {**self.config.header_fields(), "dim_order": list(plan.dim_order)}
        listed = self.binarisation == BINARISATION_1.ident  # the frozen streams of formats 1.2-1.6 list the bounds
        bounds = {"level_bounds": self.level_bounds(plan, eb)} if listed else {"eb": eb}
        params = {"config": config, "anchor_stride": plan.anchor_stride, "levels": plan.levels, **bounds,
                  "chunk_points": CHUNK_POINTS, "details": True}
        if coded.blends:
            params["blend_weights"] = [list(w) for w in coded.blends]
        needs = [QUINTIC_FORMAT_MINOR if self.config.kind == "quintic" else None, format_minor(code),
                 None if listed else DERIVED_BOUNDS_FORMAT_MINOR]
        if self.config.code_order is not None or coded.mean is not None:
            needs.append(TUNED_LAYOUT_FORMAT_MINOR)
        if coded.mean is not None:
            sections.update({MEAN_SECTIONS[name]: section for name, section in coded.mean.sections.items()})
            params["mean"] = coded.mean.params
            needs.append(coded.mean.format_minor)
        held = held_bound(eb, self.round_bias, self.lone_slack)
        return Encoded(sections, params, coded.rec, max_error=held if held != eb else None,
                       format_minor=max((n for n in needs if n is not None), default=None))

    def preview(self, data: np.ndarray, eb: float, free: np.ndarray | None = None) -> np.ndarray:
        """What :meth:`encode` reconstructs at ``eb`` (this configuration as it is), without the entropy coding."""
        data, free = self._free_as_nan(data, free)
        return self._encode_passes(data, eb, None, free).rec

    def _traverse(self, plan: Plan, rec: np.ndarray, run: _Run, fit_data: np.ndarray | None,
                  hook: PassHook | None, bounds: list[float], detailed: bool, step: PointStep,
                  progress: Progress | None) -> None:
        """The one traversal of encoding and decoding (as SZ3's interpolation decomposition): every pass's
        chunks in order, each predicted from ``rec`` (``fit_data``: what the blend and block fits see, None when
        decoding), the values and codes ``step`` gives written back to ``rec`` and the code magnitudes (the
        contexts of the next passes)."""
        mag = np.zeros(rec.shape, dtype=np.uint8)
        for p in plan.passes():
            rec_v, mag_v = rec[p.key], mag[p.key]
            odd = odd_along(p.axis, rec_v.ndim)
            predict = self._pass_predictor(run, p, rec, fit_data)
            if hook is not None:
                predict = hook(p, plan, rec, fit_data, predict)
            for c in chunks(rec_v.shape, p.axes):
                pred = predict(c)
                contexts = self._contexts(p, mag, c).ravel()
                details = self._details(run, p, c, bounds[p.level], detailed)
                recon, codes = step(p, c, odd, pred, contexts, details, bounds[p.level])
                rec_v[c][odd] = recon.reshape(pred.shape)
                mag_v[c][odd] = magnitudes(codes).reshape(pred.shape)
                if progress:
                    progress(pred.size)

    def _mean_coder(self) -> InterpPredictor:
        """The predictor that codes the mean along mean_axis (a field with 1 along that axis): cubic splines in
        this configuration's order and anchor stride."""
        return InterpPredictor(tune="off", kind="cubic", anchor_stride=self.config.anchor_stride,
                               dim_order=self.config.dim_order, fast_coding=self.fast_coding,
                               binarisation=self.binarisation, threads=self.coding_threads)

    def _encode_passes(self, data: np.ndarray, eb: float, progress: Progress | None, free: np.ndarray | None,
                       hook: PassHook | None = None, given_mean: AxisMean | None = None) -> _Coded:
        """Predict, quantize and queue the codes of every pass (with mean_axis, first code the mean along it, or
        use ``given_mean``).

        ``free`` points (see :meth:`Predictor.compress`) are coded as if their value were their own prediction
        (code 0, so they cost almost nothing and the decoder needs no mask) and stay out of the blend and
        block-choice fits (NaN there)."""
        plan = self._plan(data.shape)
        fit_data = data if free is None else np.where(free, np.nan, data)
        rec = data.copy()
        writer = ContextCodeWriter(row_deltas=self.row_deltas, fast=self.fast_coding,
                                   binarisation=written_binarisation(self.binarisation), threads=self.coding_threads)
        run = _Run()
        mean = None
        if given_mean is not None:
            run.mean = given_mean
        elif self.config.mean_axis is not None:
            values = axis_mean(data, self.config.mean_axis, free).astype(data.dtype)
            mean = self._mean_coder().encode(values, eb * MEAN_BOUND_SHARE)
            mean.params["bound"] = eb * MEAN_BOUND_SHARE
            run.mean = AxisMean(self.config.mean_axis, mean.recon.astype(np.float64))
        scan = CodeScan(self.config.code_order)
        escaped: list[np.ndarray] = []

        def quantized(p: Pass, c: tuple[slice, ...], odd: tuple[slice, ...], pred: np.ndarray, contexts: np.ndarray,
                      details: np.ndarray | None, bound: float) -> tuple[np.ndarray, np.ndarray]:
            x = data[p.key][c][odd].ravel()
            if free is not None:
                slack = self.free_slack * 2.0 * bound
                with np.errstate(invalid="ignore", over="ignore"):
                    follow = free[p.key][c][odd].ravel() & (np.abs(x - pred.ravel()) <= slack)
                x = np.where(follow, pred.ravel().astype(x.dtype), x)
            q = quantize(x, pred.ravel(), bound, self.round_bias)
            if self.lone_slack:
                q = drop_lone_codes(q, x, pred.ravel(), pred.shape, plan.dim_order, bound, self.round_bias,
                                    self.lone_slack)
            shape = pred.shape
            writer.write(scan.forward(q.codes, shape), scan.forward(contexts, shape), p.level,
                         scan.forward(details, shape), scan.shape(shape))
            escaped.append(q.escaped)
            return q.recon, q.codes

        self._traverse(plan, rec, run, fit_data, hook, self.level_bounds(plan, eb), True, quantized, progress)
        return _Coded(plan, rec, writer, np.concatenate(escaped) if escaped else data.ravel()[:0], run.blends, mean)

    def decompress(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                   dtype: np.dtype, eb: float, progress: Progress | None = None) -> np.ndarray:
        return self.decode(sections, params, shape, dtype, eb, progress)

    def decompress_into(self, out: np.ndarray, sections: dict[str, bytes], params: dict[str, Any],
                        eb: float, progress: Progress | None = None) -> np.ndarray:
        if type(self).decompress is not InterpPredictor.decompress:  # a subclass decodes its own way (hat)
            return super().decompress_into(out, sections, params, eb, progress)
        return self.decode(sections, params, out.shape, out.dtype, eb, progress, out=out)

    def decode(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...], dtype: np.dtype,
               eb: float, progress: Progress | None = None, hook: PassHook | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """Mirror of :meth:`encode` (the same ``hook``, reading its choices from the stream), into ``out`` when
        given (C-contiguous, ``shape`` and ``dtype``)."""
        plan = self._plan(shape)
        if params.get("chunk_points") != CHUNK_POINTS or params.get("levels") != plan.levels:
            raise StreamFormatError("the interp traversal recorded in the header does not match this version")
        if "eb" in params:
            bounds = derived_level_bounds(plan.levels, recorded_bound(params), self.config.alpha, self.config.beta)
        elif "level_bounds" in params:
            bounds = [float(b) for b in params["level_bounds"]]
        else:
            raise StreamFormatError("the interp parameters give no level bounds (eb or level_bounds)")
        detailed = params.get("details", False) is True
        if out is None:
            rec = np.zeros(shape, dtype=dtype)
        else:
            rec = out
            rec.fill(0)
        anchors = np.frombuffer(lossless.unpack(sections["ANCH"], "anchor", rec.nbytes), dtype=dtype)
        if anchors.size != rec[plan.anchor_key].size:
            raise StreamFormatError("the anchor section does not match the shape")
        rec[plan.anchor_key] = anchors.reshape(rec[plan.anchor_key].shape)
        escaped = np.frombuffer(lossless.unpack(sections["ESCP"], "escape", rec.nbytes) if "ESCP" in sections else b"",
                                dtype)
        used = 0
        reader = CodeReader(sections["CODE"], rec.size)
        scan = CodeScan(self.config.code_order)

        def recovered(p: Pass, c: tuple[slice, ...], odd: tuple[slice, ...], pred: np.ndarray, contexts: np.ndarray,
                      details: np.ndarray | None, bound: float) -> tuple[np.ndarray, np.ndarray]:
            nonlocal used
            shape = pred.shape
            codes = scan.back(reader.read(scan.forward(contexts, shape), p.level, scan.forward(details, shape),
                                          scan.shape(shape)), shape)
            n_esc = int(np.count_nonzero(codes == ESCAPE))
            if used + n_esc > escaped.size:
                # The sections passed their CRC: the decoder's contexts drifted from the compressor's.
                raise ReconstructionMismatchError("decoding went out of step with the compressor (more "
                                                  "escaped codes than escaped values)")
            recon = reconstruct(pred.ravel(), codes, bound, dtype, escaped[used:used + n_esc])
            used += n_esc
            return recon, codes

        run = _Run(self._recorded_blends(plan, params), decoding=True)
        if self.config.mean_axis is not None:
            mean_sections, mean_params, mean_shape, mean_bound = self._recorded_mean(sections, params, shape)
            values = InterpPredictor.from_params(mean_params).decode(mean_sections, mean_params, mean_shape, dtype,
                                                                      mean_bound)
            run.mean = AxisMean(self.config.mean_axis, values.astype(np.float64))
        self._traverse(plan, rec, run, None, hook, bounds, detailed, recovered, progress)
        if progress:
            progress(anchors.size)
        return rec
