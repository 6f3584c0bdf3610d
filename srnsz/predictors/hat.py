"""HAT super-resolution at the finest level(s) of the grid expansion (SRN-SZ): the ``hat`` predictor.

Coarser levels are the tuned ``interp`` predictor. At each HAT level (the finest `hat_levels`), the network
upsamples the already reconstructed coarse grid x2: in 2D the whole field (tiled), in 3D every coarse slice along
every axis, a point's predictions averaged over the slices holding it; points odd in every coordinate keep
interpolation. Within every pass of a HAT level each block (`block_size` points per side) takes whichever of HAT
and interpolation has the smaller L1 error on it; one flag per block and pass goes into the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from srnsz.coding import lossless
from srnsz.decomposition.grid import Pass, Plan, chunks
from srnsz.decomposition.tiling import block_ids
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.neural.runtime import InferenceSettings, resolve_device, upsample_planes
from srnsz.neural.zoo import cached_model
from srnsz.predictors.base import Encoded, Progress, register_predictor
from srnsz.predictors.interp import InterpPredictor, _odd

DEFAULT_BLOCK = {2: 32, 3: 8}
HAT_HEADER_BYTES = 200  # measured: HAT parameters, torch version and the flag section framing in the header


def hat_level_prediction(model: Any, fine_view: np.ndarray, settings: InferenceSettings) -> np.ndarray:
    """HAT predictions for a level's lattice ``fine_view`` (2D or 3D) from its even points: float64 array of
    the view's shape, NaN where the network gives no prediction (coarse points; 3D points odd in every axis)."""
    coarse = fine_view[(slice(None, None, 2),) * fine_view.ndim]
    if fine_view.ndim == 2:
        up = upsample_planes(model, coarse[None], settings)[0]
        pred = up[: fine_view.shape[0], : fine_view.shape[1]].copy()
        pred[::2, ::2] = np.nan
        return pred
    total = np.zeros(fine_view.shape, dtype=np.float64)
    count = np.zeros(fine_view.shape, dtype=np.uint8)
    for axis in range(3):
        planes = np.moveaxis(coarse, axis, 0)
        up = upsample_planes(model, np.ascontiguousarray(planes), settings)
        others = [n for a, n in enumerate(fine_view.shape) if a != axis]
        up = up[:, : others[0], : others[1]]
        target_total = np.moveaxis(total, axis, 0)[::2]
        target_count = np.moveaxis(count, axis, 0)[::2]
        target_total += up
        target_count += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        pred = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    pred[::2, ::2, ::2] = np.nan
    return pred


@register_predictor
class HatPredictor(InterpPredictor):
    """``interp`` on the coarse levels, HAT (competing per block with interpolation) on the finest ones.

    model: weights name from the manifest (``hat_tiny``); hat_levels: how many of the finest levels use HAT;
    block_size: side of the competition blocks (0: 32 in 2D, 8 in 3D); device: auto | cpu | cuda;
    threads/batch/tile/overlap: inference settings, recorded so the decoder reproduces the predictions bit for
    bit (CPU results depend on the thread count).
    Fields that are not 2D or 3D are compressed by interpolation alone.
    """

    name = "hat"

    def __init__(self, model: str = "hat_tiny", hat_levels: int = 1, block_size: int = 0, device: str = "auto",
                 threads: int = 2, batch: int = 16, tile: int = 128, overlap: int = 8, tune: str = "fast",
                 **interp_options: Any) -> None:
        super().__init__(tune=tune, **interp_options)
        if hat_levels < 0:
            raise InvalidInputError(f"hat_levels must be >= 0, got {hat_levels}")
        if block_size < 0:
            raise InvalidInputError(f"block_size must be >= 0, got {block_size}")
        self.model_name, self.hat_levels, self.block_size = model, hat_levels, block_size
        if not all(isinstance(v, int) for v in (hat_levels, block_size, threads, batch, tile, overlap)):
            raise InvalidInputError("hat_levels, block_size, threads, batch, tile and overlap must be integers")
        if threads < 1 or batch < 1 or tile < 8 or not 0 <= overlap < tile // 4:
            raise InvalidInputError(f"bad inference settings threads={threads} batch={batch} tile={tile} "
                                    f"overlap={overlap} (need threads, batch >= 1, tile >= 8, 0 <= overlap < tile/4)")
        self.device, self.threads, self.batch, self.tile, self.overlap = device, threads, batch, tile, overlap
        self._state: dict[str, Any] = {}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> HatPredictor:
        try:
            hat = params["hat"]
            return cls(model=hat["weights"], hat_levels=hat["hat_levels"], block_size=hat["block_size"],
                       tune="off", **hat["inference"], **params["config"])
        except (KeyError, TypeError, InvalidInputError) as exc:
            raise StreamFormatError(f"the hat predictor parameters are invalid ({exc})") from None

    def _applies(self, shape: tuple[int, ...]) -> bool:
        return len(shape) in (2, 3) and self.hat_levels > 0 and sum(n > 1 for n in shape) >= 2

    def _settings(self, device: str) -> InferenceSettings:
        return InferenceSettings(device, self.threads, self.batch, self.tile, self.overlap)

    def compress(self, data: np.ndarray, eb: float, progress: Progress | None = None,
                 free: np.ndarray | None = None) -> Encoded:
        base = self.tuned(data, eb, free) if self.tune != "off" else self
        self.config, self.free_mode, self.free_slack = base.config, base.free_mode, base.free_slack
        if not self._applies(data.shape):
            encoded = self._compress(data, eb, progress, free)
            encoded.predictor = "interp"  # HAT needs a 2D or 3D field
            return encoded
        device = resolve_device(self.device)
        model, entry = cached_model(self.model_name, device)
        self._state = {"model": model, "settings": self._settings(device), "flags": [], "maps": {},
                       "chosen": 0, "blocks": 0}
        try:
            encoded = self._compress(data, eb, progress, free)
            flags = np.concatenate(self._state["flags"]) if self._state["flags"] else np.zeros(0, bool)
        finally:
            self._state = {}
        if not flags.any():
            # Every block kept interpolation, so codes and reconstruction are exactly the interp ones: the
            # stream is an interp stream and decodes without torch.
            encoded.predictor = "interp"
            return encoded
        import torch

        encoded.sections["FLAG"] = lossless.pack(np.packbits(flags).tobytes())
        plain = self._compress(data, eb, None, free)
        if plain.nbytes <= encoded.nbytes + HAT_HEADER_BYTES:
            # Blocks won on L1 error did not pay for their flags and the weights reference: keep the interp
            # stream, so asking for the network never costs a byte.
            plain.predictor = "interp"
            return plain
        encoded.params["hat"] = {"weights": self.model_name, "sha256": entry.sha256,
                                 "hat_levels": self.hat_levels, "block_size": self.block_size,
                                 "inference": self._settings(device).to_params(),
                                 "blocks_hat": int(flags.sum()), "blocks_total": int(flags.size)}
        encoded.numerics = {"torch": torch.__version__}
        return encoded

    def decompress(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                   dtype: np.dtype, eb: float, progress: Progress | None = None) -> np.ndarray:
        hat = params["hat"]
        device = resolve_device(self.device)
        model, _ = cached_model(self.model_name, device, sha256=hat.get("sha256"))
        flags = np.unpackbits(np.frombuffer(lossless.unpack(sections["FLAG"], "flag"), np.uint8)).astype(bool)
        self._state = {"model": model, "settings": self._settings(device), "flag_bits": flags, "used": 0,
                       "maps": {}}
        try:
            return super().decompress(sections, params, shape, dtype, eb, progress)
        finally:
            self._state = {}

    def _level_map(self, plan: Plan, level: int, rec: np.ndarray) -> np.ndarray:
        """Full-shape array of HAT predictions for the points new at ``level`` (NaN elsewhere), cached."""
        maps = self._state["maps"]
        if level not in maps:
            t = plan.stride(level)
            key = tuple(slice(0, None, t) for _ in rec.shape)
            full = np.full(rec.shape, np.nan)
            full[key] = hat_level_prediction(self._state["model"], rec[key], self._state["settings"])
            maps.clear()  # one level at a time keeps memory to one extra field
            maps[level] = full
        if "ids" not in self._state:
            self._state["ids"] = block_ids(rec.shape, self.block_size or DEFAULT_BLOCK[rec.ndim])
        return maps[level]

    def _pass_predictor(self, p: Pass, plan: Plan, rec: np.ndarray,
                        data: np.ndarray | None) -> Callable[[tuple[slice, ...]], np.ndarray]:
        if not self._state or p.level < plan.levels - self.hat_levels:
            return super()._pass_predictor(p, plan, rec, data)
        interp_predict = super()._pass_predictor(p, plan, rec, data)
        hat_view = self._level_map(plan, p.level, rec)[p.key]
        ids, n_blocks = self._state["ids"]
        ids_view, view = ids[p.key], rec[p.key]
        odd = _odd(p.axis, view.ndim)
        chunk_keys = list(chunks(view.shape, p.axes))
        if data is not None:
            data_view = data[p.key]
            hat_error = np.zeros(n_blocks)
            interp_error = np.zeros(n_blocks)
            for c in chunk_keys:
                interp = interp_predict(c)
                hat = hat_view[c][odd]
                original = data_view[c][odd].astype(np.float64)
                with np.errstate(invalid="ignore", over="ignore"):
                    e_interp = np.nan_to_num(np.abs(original - interp), nan=0.0, posinf=0.0)
                    e_hat = np.where(np.isfinite(hat), np.nan_to_num(np.abs(original - hat), nan=0.0, posinf=0.0),
                                     e_interp)
                block = ids_view[c][odd].ravel()
                interp_error += np.bincount(block, e_interp.ravel(), n_blocks)
                hat_error += np.bincount(block, e_hat.ravel(), n_blocks)
            choose_hat = hat_error < interp_error
            self._state["flags"].append(choose_hat)
        else:
            used, bits = self._state["used"], self._state["flag_bits"]
            if used + n_blocks > bits.size:
                raise StreamFormatError("the flag section holds fewer block choices than the passes need")
            choose_hat = bits[used:used + n_blocks]
            self._state["used"] = used + n_blocks

        def predict(c: tuple[slice, ...]) -> np.ndarray:
            interp = interp_predict(c)
            hat = hat_view[c][odd]
            use = np.isfinite(hat) & choose_hat[ids_view[c][odd]]
            return np.where(use, hat, interp)

        return predict

