"""Block predictors on the prequantized integer grid (AE-SZ): ``lorenzo`` and ``ae``.

Both snap the field to the grid of 2eb first (srnsz.decomposition.dualquant), so the reconstruction is fixed before any
prediction and every block may pick its own predictor: 1- or 2-layer Lorenzo (finite differences of the grid
indices) or, for ``ae``, the convolutional autoencoder's decoding of the block's quantized latent. The choice per
block minimises an estimate of the coded bits; ``ae`` also runs the interpolation path and keeps the smaller stream.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from srnsz.coding import lossless
from srnsz.coding.entropy import CodeReader, ContextCodeWriter, format_minor
from srnsz.decomposition.dualquant import difference, integrate, integrate_block, prequantize, reconstruct
from srnsz.decomposition.tiling import block_ids, block_order, chunk_keys
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.neural.runtime import (
    FIXED_POINT,
    FIXED_POINT_ARITHMETICS,
    FLOAT,
    InferenceSettings,
    Runtime,
    arithmetic_to_write,
    check_arithmetic,
    check_device,
    pinned_torch,
    resolve_device,
)
from srnsz.neural.zoo import cached_model, check_name
from srnsz.predictors.base import Encoded, Predictor, Progress, register_predictor
from srnsz.predictors.interp import InterpPredictor
from srnsz.quantizer import ESCAPE, RADIUS

LORENZO_1, LORENZO_2, AUTOENCODER = 0, 1, 2
LORENZO_BLOCK = {1: 4096, 2: 32, 3: 8, 4: 8}




def _split_codes(residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int16 codes with ESCAPE for |r| > RADIUS, the escaped residuals as int64)."""
    big = np.abs(residual) > RADIUS
    codes = np.where(big, ESCAPE, residual).astype(np.int16)
    return codes, residual[big].astype(np.int64)


def _join_codes(codes: np.ndarray, big: np.ndarray, used: int) -> tuple[np.ndarray, int]:
    residual = codes.astype(np.int64)
    mask = codes == ESCAPE
    n = int(mask.sum())
    if used + n > big.size:
        raise StreamFormatError("the large-residual section holds fewer values than the codes need")
    residual[mask] = big[used:used + n]
    return residual, used + n


class _GridStreams:
    """Sections shared by the block predictors: escapes of the prequantization and large residuals."""

    @staticmethod
    def pack(sections: dict[str, bytes], escaped: np.ndarray, raw: np.ndarray, big: list[np.ndarray]) -> None:
        if escaped.any():
            sections["ESCM"] = lossless.pack(np.packbits(escaped.ravel()).tobytes())
            sections["ESCV"] = lossless.pack(raw.tobytes())
        bigs = np.concatenate(big) if big else np.zeros(0, np.int64)
        if bigs.size:
            sections["BIGR"] = lossless.pack(bigs.tobytes())

    @staticmethod
    def unpack(sections: dict[str, bytes], shape: tuple[int, ...], dtype: np.dtype
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = int(np.prod(shape))
        if "ESCM" in sections:
            bits = np.unpackbits(np.frombuffer(lossless.unpack(sections["ESCM"], "escape mask", -(-size // 8)),
                                               np.uint8))
            if bits.size < size:
                raise StreamFormatError("the escape mask is shorter than the field")
            escaped = bits[:size].astype(bool).reshape(shape)
            raw = np.frombuffer(lossless.unpack(sections["ESCV"], "escape", size * dtype.itemsize), dtype)
            if raw.size != int(escaped.sum()):
                raise StreamFormatError("the escape section does not match the escape mask")
        else:
            escaped, raw = np.zeros(shape, bool), np.zeros(0, dtype)
        big = np.frombuffer(lossless.unpack(sections["BIGR"], "large residual", 8 * size), np.int64) \
            if "BIGR" in sections else np.zeros(0, np.int64)
        return escaped, raw, big


@register_predictor
class LorenzoPredictor(Predictor):
    """Lorenzo prediction on the prequantized grid, 1 or 2 layers (``layers=0``: the cheaper one), 1-4D."""

    name = "lorenzo"

    def __init__(self, layers: int = 0) -> None:
        if layers not in (0, 1, 2):
            raise InvalidInputError(f"layers must be 0 (auto), 1 or 2, got {layers}")
        self.layers = layers

    @classmethod
    def from_params(cls, params: dict[str, Any], runtime: Runtime | None = None) -> LorenzoPredictor:
        try:
            return cls(int(params["layers"]))
        except (KeyError, TypeError, ValueError, InvalidInputError) as exc:
            raise StreamFormatError(f"the lorenzo predictor parameters are invalid ({exc})") from None

    def compress(self, data: np.ndarray, eb: float, progress: Progress | None = None,
                 free: np.ndarray | None = None) -> Encoded:
        # free points are coded as data: the pipeline hands them a smooth extension, cheap for Lorenzo too
        pq = prequantize(data, eb)
        candidates = [self.layers] if self.layers else [1, 2]
        residuals = {layers: difference(pq.d, layers) for layers in candidates}
        layers = min(candidates, key=lambda n: float(_bit_cost(residuals[n]).sum()))
        codes, big = _split_codes(residuals[layers].ravel())
        writer = ContextCodeWriter()
        writer.write(codes, np.zeros(codes.size, np.uint8), layers - 1)
        sections = {"CODE": writer.finish()}
        _GridStreams.pack(sections, pq.escaped, pq.raw, [big])
        if progress:
            progress(data.size)
        return Encoded(sections, {"layers": layers}, reconstruct(pq.d, eb, data.dtype, pq.escaped, pq.raw),
                       format_minor=format_minor(sections["CODE"]))

    def decompress(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                   dtype: np.dtype, eb: float, progress: Progress | None = None) -> np.ndarray:
        layers = int(params["layers"])
        escaped, raw, big = _GridStreams.unpack(sections, shape, dtype)
        size = int(np.prod(shape))
        codes = CodeReader(sections["CODE"], size).read(np.zeros(size, np.uint8), layers - 1)
        residual, _ = _join_codes(codes, big, 0)
        d = integrate(residual.reshape(shape), layers)
        if progress:
            progress(size)
        return reconstruct(d, eb, dtype, escaped, raw)


@register_predictor
class AutoencoderPredictor(Predictor):
    """Per block: autoencoder (latent quantized with bound ``latent_eb`` x eb in normalised units, entropy
    coded; the decoder's output from the decoded latent predicts the block) versus 1- and 2-layer Lorenzo.

    model: weights family; a 2D field uses weights ``<model>_2d`` and a 3D field ``<model>_3d`` (default ae_2d and
    ae_3d); other ranks use Lorenzo only.
    compete_interp: also compress with ``interp`` and keep the smaller stream (recorded as ``path``).
    device / threads (None: the cores available) / batch: where and how the networks run; the decoder's predictions
    are fixed point (:mod:`srnsz.neural.fixed_point`): the same bits for any. arithmetic: FIXED_POINT (what new
    streams use), FIXED_POINT_1 (streams of formats 1.9-1.15) or FLOAT, the float32 decoding of streams before format
    1.9, whose bits depend on the device, threads and batch they record.
    """

    name = "ae"

    def __init__(self, model: str = "ae", latent_eb: float = 0.1, device: str = "auto", threads: int | None = None,
                 batch: int = 256, compete_interp: bool = True, tune: str = "fast", arithmetic: str = FIXED_POINT
                 ) -> None:
        check_name(model)
        check_device(device)
        if not latent_eb > 0:
            raise InvalidInputError(f"latent_eb must be > 0, got {latent_eb}")
        if not all(isinstance(v, int) and v >= 1 for v in (1 if threads is None else threads, batch)):
            raise InvalidInputError(f"threads and batch must be positive integers, got {threads!r}, {batch!r}")
        self.model_name, self.latent_eb, self.device = model, latent_eb, device
        self.arithmetic = arithmetic_to_write(arithmetic)
        self.threads, self.batch, self.compete_interp, self.tune = threads, batch, compete_interp, tune

    @classmethod
    def from_params(cls, params: dict[str, Any], runtime: Runtime | None = None) -> AutoencoderPredictor:
        try:
            arithmetic = check_arithmetic(params.get("arithmetic", FLOAT))
            if arithmetic == FLOAT:
                return cls(model=params["family"], latent_eb=params["latent_eb"], device=params["device"],
                           threads=params["threads"], batch=params["batch"], compete_interp=False,
                           arithmetic=FLOAT)
            runtime = runtime or Runtime()
            return cls(model=params["family"], latent_eb=params["latent_eb"], device=runtime.device,
                       threads=runtime.threads, compete_interp=False, arithmetic=arithmetic)
        except (KeyError, TypeError, InvalidInputError) as exc:
            raise StreamFormatError(f"the ae predictor parameters are invalid ({exc})") from None

    def _settings(self, device: str) -> InferenceSettings:
        return InferenceSettings(device=device, threads=self.threads, batch=self.batch, arithmetic=self.arithmetic)

    def _model_for(self, ndim: int, sha256: str | None = None) -> tuple[Any, Any, str]:
        name = f"{self.model_name}_{ndim}d"
        device = resolve_device(self.device)
        from srnsz.networks.autoencoder import BlockAutoencoder

        model, entry = cached_model(name, device, sha256, network=BlockAutoencoder)
        if model.spatial_dims != ndim:
            raise InvalidInputError(f"autoencoder {name!r} is for {model.spatial_dims}D blocks, the field is {ndim}D")
        return model, entry, device

    def compress(self, data: np.ndarray, eb: float, progress: Progress | None = None,
                 free: np.ndarray | None = None) -> Encoded:
        if data.ndim not in (2, 3):
            encoded = LorenzoPredictor().compress(data, eb, progress)
            encoded.predictor = "lorenzo"  # the autoencoders are 2D and 3D
            return encoded
        encoded = self._compress_blocks(data, eb)
        if self.compete_interp:  # the pipeline keeps whichever finished stream is smaller
            interp = InterpPredictor(tune=self.tune, threads=self.threads).compress(data, eb, free=free)
            interp.predictor = "interp"  # the plain interp stream, exactly
            encoded.alternatives = [interp]
        if progress:
            progress(data.size)
        return encoded

    def _compress_blocks(self, data: np.ndarray, eb: float) -> Encoded:
        model, entry, device = self._model_for(data.ndim)
        settings = self._settings(device)
        pq = prequantize(data, eb)
        lo, span = _value_range(data, pq.escaped)
        blocks = list(chunk_keys(data.shape, (model.block_size,) * data.ndim))
        lorenzo = [difference(pq.d, 1), difference(pq.d, 2)]
        normalised = _normalised_blocks(data, blocks, model.block_size, lo, span)
        step = 2 * self.latent_eb * eb / span
        with pinned_torch(settings) as torch:
            latents = []
            for start in range(0, len(blocks), settings.batch):
                chunk = torch.from_numpy(normalised[start:start + settings.batch]).to(device)
                latents.append(model.encode(chunk).to("cpu", torch.float64).numpy())
        quantized = np.rint(np.concatenate(latents) / step).astype(np.int64)
        predicted = np.zeros(data.shape, np.int64)
        for block, prediction in zip(blocks, decode_blocks(model, quantized, step, settings, blocks, lo, span, eb)):
            predicted[block] = prediction
        candidates = [lorenzo[0], lorenzo[1], pq.d - predicted]
        ids, n_blocks = block_ids(data.shape, model.block_size)
        costs = np.stack([np.bincount(ids.ravel(), _bit_cost(c).ravel(), n_blocks) for c in candidates], axis=1)
        costs[:, AUTOENCODER] += _bit_cost(quantized).sum(axis=1)
        choices = choose_predictors(costs).astype(np.uint8)
        ae_index = np.flatnonzero(choices == AUTOENCODER)
        if ae_index.size and self.arithmetic == FLOAT:
            # float32 results depend on the batch: decode the chosen latents exactly as the decompressor will.
            ae_blocks = [blocks[i] for i in ae_index]
            for block, prediction in zip(ae_blocks, decode_blocks(model, quantized[ae_index], step, settings,
                                                                   ae_blocks, lo, span, eb)):
                predicted[block] = prediction
            candidates[AUTOENCODER] = pq.d - predicted
        order = block_order(ids)
        point_choice = choices[ids.ravel()[order]]
        writer = ContextCodeWriter()
        big = []
        for table, candidate in enumerate(candidates):
            picked = point_choice == table
            if picked.any():
                codes, table_big = _split_codes(candidate.ravel()[order[picked]])
                writer.write(codes, np.zeros(codes.size, np.uint8), table)
                big.append(table_big)
        sections = {"CODE": writer.finish(), "FLAG": lossless.pack(choices.tobytes())}
        ae_blocks = choices == AUTOENCODER
        if ae_blocks.any():
            sections["LATN"] = lossless.pack(quantized[ae_blocks].astype(np.int64).tobytes())
        _GridStreams.pack(sections, pq.escaped, pq.raw, big)
        params = {"family": self.model_name, "weights": entry.name, "sha256": entry.sha256,
                  "latent_eb": self.latent_eb, "range": [lo, span],
                  "blocks": {"ae": int(ae_blocks.sum()), "lorenzo1": int((choices == LORENZO_1).sum()),
                             "lorenzo2": int((choices == LORENZO_2).sum())}}
        numerics: dict[str, Any] = {}
        minor = format_minor(sections["CODE"])
        if self.arithmetic == FLOAT:  # its bits depend on the device, threads, batch and torch build
            import torch

            params.update(device=device, threads=self.threads, batch=self.batch)
            numerics["torch"] = torch.__version__
        else:
            params["arithmetic"] = self.arithmetic
            minor = max(minor or 0, FIXED_POINT_ARITHMETICS[self.arithmetic].format_minor)
        return Encoded(sections, params, reconstruct(pq.d, eb, data.dtype, pq.escaped, pq.raw), numerics=numerics,
                       format_minor=minor)

    def decompress(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                   dtype: np.dtype, eb: float, progress: Progress | None = None) -> np.ndarray:
        if not isinstance(params.get("sha256"), str):  # every writer records it: the weights are checked against it
            raise StreamFormatError("the ae stream does not record its weights' sha256")
        model, _, device = self._model_for(len(shape), params["sha256"])
        lo, span = (float(v) for v in params["range"])
        if not (math.isfinite(lo) and span > 0):  # (the writer's span: > 0, inf where float64 values overflow it)
            raise StreamFormatError(f"the autoencoder's value range {params['range']!r} is damaged")
        escaped, raw, big = _GridStreams.unpack(sections, shape, dtype)
        blocks = list(chunk_keys(shape, (model.block_size,) * len(shape)))
        choices = np.frombuffer(lossless.unpack(sections["FLAG"], "block choice", len(blocks)), np.uint8)
        if choices.size != len(blocks) or choices.max(initial=0) > AUTOENCODER:
            raise StreamFormatError("the block choices do not match the field")
        ids, _ = block_ids(shape, model.block_size)
        order = block_order(ids)
        point_choice = choices[ids.ravel()[order]]
        reader = CodeReader(sections["CODE"], int(np.prod(shape)))
        residual = np.zeros(int(np.prod(shape)), np.int64)
        used = 0
        for table in (LORENZO_1, LORENZO_2, AUTOENCODER):
            picked = point_choice == table
            if picked.any():
                codes = reader.read(np.zeros(int(picked.sum()), np.uint8), table)
                residual[order[picked]], used = _join_codes(codes, big, used)
        residual = residual.reshape(shape)
        d = np.zeros(shape, np.int64)
        ae_index = np.flatnonzero(choices == AUTOENCODER)
        if ae_index.size:
            latents = np.frombuffer(lossless.unpack(sections["LATN"], "latent", 8 * ae_index.size * model.latent_dim),
                                    np.int64)
            if latents.size != ae_index.size * model.latent_dim:
                raise StreamFormatError("the latent section does not match the autoencoder blocks")
            step = 2 * float(params["latent_eb"]) * eb / span
            ae_blocks = [blocks[i] for i in ae_index]
            predictions = decode_blocks(model, latents.reshape(ae_index.size, -1), step, self._settings(device),
                                         ae_blocks, lo, span, eb)
            for block, prediction in zip(ae_blocks, predictions):
                d[block] = prediction + residual[block]
        lorenzo_layers = set(choices[choices != AUTOENCODER].tolist())
        if not ae_index.size and len(lorenzo_layers) == 1:
            d = integrate(residual, lorenzo_layers.pop() + 1)  # one predictor everywhere: one global pass
        else:
            for block, choice in zip(blocks, choices):
                if choice != AUTOENCODER:
                    start = tuple(s.start for s in block)
                    d[block] = integrate_block(residual[block], d, start, int(choice) + 1)
        if progress:
            progress(int(np.prod(shape)))
        return reconstruct(d, eb, dtype, escaped, raw)


def choose_predictors(costs: np.ndarray) -> np.ndarray:
    """(n_blocks, 3) estimated bits -> each block's predictor, the cheapest (a seam for tests)."""
    return np.argmin(costs, axis=1)


def _bit_cost(residual: np.ndarray) -> np.ndarray:
    """Rough coded size of each integer residual: log2(1 + |r|) + 1 bits."""
    return np.log2(1.0 + np.abs(residual.astype(np.float64))) + 1.0


def _value_range(data: np.ndarray, escaped: np.ndarray) -> tuple[float, float]:
    """(min, max - min) of the values that are not escaped; span 1 for constant fields."""
    valid = data[~escaped].astype(np.float64)
    if valid.size == 0:
        return 0.0, 1.0
    lo, hi = float(valid.min()), float(valid.max())
    return lo, (hi - lo) if hi > lo else 1.0


def _normalised_blocks(data: np.ndarray, blocks: list[tuple[slice, ...]], side: int, lo: float, span: float
                       ) -> np.ndarray:
    """(nb, 1, side, ...) float32 blocks scaled to [0, 1]; edge blocks padded by repeating their last values."""
    out = np.empty((len(blocks), 1) + (side,) * data.ndim, np.float32)
    for i, block in enumerate(blocks):
        values = data[block].astype(np.float64)
        values = np.where(np.isfinite(values), (values - lo) / span, 0.0).clip(-1.0, 2.0)
        pad = [(0, side - n) for n in values.shape]
        out[i, 0] = np.pad(values, pad, mode="edge") if any(p for _, p in pad) else values
    return out


def decode_blocks(model: Any, quantized: np.ndarray, step: float, settings: InferenceSettings,
                   blocks: list[tuple[slice, ...]], lo: float, span: float, eb: float) -> list[np.ndarray]:
    """Integer grid predictions (one array per block, cropped to the block) from quantized latents, decoded in the
    settings' arithmetic (fixed point: the latents quantized * step in float64, then its grid)."""
    outputs = []
    fixed = settings.arithmetic != FLOAT
    if fixed:
        from srnsz.neural.fixed_point import autoencoder_decode
    with pinned_torch(settings) as torch:
        for start in range(0, len(quantized), settings.batch):
            latent = quantized[start:start + settings.batch] * step
            if fixed:
                decoded = autoencoder_decode(model, torch.from_numpy(latent).to(settings.device),
                                             arithmetic=settings.arithmetic)
            else:
                decoded = model.decode(torch.from_numpy(latent.astype(np.float32)).to(settings.device))
            outputs.append(decoded.clamp_(0.0, 1.0)[:, 0].to("cpu", torch.float64).numpy())
    decoded = np.concatenate(outputs) if outputs else np.zeros((0,))
    predictions = []
    for block, values in zip(blocks, decoded):
        crop = values[tuple(slice(0, s.stop - s.start) for s in block)]
        predictions.append(np.rint((lo + crop * span) / (2 * eb)).astype(np.int64))
    return predictions


__all__ = ["AutoencoderPredictor", "LorenzoPredictor"]
