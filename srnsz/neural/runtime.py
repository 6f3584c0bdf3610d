"""Deterministic network inference for the neural predictors: torch set-up, per-plane x2 upsampling.

Reproducibility is part of the error-bound guarantee (DESIGN.md): the decompressor must compute bit-identical
predictions. CPU results depend on the intra-op thread count (reduction order), so inference runs with the
thread count and batch size recorded in the stream header, in `torch.inference_mode`, with deterministic
algorithms; the header's reconstruction checksum catches what remains (another CPU ISA, another torch build).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from srnsz.errors import InvalidInputError


@dataclass(frozen=True)
class InferenceSettings:
    """Everything that can change the bits of a prediction; recorded in the header."""

    device: str = "cpu"
    threads: int = 2
    batch: int = 16
    tile: int = 128  # coarse-grid tile side; tiles overlap by `overlap` on each side
    overlap: int = 8

    def to_params(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; 'cuda' without one is a clear error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise InvalidInputError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}")
    return device


@contextmanager
def pinned_torch(settings: InferenceSettings) -> Iterator[Any]:
    """torch with the recorded thread count, deterministic algorithms and no autograd; restores on exit."""
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        torch.set_num_threads(settings.threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        with torch.inference_mode():
            yield torch
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def _tile_ranges(n: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(start, stop, keep_start, keep_stop) along one coarse axis; the keep ranges partition [0, n)."""
    if n <= tile:
        return [(0, n, 0, n)]
    step = tile - 2 * overlap
    out = []
    for keep_start in range(0, n, step):
        keep_stop = min(n, keep_start + step)
        start = max(0, min(keep_start - overlap, n - tile))
        out.append((start, min(n, start + tile), keep_start, keep_stop))
    return out


def _scaled(values: np.ndarray, lows: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """(N, ...) values -> float32 (v - lows[n]) / spans[n] per leading index (0 where not finite or no span)."""
    shape = (-1,) + (1,) * (values.ndim - 1)
    lows, spans = lows.reshape(shape), spans.reshape(shape)
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = np.where(np.isfinite(values), values.astype(np.float64) - lows, 0.0)
        scaled = np.divide(shifted, spans, out=np.zeros_like(shifted), where=spans > 0)
    return scaled.astype(np.float32)


def upsample_planes(model: Any, planes: np.ndarray, settings: InferenceSettings, eb: float = 0.0,
                    context: np.ndarray | None = None) -> np.ndarray:
    """x2 super-resolution of each coarse plane: (N, h, w) float -> (N, 2h, 2w) float64 in data units.

    Each plane is scaled to [0, 1] by the min/max of its finite values (non-finite entries are set to the
    minimum), the network output is clipped to [0, 1] and scaled back. Large planes are cut in overlapping
    tiles whose centres are stitched. Constant planes come back constant without running the network.
    A network with a bound channel is also given ``eb`` (data units: how far the planes may be from the
    truth) relative to each plane's span. A network that takes context planes is given ``context`` (N, 2, h, w):
    the coarse planes before and after each plane, scaled like it (required then).
    """
    bound_aware = bool(getattr(model, "bound_channel", False))
    with_context = bool(getattr(model, "context_planes", False))
    if with_context and (context is None or context.shape != (planes.shape[0], 2, *planes.shape[1:])):
        raise InvalidInputError("this network takes the coarse planes beside each plane (context of shape (N, 2, h, "
                                "w))")
    n, h, w = planes.shape
    out = np.empty((n, 2 * h, 2 * w), dtype=np.float64)
    work: dict[tuple[int, int], list[tuple[int, tuple, tuple]]] = {}
    finite = np.isfinite(planes)
    lows = np.where(finite, planes, np.inf).reshape(n, -1).min(axis=1)
    highs = np.where(finite, planes, -np.inf).reshape(n, -1).max(axis=1)
    lows = np.where(np.isfinite(lows), lows, 0.0)
    highs = np.where(np.isfinite(highs), highs, 0.0)
    spans = highs - lows
    normalised = _scaled(planes, lows, spans)
    if with_context:
        scaled = _scaled(context, lows, spans)
    rows, cols = _tile_ranges(h, settings.tile, settings.overlap), _tile_ranges(w, settings.tile, settings.overlap)
    for i in range(n):
        if spans[i] <= 0:
            out[i] = lows[i]
            continue
        for r in rows:
            for c in cols:
                work.setdefault((r[1] - r[0], c[1] - c[0]), []).append((i, r, c))
    with pinned_torch(settings) as torch:
        for items in work.values():
            for start in range(0, len(items), settings.batch):
                group = items[start:start + settings.batch]
                batch = torch.from_numpy(
                    np.stack([normalised[i, r[0]:r[1], c[0]:c[1]] for i, r, c in group])[:, None]).to(settings.device)
                extra: dict[str, Any] = {}
                if bound_aware:
                    bound = np.array([eb / spans[i] for i, _, _ in group], dtype=np.float32)
                    extra["bound"] = torch.from_numpy(bound).to(settings.device)
                if with_context:
                    extra["context"] = torch.from_numpy(
                        np.stack([scaled[i, :, r[0]:r[1], c[0]:c[1]] for i, r, c in group])).to(settings.device)
                pred = model(batch, **extra)
                pred = pred.clamp_(0.0, 1.0)
                pred = pred[:, 0].to("cpu", torch.float64).numpy()
                for (i, r, c), p in zip(group, pred):
                    keep = p[2 * (r[2] - r[0]):2 * (r[3] - r[0]), 2 * (c[2] - c[0]):2 * (c[3] - c[0])]
                    out[i, 2 * r[2]:2 * r[3], 2 * c[2]:2 * c[3]] = lows[i] + keep * spans[i]
    return out
