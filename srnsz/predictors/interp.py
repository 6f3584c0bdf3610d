"""Classical grid expansion with spline interpolation (SZ3): the ``interp`` predictor."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from srnsz import lossless
from srnsz.context import magnitudes, neighbour_contexts
from srnsz.entropy import CodeReader, ContextCodeWriter
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.grid import CHUNK_POINTS, Pass, Plan, chunks, make_plan
from srnsz.interpolation import KINDS, predict_odd
from srnsz.predictors.base import Encoded, Predictor, Progress, register_predictor
from srnsz.quantizer import ESCAPE, quantize, reconstruct
from srnsz.sampling import sample_blocks


@dataclass(frozen=True)
class InterpConfig:
    """Options of the interpolation predictor.

    kind: ``cubic`` or ``linear`` spline. anchor_stride: power of two, 0 = default for the dimensionality.
    dim_order: axes in the order each level visits them (None: slowest first).
    alpha, beta: level-wise bound (QoZ): level l (1 = finest) uses eb / min(alpha^(l-1), beta), because
    coarse points are predictors for many fine ones.
    """

    kind: str = "cubic"
    anchor_stride: int = 0
    dim_order: tuple[int, ...] | None = None
    alpha: float = 1.25
    beta: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInputError(f"interpolation kind {self.kind!r} is unknown; use one of {KINDS}")
        if self.anchor_stride < 0 or self.anchor_stride & (self.anchor_stride - 1):
            raise InvalidInputError(f"anchor_stride must be 0 or a power of two, got {self.anchor_stride}")
        if not (self.alpha >= 1 and self.beta >= 1):
            raise InvalidInputError(f"alpha and beta must be >= 1, got {self.alpha}, {self.beta}")
        if self.dim_order is not None:
            object.__setattr__(self, "dim_order", tuple(int(a) for a in self.dim_order))


def _odd(axis: int, ndim: int) -> tuple[slice, ...]:
    key = [slice(None)] * ndim
    key[axis] = slice(1, None, 2)
    return tuple(key)


def _finite_prediction(view: np.ndarray, axis: int, kind: str) -> np.ndarray:
    """predict_odd, with non-finite predictions (NaN/Inf neighbours) replaced by the left neighbour, or 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        pred = predict_odd(view, axis, kind)
    bad = ~np.isfinite(pred)
    if bad.any():
        key = [slice(None)] * view.ndim
        key[axis] = slice(0, 2 * pred.shape[axis], 2)
        left = view[tuple(key)].astype(np.float64)
        pred[bad] = np.where(np.isfinite(left[bad]), left[bad], 0.0)
    return pred


TUNE_MODES = ("fast", "off")


@register_predictor
class InterpPredictor(Predictor):
    """Anchors stored exactly, then cubic/linear spline levels, residuals quantized, codes context-coded.

    ``tune="fast"`` picks the spline kind and the dimension order that the user left open by trial compression
    of sampled blocks; the choice is stored in the header, so decoding never tunes.
    """

    name = "interp"

    def __init__(self, tune: str = "fast", **options: Any) -> None:
        if tune not in TUNE_MODES:
            raise InvalidInputError(f"tune must be one of {TUNE_MODES}, got {tune!r}")
        self.tune = tune
        self.trial = False  # trial compressions only compare sizes: cheaper lossless settings
        self.fixed = frozenset(options)
        self.config = InterpConfig(**options)

    def tuned(self, data: np.ndarray, eb: float) -> InterpPredictor:
        """This predictor with the open options chosen for ``data`` (itself if there is nothing to tune)."""
        kinds = [self.config.kind] if "kind" in self.fixed else list(KINDS)
        ndim = data.ndim
        orders: list[tuple[int, ...] | None] = [self.config.dim_order]
        if "dim_order" not in self.fixed and ndim > 1:
            orders = [tuple(range(ndim)), tuple(reversed(range(ndim)))]
        if self.tune == "off" or len(kinds) * len(orders) == 1:
            return self
        plan = self._plan(data.shape)
        sample = sample_blocks(data, plan.anchor_stride)
        best, best_size = self, None
        for kind, order in itertools.product(kinds, orders):
            candidate = InterpPredictor(tune="off", **{**asdict(self.config), "kind": kind, "dim_order": order})
            # Shift axes by one: the sample's leading axis is the batch of blocks.
            trial = InterpPredictor(tune="off", **{**asdict(candidate.config),
                                                   "dim_order": tuple(a + 1 for a in candidate._order(ndim)),
                                                   "anchor_stride": plan.anchor_stride})
            trial.trial = True
            size = trial.compress(sample, eb).nbytes
            if best_size is None or size < best_size:
                best, best_size = candidate, size
        return best

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> InterpPredictor:
        try:
            return cls(tune="off", **params["config"])
        except (KeyError, TypeError, InvalidInputError) as exc:
            raise StreamFormatError(f"the interp predictor parameters are invalid ({exc})") from None

    def _order(self, ndim: int) -> tuple[int, ...]:
        return self.config.dim_order if self.config.dim_order is not None else tuple(range(ndim))

    def _plan(self, shape: tuple[int, ...]) -> Plan:
        try:
            return make_plan(shape, self.config.anchor_stride, self.config.dim_order)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None

    def level_bounds(self, plan: Plan, eb: float) -> list[float]:
        """Absolute bound per level, coarsest first."""
        c = self.config
        return [eb / min(c.alpha ** (plan.levels - 1 - level), c.beta) for level in range(plan.levels)]

    def _pass_predictor(self, p: Pass, plan: Plan, rec: np.ndarray,
                        data: np.ndarray | None) -> Callable[[tuple[slice, ...]], np.ndarray]:
        """Predictions of pass ``p`` chunk by chunk (chunk keys are relative to ``rec[p.key]``).

        ``data`` is the original when compressing and None when decompressing; subclasses that choose between
        predictors per block use it to decide and must make the same choice from the stream when it is None."""
        view = rec[p.key]
        return lambda c: _finite_prediction(view[c], p.axis, self.config.kind)

    def compress(self, data: np.ndarray, eb: float, progress: Progress | None = None) -> Encoded:
        if self.tune != "off":
            return self.tuned(data, eb)._compress(data, eb, progress)
        return self._compress(data, eb, progress)

    def _compress(self, data: np.ndarray, eb: float, progress: Progress | None) -> Encoded:
        plan = self._plan(data.shape)
        bounds = self.level_bounds(plan, eb)
        rec = data.copy()
        mag = np.zeros(data.shape, dtype=np.uint8)
        writer = ContextCodeWriter(fast=self.trial)
        escaped: list[np.ndarray] = []
        anchors = np.ascontiguousarray(data[plan.anchor_key])
        for p in plan.passes():
            rec_v, mag_v, data_v = rec[p.key], mag[p.key], data[p.key]
            predict = self._pass_predictor(p, plan, rec, data)
            for c in chunks(rec_v.shape, p.axis):
                odd = _odd(p.axis, rec_v.ndim)
                pred = predict(c)
                contexts = neighbour_contexts(mag_v[c], p.axis).ravel()
                q = quantize(data_v[c][odd].ravel(), pred.ravel(), bounds[p.level])
                rec_v[c][odd] = q.recon.reshape(pred.shape)
                mag_v[c][odd] = magnitudes(q.codes).reshape(pred.shape)
                writer.write(q.codes, contexts, p.level)
                escaped.append(q.escaped)
                if progress:
                    progress(pred.size)
        if progress:
            progress(anchors.size)
        sections = {"ANCH": lossless.pack(anchors.tobytes()), "CODE": writer.finish()}
        escaped_values = np.concatenate(escaped) if escaped else anchors[:0]
        if escaped_values.size:
            sections["ESCP"] = lossless.pack(escaped_values.tobytes())
        config = {**asdict(self.config), "dim_order": list(plan.dim_order)}
        params = {"config": config, "anchor_stride": plan.anchor_stride, "levels": plan.levels,
                  "level_bounds": bounds, "chunk_points": CHUNK_POINTS}
        return Encoded(sections, params, rec)

    def decompress(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                   dtype: np.dtype, eb: float, progress: Progress | None = None) -> np.ndarray:
        plan = self._plan(shape)
        if params.get("chunk_points") != CHUNK_POINTS or params.get("levels") != plan.levels:
            raise StreamFormatError("the interp traversal recorded in the header does not match this version")
        bounds = [float(b) for b in params["level_bounds"]]
        rec = np.zeros(shape, dtype=dtype)
        mag = np.zeros(shape, dtype=np.uint8)
        anchors = np.frombuffer(lossless.unpack(sections["ANCH"], "anchor"), dtype=dtype)
        if anchors.size != rec[plan.anchor_key].size:
            raise StreamFormatError("the anchor section does not match the shape")
        rec[plan.anchor_key] = anchors.reshape(rec[plan.anchor_key].shape)
        escaped = np.frombuffer(lossless.unpack(sections["ESCP"], "escape") if "ESCP" in sections else b"", dtype)
        used = 0
        reader = CodeReader(sections["CODE"])
        for p in plan.passes():
            rec_v, mag_v = rec[p.key], mag[p.key]
            predict = self._pass_predictor(p, plan, rec, None)
            for c in chunks(rec_v.shape, p.axis):
                odd = _odd(p.axis, rec_v.ndim)
                pred = predict(c)
                contexts = neighbour_contexts(mag_v[c], p.axis).ravel()
                codes = reader.read(contexts, p.level)
                n_esc = int(np.count_nonzero(codes == ESCAPE))
                if used + n_esc > escaped.size:
                    raise StreamFormatError("the escape section holds fewer values than the codes need")
                recon = reconstruct(pred.ravel(), codes, bounds[p.level], dtype, escaped[used:used + n_esc])
                used += n_esc
                rec_v[c][odd] = recon.reshape(pred.shape)
                mag_v[c][odd] = magnitudes(codes).reshape(pred.shape)
                if progress:
                    progress(pred.size)
        if progress:
            progress(anchors.size)
        return rec
