"""HAT super-resolution at the finest level(s) of the grid expansion (SRN-SZ): the ``hat`` predictor.

Coarser levels are the tuned ``interp`` predictor. At each HAT level (the finest `hat_levels`), the network
upsamples the already reconstructed coarse grid x2: in 2D the whole field (tiled), in 3D every coarse slice along
every axis, a point's predictions averaged over the slices holding it; points odd in every coordinate keep
interpolation. Within every pass of a HAT level each block (`block_size` points per side) takes whichever of HAT
and interpolation has the smaller L1 error on it; one flag per block and pass goes into the stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from srnsz.coding import lossless
from srnsz.coding.batch import CodeBatch
from srnsz.coding.context_mixing import encode_mixing
from srnsz.decomposition.grid import Pass, Plan, chunks, odd_along
from srnsz.decomposition.sampling import central_key
from srnsz.decomposition.tiling import block_ids
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.neural.runtime import (
    FIXED_POINT_ARITHMETICS,
    FLOAT,
    InferenceSettings,
    Runtime,
    arithmetic_to_write,
    check_arithmetic,
    check_device,
    resolve_device,
    upsample_planes,
)
from srnsz.neural.zoo import cached_model, check_name
from srnsz.predictors.base import Encoded, Predictor, Progress, register_predictor
from srnsz.predictors.interp import InterpPredictor, PassPrediction
from srnsz.quantizer import quantize

DEFAULT_BLOCK = {2: 32, 3: 8}
# The default network: hat_pico (a third of hat_nano's inference time per point) trained six times as long as
# hat_pico_series, on all eight mirror flips and transposes of its patches (docs/benchmarks: the same speed; over the
# 15 shared fields and 2 time-series snapshots, geo-mean gain over interp 1.047 / 1.029 at rel 1e-2 / 1e-3 against
# 1.043 / 1.026 with half the training, 1.040 / 1.024 without the flips and hat_pico_series' 1.036 / 1.020,
# 2026-12-07, fixed point).
# hat_pico_series against hat_nano_series (2026-12-01, `benchmarks/neural_predictors.py hat`, 15 shared fields and 4
# time-series snapshots): 1.046 / 1.029 against 1.055 / 1.037; where the network is used, compress 1.8-3.1 MB/s
# against 0.9-2.3, decompress 2.9-6.5 against 1.0-4.4 (float32).
DEFAULT_MODEL = "hat_pico_series_flips_long"
DECODED_PLANES_FORMAT_MINOR = 5  # 3D hat streams whose network also runs on planes decoded within a level
# The network runs on the whole field only if it wins on a central crop of about this share of the points (where it
# cannot win, asking for hat then costs little more than interp); fields this small are not sampled.
SAMPLE_SHARE = 1 / 16
SAMPLE_MIN_POINTS = 1 << 16
# On a crop the network must make the stream at least this much smaller (plain size / network size) to be run on the
# whole field. Measured with hat_nano_series (2026-11-30, 9 fields x 2 bounds): where the whole field then lost, the
# crop had shown 1.006-1.016 (and the full run cost 5-10x interp's time for nothing); where it won, 1.045-1.14 (its
# whole-field gain 1.018-1.24: a central crop overstates it). Fields small enough to be their own sample skip this:
# the network has run on all of it already and the smaller finished stream is kept either way.
SAMPLE_MIN_GAIN = 1.03
# A crop side below this many points leaves the network planes too small to show what it does on the field
# (Gray-Scott 64^3 at 1e-3: a 25^3 crop declined a network that gains 1.24x on the whole field, a 32^3 one did not).
SAMPLE_MIN_SIDE = 32
# In 3D with decoded planes, on the crop (or a field too small to sample) the network is given up as soon as its first
# pass leaves the block choices' L1 error above this share of interpolation's, before the planes decoded within the
# level double its work (2D fields: the network has done all its work by then, no rule). Measured (2026-12-01, 15 3D
# fields x rel 1e-2/1e-3/1e-4, hat_nano_series and a network fine-tuned on CCSM): the crops that then won had 0.43-0.87
# there, but for two small wins given up (ipsl_tos 1e-2 0.90, 1.021x; CCSM member 60 1e-2 0.97, 1.028x with the
# shipped network, while the fine-tuned one wins 1.109x at 0.867); 23 of the 36 that lost had 0.90-1.0.
SAMPLE_GIVE_UP = 0.90
# Two more first-pass rules, for the loose bounds where L1 gains fall inside the zero code's bin: the network is also
# given up where its block choices leave more points off by more than the bound (more nonzero codes) than interpolation,
# or where the bytes they would save -- the plain stream's, estimated from the crop, times the share of the pass's coded
# bytes they remove (its codes under each prediction, coded by context mixing as one table) -- do not cover what a
# network stream adds (NETWORK_STREAM_BYTES, its flags at one bit each) and the crop's SAMPLE_MIN_GAIN. The coder
# itself, because context mixing codes interpolation's smooth, correlated errors better than their sizes say: on ECHAM5
# T's crop at rel 1e-2 the network removed 20% of sum log2(1 + |error| / 2 eb) and 17% of the codes' zero-order entropy,
# yet its first pass coded 5% larger (336 against 320 bytes) and the crop lost. Measured (2026-12-07, `python
# benchmarks/portable_neural.py rules` and throwaway scripts, hat_pico_series, the 12 shared 3D fields, Gray-Scott run A
# t4000/t8500 and CCSM member 60, rel 1e-2/1e-3/1e-4): the share of coded bytes removed was 0.17-0.49 on every first
# pass whose field the network then won (Gray-Scott), -0.48 to -0.24 on CTH void fraction (the first rule's case), -0.05
# on ECHAM5 T 1e-2 and 0.007 on IPSL tos 1e-3 (both crops lost; IPSL's two views: 1.5 KB to save against 7.2 KB needed).
SAMPLE_GIVE_UP_BEYOND = 1.0
# Before all that, the first pass is judged on the first of its two plane sets alone (one view of every target, half the
# network's work): the network is given up where that view's block choices leave more than this share of interpolation's
# L1 error, or save too few coded bytes (the rule above, on that view's choices). The L1 share measured (2026-12-06,
# hat_pico_series, 12 shared 3D fields, Gray-Scott run A t4000 and t8500, CCSM member 60, rel 1e-2/1e-3/1e-4: 45 first
# passes): one view's share was within -0.05 to +0.03 of the two views'; of the 11 first passes that went on (9 then
# won), one view left at most 0.81 (two views 0.78); of the 34 given up, 23 left 0.97-1.0 with one view, which now end
# there.
SAMPLE_GIVE_UP_ONE_VIEW = 0.95
# Before that one view, its rules are tried on a probe: the middle PROBE_SHARE of the set's planes, side by side so that
# the coded bytes see neighbouring planes (sets of at least PROBE_MIN_PLANES planes; in fixed point, where the planes
# run later give the same bits as with the others). Where the network does not help, a quarter of the set's work ends
# it. Measured (2026-12-07, hat_pico_series, the 45 first passes above): the probe's L1 share was within -0.04 to +0.07
# of the whole set's (CTH void fraction +0.15 to +0.21, given up by its bytes either way); it ends 33 of the 36 first
# passes that do not go on (SPERR vorticity 41x128x128 at 1e-2 and 1e-3, and IPSL tos at 1e-3 with a probe of 3 planes,
# pass it and are given up by the later rules) and none that go on; where the network then wins (Gray-Scott), the
# probe's coded bytes save 1.9-7.3x what a network stream needs.
PROBE_SHARE = 1 / 4
PROBE_MIN_PLANES = 8
# The probe's bytes rule needs this many planes: on fewer, the share of coded bytes the network saves comes out far
# below the whole set's (Gray-Scott 64^3 at rel 1e-3 with hat_levels=2, the coarser level's set of 8 planes: 0.029 on
# its 2 probed planes against 0.084 on all 8, which would give up a network that wins 1.15x there; with 4 planes at the
# finest level 0.196 against 0.256).
PROBE_MIN_BYTES_PLANES = 4
# What a hat stream carries beyond the interp stream of the same codes besides its flags: the header's hat parameters
# (weights name, sha256, inference settings; 174-184 bytes on three fields) and the FLAG section's framing.
NETWORK_STREAM_BYTES = 192


@dataclass(frozen=True)
class HatPolicy:
    """When a network is tried on a field and when it is given up (compression only; nothing of it is in the stream).
    The defaults are the measured values above."""

    sample_share: float = SAMPLE_SHARE
    sample_min_points: int = SAMPLE_MIN_POINTS
    sample_min_gain: float = SAMPLE_MIN_GAIN
    sample_min_side: int = SAMPLE_MIN_SIDE
    give_up_l1_share: float = SAMPLE_GIVE_UP
    give_up_beyond_share: float = SAMPLE_GIVE_UP_BEYOND
    network_stream_bytes: float = NETWORK_STREAM_BYTES
    give_up_one_view_share: float = SAMPLE_GIVE_UP_ONE_VIEW


def crop_sides(shape: tuple[int, ...], share: float, min_side: int) -> list[int]:
    """Sides of a box holding about ``share`` of the points of ``shape``, each at least min(n, ``min_side``): axes
    that would fall below that are raised to it and the others shrunk alike to keep the volume (never below it
    either, so the box is larger than ``share`` only where the sides cannot all be ``min_side``)."""
    floors = [min(n, min_side) for n in shape]
    fixed: dict[int, int] = {}
    factor = 1.0
    while len(fixed) < len(shape):
        scaled = [a for a in range(len(shape)) if a not in fixed]
        rest = share * math.prod(shape) / math.prod(fixed.values())
        factor = min(1.0, (rest / math.prod(shape[a] for a in scaled)) ** (1.0 / len(scaled)))
        low = [a for a in scaled if shape[a] * factor < floors[a]]
        if not low:
            break
        fixed.update({a: floors[a] for a in low})
    return [fixed.get(a, min(n, max(floors[a], round(n * factor)))) for a, n in enumerate(shape)]


def plane_predictions(model: Any, fine_view: np.ndarray, axis: int, parity: int, settings: InferenceSettings,
                      eb: float = 0.0, which: np.ndarray | None = None) -> np.ndarray:
    """HAT x2 upsampling of the planes of a 3D lattice ``fine_view`` at the indices of ``parity`` (0 even, 1 odd)
    along ``axis``, each from its points even along the other two axes (within ``eb`` of the truth; a network
    with context planes also gets those of the planes of the same parity before and after, the plane itself at
    the ends): float64 array of shape ``np.moveaxis(fine_view, axis, 0)[parity::2].shape``, its in-plane even
    points included (they are the inputs, not predictions); ``which``: only those of these planes (indices), in that
    order (in fixed point each plane's prediction is the same bits whichever others run with it)."""
    fine_planes = np.moveaxis(fine_view, axis, 0)[parity::2]
    planes = np.ascontiguousarray(fine_planes[:, ::2, ::2])
    context = None
    if getattr(model, "context_planes", False) and planes.shape[0]:
        n = planes.shape[0]
        before, after = np.maximum(np.arange(n) - 1, 0), np.minimum(np.arange(n) + 1, n - 1)
        context = np.stack([planes[before], planes[after]], axis=1)
    if which is not None:
        fine_planes, planes = fine_planes[which], planes[which]
        context = None if context is None else context[which]
    if planes.shape[0] == 0:
        return np.zeros(fine_planes.shape)
    up = upsample_planes(model, planes, settings, eb, context)
    return up[:, : fine_planes.shape[1], : fine_planes.shape[2]]


@register_predictor
class HatPredictor(InterpPredictor):
    """``interp`` on the coarse levels, HAT (competing per block with interpolation) on the finest ones.

    model: weights name from the manifest (``hat_pico_series_flips_long``, the default: a small network, given the
    bound, trained on srnsz's own reconstructions of the shared fields and time series, mirror-flipped;
    ``hat_pico_series_flips``: the same with half the training steps; ``hat_pico_series_long``: that without the
    flips; ``hat_pico_series``: that with a third of the training steps; ``hat_femto_series``: the same training
    as that, half its multiply-adds, 1.4-1.5x its speed for ~2% less ratio where a network pays;
    ``hat_nano_series``: 2-3x its inference time for ~1% more ratio where a network pays (DEFAULT_MODEL);
    ``hat_tiny_bound_series``: 4x hat_nano's time, the same data; ``hat_tiny_bound``: that on fewer snapshots;
    ``hat_tiny``: the earlier clean-input network), or several, comma-separated: the one that makes a sample of the
    field smallest is used and recorded, none when interpolation wins there;
    hat_levels: how many of the finest levels use HAT;
    block_size: side of the competition blocks (0: 32 in 2D, 8 in 3D); device: auto | cpu | cuda;
    threads (None: the cores available) / batch: where and how the network runs, free (the fixed-point inference
    of :mod:`srnsz.neural.fixed_point` gives the same bits for any); tile/overlap: the coarse tiles the network
    sees, recorded in the stream; arithmetic: FIXED_POINT (what new streams use), FIXED_POINT_1 (streams of formats
    1.9-1.15) or FLOAT (streams before format 1.9, decoded with the device, threads and batch they recorded);
    policy: when the network is tried on a sample and given up (:class:`HatPolicy`, the measured defaults).
    Fields that are not 2D or 3D are compressed by interpolation alone.
    """

    name = "hat"
    can_preview = False  # running the network is the expensive part of compressing

    def __init__(self, model: str = DEFAULT_MODEL, hat_levels: int = 1, block_size: int = 0,
                 device: str = "auto", threads: int | None = None, batch: int = 16, tile: int = 128,
                 overlap: int = 8, decoded_planes: bool = True, tune: str = "fast", arithmetic: str | None = None,
                 policy: HatPolicy | None = None, **interp_options: Any) -> None:
        super().__init__(tune=tune, threads=threads, **interp_options)
        check_name(model)
        check_device(device)
        if hat_levels < 0:
            raise InvalidInputError(f"hat_levels must be >= 0, got {hat_levels}")
        if block_size < 0:
            raise InvalidInputError(f"block_size must be >= 0, got {block_size}")
        self.model_name, self.hat_levels, self.block_size = model, hat_levels, block_size
        if not all(isinstance(v, int) for v in (hat_levels, block_size, threads or 1, batch, tile, overlap)):
            raise InvalidInputError("hat_levels, block_size, threads, batch, tile and overlap must be integers")
        if (threads is not None and threads < 1) or batch < 1 or tile < 8 or not 0 <= overlap < tile // 4:
            raise InvalidInputError(f"bad inference settings threads={threads} batch={batch} tile={tile} "
                                    f"overlap={overlap} (need threads, batch >= 1, tile >= 8, 0 <= overlap < tile/4)")
        self.device, self.threads, self.batch, self.tile, self.overlap = device, threads, batch, tile, overlap
        if not isinstance(decoded_planes, bool):
            raise InvalidInputError(f"decoded_planes must be true or false, got {decoded_planes!r}")
        self.decoded_planes = decoded_planes
        self.arithmetic = arithmetic_to_write(arithmetic)
        if policy is not None and not isinstance(policy, HatPolicy):
            raise InvalidInputError(f"policy must be a HatPolicy, got {type(policy).__name__}")
        self.policy = policy or HatPolicy()

    @classmethod
    def from_params(cls, params: dict[str, Any], runtime: Runtime | None = None) -> HatPredictor:
        try:
            hat = params["hat"]
            inference = dict(hat["inference"])
            arithmetic = check_arithmetic(inference.pop("arithmetic", FLOAT))
            if arithmetic != FLOAT:  # the decoder's own device and threads: any give the same bits
                runtime = runtime or Runtime()
                inference.update(device=runtime.device, threads=runtime.threads)
            return cls(model=hat["weights"], hat_levels=hat["hat_levels"], block_size=hat["block_size"],
                       decoded_planes=hat.get("decoded_planes", False), tune="off", arithmetic=arithmetic,
                       **inference, **params["config"])
        except (KeyError, TypeError, InvalidInputError) as exc:
            raise StreamFormatError(f"the hat predictor parameters are invalid ({exc})") from None

    def for_psnr(self, data: np.ndarray, eb: float, free: np.ndarray | None, target_db: float,
                 for_ssim: bool = False) -> tuple[Predictor, float]:
        """Not tuned for the PSNR: whether the network pays is decided in :meth:`compress` (see
        :meth:`Predictor.for_psnr`)."""
        return self, eb

    def _applies(self, shape: tuple[int, ...]) -> bool:
        return len(shape) in (2, 3) and self.hat_levels > 0 and sum(n > 1 for n in shape) >= 2

    def _settings(self, device: str) -> InferenceSettings:
        return InferenceSettings(device, self.threads, self.batch, self.tile, self.overlap, self.arithmetic)

    def _passes(self, model: Any, device: str, eb: float, recorded: np.ndarray | None = None) -> HatPasses:
        return HatPasses(model, self._settings(device), self.hat_levels, self.block_size, eb, recorded,
                         self.decoded_planes)

    def uses_decoded_planes(self, ndim: int) -> bool:
        """Whether streams of an ``ndim`` field use the decoded planes (3D only: 2D fields have none). It also
        decides where the first-pass rules (:class:`GiveUp`) apply (the decoded planes are still to come after the first
        pass) and the traversal under the network (:meth:`network_configuration`)."""
        return self.decoded_planes and ndim == 3

    def network_configuration(self, base: InterpPredictor, data: np.ndarray, eb: float, free: np.ndarray | None
                              ) -> InterpPredictor:
        """The interp configuration under the network: ``base`` (the tuned one, which the plain stream uses), but in
        3D with decoded planes the sequential traversal, tuned for, where the tuner chose multidim (unless the
        caller fixed the traversal): there the network's stream was 7-12% smaller sequential on every Gray-Scott
        field and bound measured (2026-12-01: 3 fields x rel 1e-2/1e-3, a fine-tuned and the shipped network), and
        the network runs on 5 plane sets instead of 6."""
        if not self.uses_decoded_planes(data.ndim) or "traversal" in self.fixed or \
                base.config.traversal == "sequential":
            return base
        return self.tuned_with(data, eb, free, traversal="sequential")

    def compress(self, data: np.ndarray, eb: float, progress: Progress | None = None,
                 free: np.ndarray | None = None) -> Encoded:
        base = self.tuned(data, eb, free) if self.tune != "off" else self
        if not self._applies(data.shape):
            encoded = base.encode(data, eb, progress, free)
            encoded.predictor = "interp"  # HAT needs a 2D or 3D field
            return encoded
        device = resolve_device(self.device)
        names = [n.strip() for n in self.model_name.split(",") if n.strip()]
        from srnsz.networks.hat import HAT

        candidates = [cached_model(name, device, network=HAT) for name in names]
        network_base = self.network_configuration(base, data, eb, free)
        # One network on a field small enough to be its own sample is not tried first: the first-pass rule applies to
        # the field itself below.
        unsampled = data.size <= self.policy.sample_min_points and len(candidates) == 1
        chosen = 0 if unsampled else self._sample_choice(base, network_base, candidates, device, data, eb, free)
        if chosen is None:
            # No network wins on a sample of the field: the plain interp stream, at interp's cost.
            encoded = base.encode(data, eb, progress, free)
            encoded.predictor = "interp"
            return encoded
        name, (model, entry) = names[chosen], candidates[chosen]
        passes = self._passes(model, device, eb)
        if unsampled and self.uses_decoded_planes(data.ndim):
            passes.give_up = GiveUp.for_sample(self.policy)
        try:
            encoded = network_base.encode(data, eb, None if unsampled else progress, free, passes)
        except NetworkGivenUp:
            encoded = base.encode(data, eb, progress, free)
            encoded.predictor = "interp"
            return encoded
        flags = passes.chosen()
        if not flags.any():
            # Every block kept interpolation, so codes and reconstruction are exactly the interp ones: the
            # stream is an interp stream and decodes without torch (the tuned one where the network's differed).
            encoded = encoded if network_base is base else base.encode(data, eb, None, free)
            encoded.predictor = "interp"
            return encoded
        encoded.sections["FLAG"] = lossless.pack(np.packbits(flags).tobytes())
        encoded.params["hat"] = {"weights": name, "sha256": entry.sha256,
                                 "hat_levels": self.hat_levels, "block_size": self.block_size,
                                 "inference": self._settings(device).to_params(),
                                 "blocks_hat": int(flags.sum()), "blocks_total": int(flags.size)}
        if self.uses_decoded_planes(data.ndim):
            encoded.params["hat"]["decoded_planes"] = True
            encoded.format_minor = max(encoded.format_minor or 0, DECODED_PLANES_FORMAT_MINOR)
        if self.arithmetic == FLOAT:  # its bits depend on the torch build
            import torch

            encoded.numerics = {"torch": torch.__version__}
        else:
            minor = FIXED_POINT_ARITHMETICS[self.arithmetic].format_minor
            encoded.format_minor = max(encoded.format_minor or 0, minor)
        # Blocks won on L1 error may not pay for their flags and the weights reference: the pipeline keeps the
        # plain interp stream when its finished stream is smaller, so asking for the network never costs a byte.
        plain = base.encode(data, eb, None, free)
        plain.predictor = "interp"
        encoded.alternatives = [plain]
        return encoded

    def _most_flags(self, shape: tuple[int, ...]) -> int:
        """How many block choices a stream of ``shape`` holds at most: one per block in every pass of a HAT level."""
        plan = self._plan(shape)
        blocks = math.prod(-(-n // (self.block_size or DEFAULT_BLOCK[len(shape)])) for n in shape)
        return blocks * sum(p.level >= plan.levels - self.hat_levels for p in plan.passes())

    def _sample_choice(self, base: InterpPredictor, network_base: InterpPredictor,
                       candidates: list[tuple[Any, Any]], device: str, data: np.ndarray, eb: float,
                       free: np.ndarray | None) -> int | None:
        """Which of the candidate networks makes a sample of the field smallest, flags included, if any beats
        interpolation there -- on a crop by at least the policy's sample_min_gain, after a first pass that passes
        :class:`GiveUp` -- (else None). The sample is a central crop of about sample_share of the points, at least
        sample_min_side along each axis (:func:`crop_sides`; the whole field when it has at most sample_min_points)."""
        policy = self.policy
        small = data.size <= policy.sample_min_points
        sides = list(data.shape) if small else crop_sides(data.shape, policy.sample_share, policy.sample_min_side)
        key = central_key(data.shape, sides)
        crop, crop_free = np.ascontiguousarray(data[key]), None if free is None else np.ascontiguousarray(free[key])
        # Trial sizes (the context-mixing bytes, the sections not packed): a fifth of the sample's time beside the
        # network went into trying the other codings and packing, which do not change which is smaller.
        plain_bytes = base.trial(crop, eb, crop_free).nbytes
        best, best_size = None, plain_bytes / (1.0 if small else policy.sample_min_gain)
        for index, (model, _) in enumerate(candidates):
            passes = self._passes(model, device, eb)
            if self.uses_decoded_planes(data.ndim):
                passes.give_up = GiveUp.for_sample(policy, plain_bytes, data.size / crop.size)
            try:
                with_hat = network_base.trial(crop, eb, crop_free, passes)
            except NetworkGivenUp:
                continue
            flags = passes.chosen()
            if not flags.any():
                continue
            size = with_hat.nbytes + len(lossless.pack(np.packbits(flags).tobytes()))
            if size < best_size:
                best, best_size = index, size
        return best

    def decompress(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                   dtype: np.dtype, eb: float, progress: Progress | None = None) -> np.ndarray:
        hat = params["hat"]
        device = resolve_device(self.device)
        if not isinstance(hat.get("sha256"), str):  # every writer records it: the weights are checked against it
            raise StreamFormatError("the hat stream does not record its weights' sha256")
        from srnsz.networks.hat import HAT

        model, _ = cached_model(self.model_name, device, sha256=hat["sha256"], network=HAT)
        flags = np.unpackbits(np.frombuffer(lossless.unpack(sections["FLAG"], "flag", -(-self._most_flags(shape) // 8)),
                                            np.uint8)).astype(bool)
        passes = self._passes(model, device, eb, flags)
        return self.decode(sections, params, shape, dtype, eb, progress, passes)


# A plane view's weight at a point odd along one in-plane axis (between two inputs) and odd along both (between
# four): such a view is the worse of the two (L1 error 1.2-1.8x on Gray-Scott at rel 1e-2 / 1e-3, the shipped and
# a fine-tuned network), so it counts half where a better one is there too. Integers keep the one-kind means exact.
PLANE_VIEW_WEIGHTS = {"edge": 2, "centre": 1}


@dataclass(frozen=True)
class GiveUp:
    """When the first HAT pass on a sample ends the network's trial (:class:`NetworkGivenUp`): its block choices leave
    more than ``l1_share`` of interpolation's L1 error, or more than ``beyond_share`` of its points off by more than the
    bound, or would not save what a network stream adds to the field's: ``stream_bytes``, its flags and the share
    ``1 - 1 / min_gain`` of the plain stream, the sample's plain stream being ``plain_bytes`` (inf: not estimated) and
    the field ``scale`` times the sample. Before that, on the pass's first plane set alone (or some of its planes): more
    than ``one_view_share`` of interpolation's L1 error (inf: not judged), or too few bytes saved, as above
    (:meth:`one_view_reason`)."""

    l1_share: float
    beyond_share: float
    stream_bytes: float
    min_gain: float
    plain_bytes: float = math.inf
    scale: float = 1.0
    one_view_share: float = math.inf

    @classmethod
    def for_sample(cls, policy: HatPolicy, plain_bytes: float = math.inf, scale: float = 1.0) -> GiveUp:
        """The rules of ``policy`` (its give-up shares, network stream bytes and sample gain)."""
        # one view never gives up a network the two views' L1 rule would keep (a policy that lifts that rule lifts it)
        one_view = max(policy.give_up_one_view_share, policy.give_up_l1_share)
        return cls(policy.give_up_l1_share, policy.give_up_beyond_share, policy.network_stream_bytes,
                   policy.sample_min_gain, plain_bytes, scale, one_view)

    def one_view_reason(self, interp: FirstPassErrors, chosen: FirstPassErrors, flag_bytes: float,
                        what: str = "one view of the first HAT pass") -> str | None:
        """Why the network is given up after the first plane set of its first pass (``what``: or some planes of it),
        whose block choices leave ``chosen`` against interpolation's ``interp`` (their points beyond the bound not
        judged), its flags on the sample taking ``flag_bytes`` (None: it is not)."""
        if interp.l1 > 0 and chosen.l1 > self.one_view_share * interp.l1:
            return f"{what} leaves L1 {chosen.l1:.4g} of interpolation's {interp.l1:.4g}"
        return self._bytes_reason(interp, chosen, flag_bytes, what)

    def reason(self, interp: FirstPassErrors, chosen: FirstPassErrors, flag_bytes: float) -> str | None:
        """Why the network is given up after a first pass whose ``interp`` and block-choice errors these are, its
        flags on the sample taking ``flag_bytes`` (None: it is not)."""
        if not (interp.l1 > 0 and chosen.l1 <= self.l1_share * interp.l1):
            return f"the first HAT pass leaves L1 {chosen.l1:.4g} of interpolation's {interp.l1:.4g}"
        if chosen.beyond > self.beyond_share * interp.beyond:
            return (f"the first HAT pass leaves {chosen.beyond:.0f} points beyond the bound, interpolation "
                    f"{interp.beyond:.0f}")
        return self._bytes_reason(interp, chosen, flag_bytes, "the first HAT pass")

    def _bytes_reason(self, interp: FirstPassErrors, chosen: FirstPassErrors, flag_bytes: float, what: str
                      ) -> str | None:
        if math.isinf(self.plain_bytes):
            return None
        share = 1.0 - chosen.coded / interp.coded if interp.coded > 0 else 0.0
        saved = share * self.plain_bytes * self.scale
        needed = self.stream_bytes + (flag_bytes + (1.0 - 1.0 / self.min_gain) * self.plain_bytes) * self.scale
        if saved < needed:
            return f"{what} would save about {saved:.0f} bytes, a network stream needs {needed:.0f}"
        return None


@dataclass(frozen=True)
class FirstPassErrors:
    """Errors of one prediction over a HAT pass: ``l1`` the sum of |error|, ``beyond`` the points with |error| above the
    bound, ``coded`` the bytes of their quantization codes coded by context mixing (:func:`pass_coded_bytes`)."""

    l1: float
    beyond: float
    coded: float


def pass_coded_bytes(p: Pass, data: np.ndarray, hat_view: np.ndarray, interp: PassPrediction, use_hat: np.ndarray,
                     eb: float, rows: tuple[int, np.ndarray] | None = None) -> tuple[int, int]:
    """Bytes of pass ``p``'s quantization codes (bound ``eb``) predicted by interpolation and by HAT where ``use_hat``
    and ``hat_view`` (HAT's predictions, NaN: none; both on the pass's lattice, ``data[p.key]``'s shape) have one, each
    coded by context mixing as one table of the pass's chunks in their layouts -- contexts 0 for both: an estimate of
    what the choices save, not the stream's own table. ``rows`` (axis, indices): only the targets at these indices
    along that axis of the lattice, side by side (the planes a probe ran)."""
    data_view = data[p.key]
    odd = odd_along(p.axis, data_view.ndim)
    batches: tuple[list[CodeBatch], list[CodeBatch]] = ([], [])
    for c in chunks(data_view.shape, p.axes):

        def kept(a: np.ndarray, c: tuple[slice, ...] = c) -> np.ndarray:
            if rows is None:
                return a
            axis, indices = rows
            start, stop, _ = c[axis].indices(data_view.shape[axis])
            return np.take(a, indices[(indices >= start) & (indices < stop)] - start, axis=axis)

        interp_c = kept(np.asarray(interp(c), np.float64))
        hat = kept(hat_view[c][odd])
        original = np.ascontiguousarray(kept(data_view[c][odd]))
        if original.size == 0:
            continue
        chosen = np.where(np.isfinite(hat) & kept(use_hat[c][odd]), hat, interp_c)
        for made, prediction in zip(batches, (interp_c, chosen)):
            codes = quantize(original.ravel(), np.ascontiguousarray(prediction).ravel(), eb).codes
            made.append(CodeBatch(codes, np.zeros(codes.size, np.uint8), 0, None, original.shape))
    interp_bytes, chosen_bytes = (len(encode_mixing(made)) for made in batches)
    return interp_bytes, chosen_bytes


class NetworkGivenUp(Exception):
    """Raised by :class:`HatPasses` (compressing a sample, ``give_up`` set) when the network is not worth
    running further."""


@dataclass
class LevelViews:
    """The HAT plane views of one level added so far, over the full field: ``total`` the weighted sum of their
    predictions, ``weight`` the sum of their weights (PLANE_VIEW_WEIGHTS), ``known`` the lattice points decoded so
    far (2D fields are one plane: their arrays get a leading axis of 1)."""

    level: int
    key: tuple[slice, ...]  # the level's lattice in the field
    total: np.ndarray
    weight: np.ndarray
    known: np.ndarray
    added: set[tuple[int, int]] = field(default_factory=set)

    @classmethod
    def start(cls, level: int, key: tuple[slice, ...], shape: tuple[int, ...]) -> LevelViews:
        """A level's views before its first pass: none added, the lattice's points even along every axis known."""
        views = cls(level, key, np.zeros(shape), np.zeros(shape, np.uint8), np.zeros(shape, bool))
        views.lattice(views.known)[::2, ::2, ::2] = True
        return views

    def lattice(self, array: np.ndarray) -> np.ndarray:
        """The level's lattice of a full-shape ``array`` (a view), 3D (2D fields: a leading axis of 1)."""
        lattice = array[self.key]
        return lattice if lattice.ndim == 3 else lattice[None]

    def plane_inputs_known(self, axis: int, parity: int) -> bool:
        """Whether the points of the ``parity`` planes along ``axis`` that are even in-plane are all decoded."""
        inputs = np.moveaxis(self.lattice(self.known), axis, 0)[parity::2, ::2, ::2]
        return inputs.size > 0 and bool(inputs.all())

    def add(self, axis: int, parity: int, predictions: np.ndarray, which: np.ndarray | None = None) -> None:
        """Add the ``parity`` planes along ``axis`` (:func:`plane_predictions`' output; ``which``: those of them only)
        to the views."""
        weights = np.full(predictions.shape[1:], PLANE_VIEW_WEIGHTS["edge"], np.uint8)
        weights[::2, ::2] = 0
        weights[1::2, 1::2] = PLANE_VIEW_WEIGHTS["centre"]
        planes = slice(None) if which is None else which
        np.moveaxis(self.lattice(self.total), axis, 0)[parity::2][planes] += predictions * weights
        np.moveaxis(self.lattice(self.weight), axis, 0)[parity::2][planes] += weights
        self.added.add((axis, parity))

    def predictions(self, key: tuple[slice, ...]) -> np.ndarray:
        """The views' mean at the points of lattice view ``key`` (NaN where none holds them)."""
        total, weight = self.total[key], self.weight[key]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weight > 0, total / np.maximum(weight, 1), np.nan)


def probe_planes(planes: int) -> np.ndarray:
    """The planes a probe runs of a set of ``planes``: the middle PROBE_SHARE of them (rounded up), side by side."""
    count = math.ceil(planes * PROBE_SHARE)
    start = (planes - count) // 2
    return np.arange(start, start + count)


@dataclass(frozen=True)
class Probe:
    """The network's predictions on some planes of a plane set (:meth:`HatPasses._probe`): the set (axis, parity), its
    number of planes, the indices ``which`` of those run and their :func:`plane_predictions`."""

    plane_set: tuple[int, int]
    planes: int
    which: np.ndarray
    predictions: np.ndarray


class HatPasses:
    """The interp traversal's hook (:class:`srnsz.predictors.interp.PassHook`) that puts HAT into the finest
    ``hat_levels`` levels, for one compression or decompression at bound ``eb`` (given to networks that take it).

    At a HAT level the network upsamples x2 the planes whose points even in-plane are known: in 2D the field, in 3D
    the even planes along every axis (their points even in-plane are the coarse lattice) and, with
    ``decoded_planes``, the odd planes along an axis once the pass holding their even points is decoded; a point's
    prediction averages the views holding it (PLANE_VIEW_WEIGHTS). Compressing (``recorded`` None), each pass of a
    HAT level chooses per block whichever of HAT and interpolation has the smaller L1 error and appends its choices
    to ``flags``; decoding, it takes them from ``recorded`` (the unpacked FLAG section) in the same order."""

    def __init__(self, model: Any, settings: InferenceSettings, hat_levels: int, block_size: int, eb: float,
                 recorded: np.ndarray | None = None, decoded_planes: bool = False) -> None:
        self.model, self.settings, self.hat_levels, self.block_size = model, settings, hat_levels, block_size
        self.eb, self.decoded_planes = eb, decoded_planes
        self.recorded, self.used = recorded, 0
        self.flags: list[np.ndarray] = []
        self.passes_chosen = 0  # compressing: HAT passes whose blocks were chosen
        # Compressing a sample: raise NetworkGivenUp where the first HAT pass breaks these rules
        self.give_up: GiveUp | None = None
        self._views: LevelViews | None = None
        self._ids: tuple[np.ndarray, int] | None = None

    def chosen(self) -> np.ndarray:
        """Every block choice made while compressing, in pass order (what the FLAG section stores)."""
        return np.concatenate(self.flags) if self.flags else np.zeros(0, bool)

    def _level_views(self, p: Pass, plan: Plan, rec: np.ndarray) -> tuple[LevelViews, int | None]:
        """The views of pass ``p``'s level (started at its first pass), and the axis whose even planes wait for the
        next pass (None: none wait). The even planes along a 3D level's first (sequential) pass axis hold none of its
        targets: they wait for the second pass, so a network given up after the first pass costs two plane sets, not
        three. The sum of the views is unchanged: even planes still come before odd ones, and two views add up the
        same in any order."""
        views = self._views
        if views is None or views.level != p.level:
            t = plan.stride(p.level)
            self._views = views = LevelViews.start(p.level, tuple(slice(0, None, t) for _ in rec.shape), rec.shape)
        return views, p.axis if rec.ndim == 3 and not views.added and not p.also else None

    def _missing_sets(self, views: LevelViews, rec: np.ndarray, deferred: int | None) -> list[tuple[int, int]]:
        """(axis, parity) of the plane sets whose inputs are known and that are not yet added, in the order they are
        added: even planes first, none along ``deferred``."""
        axes = range(3 if rec.ndim == 3 else 1)
        return [(axis, parity) for axis, parity in
                [(axis, 0) for axis in axes] + [(axis, 1) for axis in axes if self.decoded_planes]
                if (axis, parity) not in views.added and axis != deferred and views.plane_inputs_known(axis, parity)]

    def _add_views(self, views: LevelViews, p: Pass, rec: np.ndarray, deferred: int | None,
                   most: int | None = None, probed: Probe | None = None) -> np.ndarray:
        """Add the plane views known before pass ``p`` but those along ``deferred`` (at most ``most`` more plane
        sets; None: all; the planes of ``probed`` taken from it), and return HAT's predictions for its targets from the
        views added so far (on its lattice view; NaN where none holds them)."""
        lattice = views.lattice(rec)
        for axis, parity in self._missing_sets(views, rec, deferred)[:most]:
            if probed is None or probed.plane_set != (axis, parity):
                views.add(axis, parity, plane_predictions(self.model, lattice, axis, parity, self.settings, self.eb))
                continue
            rest = np.setdiff1d(np.arange(probed.planes), probed.which)
            views.add(axis, parity, probed.predictions, probed.which)
            views.add(axis, parity, plane_predictions(self.model, lattice, axis, parity, self.settings, self.eb,
                                                      rest), rest)
        return views.predictions(p.key)

    def _probe(self, views: LevelViews, p: Pass, rec: np.ndarray, data: np.ndarray, interp: PassPrediction,
               deferred: int | None, flag_bytes: float) -> Probe | None:
        """The network on the planes :func:`probe_planes` of the first plane set of a sequential first pass (in fixed
        point, on sets of at least PROBE_MIN_PLANES planes; else None): raises :class:`NetworkGivenUp` where its block
        choices on the targets those planes hold break the one-view rules (:meth:`GiveUp.one_view_reason`; the bytes
        rule where those targets are PROBE_MIN_BYTES_PLANES or more whole planes of the pass's lattice), else returns
        them for :meth:`_add_views`."""
        missing = self._missing_sets(views, rec, deferred)
        if not missing or deferred is None or self.settings.arithmetic == FLOAT:
            return None  # (deferred None: not a sequential first pass, whose first plane set holds every target)
        axis, parity = missing[0]
        lattice = views.lattice(rec)
        planes = np.moveaxis(lattice, axis, 0)[parity::2].shape[0]
        if planes < PROBE_MIN_PLANES:
            return None
        which = probe_planes(planes)
        predictions = plane_predictions(self.model, lattice, axis, parity, self.settings, self.eb, which)
        probe = LevelViews.start(views.level, views.key, rec.shape)
        probe.add(axis, parity, predictions, which)
        hat_view = probe.predictions(p.key)
        sums, _ = self._block_errors(p, rec, data, hat_view, interp, False, only_predicted=True)
        predicted = np.isfinite(hat_view[odd_along(p.axis, hat_view.ndim)])
        rows = np.flatnonzero(predicted.any(axis=tuple(a for a in range(predicted.ndim) if a != axis)))
        whole_planes = rows.size >= PROBE_MIN_BYTES_PLANES and bool(predicted.take(rows, axis=axis).all())
        # on too few whole planes the coder cannot tell: the whole set's bytes rule decides
        rules = self.give_up if whole_planes else replace(self.give_up, plain_bytes=math.inf)
        reason = rules.one_view_reason(*self._first_pass_errors(p, data, hat_view, interp, sums, (axis, rows),
                                                                whole_planes), flag_bytes,
                                       f"{which.size} of the {planes} planes of the first HAT pass's first plane set")
        if reason is not None:
            raise NetworkGivenUp(reason)
        return Probe((axis, parity), planes, which, predictions)

    def _block_errors(self, p: Pass, rec: np.ndarray, data: np.ndarray, hat_view: np.ndarray,
                      interp: PassPrediction, detailed: bool, only_predicted: bool = False) -> tuple[np.ndarray, bool]:
        """Per block of pass ``p``: (sums (2 if ``detailed`` else 1, 2, blocks) -- L1 error, then points beyond the
        bound -- of interpolation and of HAT (interpolation's where HAT has no prediction; ``only_predicted``: both
        over the targets HAT predicts only), whether HAT predicted every target)."""
        ids, n_blocks = self._ids
        ids_view, view, data_view = ids[p.key], rec[p.key], data[p.key]
        odd = odd_along(p.axis, view.ndim)
        sums = np.zeros((2 if detailed else 1, 2, n_blocks))
        covered = True
        for c in chunks(view.shape, p.axes):
            interp_c = interp(c)
            hat = hat_view[c][odd]
            original = data_view[c][odd].astype(np.float64)
            predicted = np.isfinite(hat)
            covered = covered and bool(predicted.all())
            with np.errstate(invalid="ignore", over="ignore"):
                e_interp = np.nan_to_num(np.abs(original - interp_c), nan=0.0, posinf=0.0)
                if only_predicted:
                    e_interp = np.where(predicted, e_interp, 0.0)
                e_hat = np.where(predicted, np.nan_to_num(np.abs(original - hat), nan=0.0, posinf=0.0), e_interp)
            block = ids_view[c][odd].ravel()
            for which, error in enumerate((e_interp.ravel(), e_hat.ravel())):
                sums[0, which] += np.bincount(block, error, n_blocks)
                if detailed:
                    sums[1, which] += np.bincount(block, error > self.eb, n_blocks)
        return sums, covered

    def _first_pass_errors(self, p: Pass, data: np.ndarray, hat_view: np.ndarray, interp: PassPrediction,
                           sums: np.ndarray, rows: tuple[int, np.ndarray] | None = None, coded: bool = True
                           ) -> tuple[FirstPassErrors, FirstPassErrors]:
        """Interpolation's and the block choices' :class:`FirstPassErrors` over pass ``p`` from its per-block ``sums``
        (:meth:`_block_errors`; without the beyond row, 0 beyond), each block taking the smaller L1 error; their coded
        bytes (:func:`pass_coded_bytes` on ``rows``) where ``coded`` and the bytes rule applies, else 0."""
        choose_hat = sums[0, 1] < sums[0, 0]
        totals = [sums[:, 0].sum(axis=1), np.where(choose_hat, sums[:, 1], sums[:, 0]).sum(axis=1)]
        judged_bytes = coded and self.give_up is not None and math.isfinite(self.give_up.plain_bytes)
        coded_bytes = (pass_coded_bytes(p, data, hat_view, interp, choose_hat[self._ids[0][p.key]], self.eb, rows)
                       if judged_bytes else (0, 0))
        beyond = [float(t[1]) if t.size > 1 else 0.0 for t in totals]
        return (FirstPassErrors(float(totals[0][0]), beyond[0], coded_bytes[0]),
                FirstPassErrors(float(totals[1][0]), beyond[1], coded_bytes[1]))

    def _choices(self, n_blocks: int) -> np.ndarray:
        if self.recorded is None or self.used + n_blocks > self.recorded.size:
            raise StreamFormatError("the flag section holds fewer block choices than the passes need")
        self.used += n_blocks
        return self.recorded[self.used - n_blocks:self.used]

    def __call__(self, p: Pass, plan: Plan, rec: np.ndarray, data: np.ndarray | None,
                 interp: PassPrediction) -> PassPrediction:
        if p.level < plan.levels - self.hat_levels:
            return interp
        if self._ids is None:
            self._ids = block_ids(rec.shape, self.block_size or DEFAULT_BLOCK[rec.ndim])
        n_blocks = self._ids[1]
        views, deferred = self._level_views(p, plan, rec)
        judged = data is not None and self.give_up is not None and self.passes_chosen == 0
        flag_bytes = n_blocks * sum(q.level >= plan.levels - self.hat_levels for q in plan.passes()) / 8 if judged \
            else 0.0
        if judged and math.isfinite(self.give_up.one_view_share):
            probed = self._probe(views, p, rec, data, interp, deferred, flag_bytes)
            one_view = self._add_views(views, p, rec, deferred, most=1, probed=probed)
            sums, covered = self._block_errors(p, rec, data, one_view, interp, False)
            if covered:  # the first plane set holds every target of the pass (a sequential first pass)
                reason = self.give_up.one_view_reason(*self._first_pass_errors(p, data, one_view, interp, sums),
                                                      flag_bytes)
                if reason is not None:
                    raise NetworkGivenUp(reason)
        hat_view = self._add_views(views, p, rec, deferred)
        if self.decoded_planes:  # the traversal decodes the pass's targets before the next pass
            views.known[p.key][odd_along(p.axis, rec.ndim)] = True
        ids_view, odd = self._ids[0][p.key], odd_along(p.axis, rec.ndim)
        if data is None:
            choose_hat = self._choices(n_blocks)
        else:
            sums, _ = self._block_errors(p, rec, data, hat_view, interp, judged)
            choose_hat = sums[0, 1] < sums[0, 0]
            self.flags.append(choose_hat)
            self.passes_chosen += 1
            if judged:
                reason = self.give_up.reason(*self._first_pass_errors(p, data, hat_view, interp, sums), flag_bytes)
                if reason is not None:
                    raise NetworkGivenUp(reason)

        def predict(c: tuple[slice, ...]) -> np.ndarray:
            hat = hat_view[c][odd]
            use = np.isfinite(hat) & choose_hat[ids_view[c][odd]]
            return np.where(use, hat, interp(c))

        return predict
