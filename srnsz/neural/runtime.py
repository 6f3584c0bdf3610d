"""Network inference for the neural predictors: device, threads, per-plane x2 upsampling, block decoding.

Reproducibility is part of the error-bound guarantee (DESIGN.md): the decompressor must compute bit-identical
predictions. Streams of format 1.9 on run their networks in fixed point (:mod:`srnsz.neural.fixed_point`,
``arithmetic`` recorded in the stream, :class:`FixedPointArithmetic`): from format 1.16 on the same bits on every
CPU, GPU, thread count, batch size and torch build (in 1.9-1.15 on the kind of machine that made them), so the
decoder picks its own device and threads (:class:`Runtime`). Older streams ran them in float32, whose bits
depend on the thread count and batch (recorded in their header and used again to decode), and on the CPU's
instruction set and the torch build, which the header's reconstruction checksum catches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from srnsz.errors import InvalidInputError, StreamFormatError

FLOAT = "float32"  # the arithmetic of streams before format 1.9


@dataclass(frozen=True)
class FixedPointArithmetic:
    """One fixed-point arithmetic of :mod:`srnsz.neural.fixed_point` as streams name it (named here so that reading
    a stream needs no torch). Any change to the module's grids, tables or order of operations is a new one."""

    name: str
    format_minor: int  # the format minor of the streams that use it
    # square roots correctly rounded; else torch.sqrt's, which on x86 CPUs is MKL's vdSqrt, 1 ulp from the correctly
    # rounded root for about 1% of float64 inputs (CUDA's and other CPUs' are correctly rounded)
    correct_roots: bool
    # a division by a number that is not a power of two divides by a 0-dim tensor on the device; else by the number,
    # which torch's CUDA kernels turn into a product with its reciprocal (one rounding more than the CPU's division)
    divisors_on_device: bool
    portability: str  # where its streams decode to their bits (`srnsz info`)


FIXED_POINT_1 = "fixed-point-1"  # streams of formats 1.9-1.15
FIXED_POINT = "fixed-point-2"  # what new streams use
FIXED_POINT_ARITHMETICS = {a.name: a for a in (
    FixedPointArithmetic(FIXED_POINT_1, 9, correct_roots=False, divisors_on_device=False,
                         portability="the same bits with any thread count on the kind of machine that made it; "
                                     "elsewhere (x86 CPUs with torch's MKL against GPUs and other CPUs, CPUs against "
                                     "GPUs) a square root or division can round otherwise, and the checksum then "
                                     "refuses the stream"),
    FixedPointArithmetic(FIXED_POINT, 16, correct_roots=True, divisors_on_device=True,
                         portability="the same bits on any CPU or GPU, with any thread count"),
)}
FIXED_POINTS = tuple(FIXED_POINT_ARITHMETICS)
# Fixed-point inference batches tiles up to about this many coarse points (16 tiles of 48 x 48): a forward pass costs
# ~8 ms of overhead on 2 CPU cores however small its tiles, and larger batches were no faster per point.
FIXED_POINT_BATCH_POINTS = 16 * 48 * 48


@dataclass(frozen=True)
class InferenceSettings:
    """How a network's predictions are computed. ``arithmetic`` FLOAT: everything here can change their bits and
    is recorded in the header; FIXED_POINT: only ``tile`` and ``overlap`` can (they decide what the
    network sees), device, threads and batch are free (``threads`` None: torch's default)."""

    device: str = "cpu"
    threads: int | None = 2
    batch: int = 16
    tile: int = 128  # coarse-grid tile side; tiles overlap by `overlap` on each side
    overlap: int = 8
    arithmetic: str = FLOAT

    def to_params(self) -> dict[str, Any]:
        """What the stream header records (hat's ``inference``)."""
        if self.arithmetic == FLOAT:
            return {k: v for k, v in asdict(self).items() if k != "arithmetic"}
        return {"arithmetic": self.arithmetic, "tile": self.tile, "overlap": self.overlap}


@dataclass(frozen=True)
class Runtime:
    """Where a decoder runs the networks of a fixed-point stream: ``device`` auto | cpu | cuda[:n], ``threads`` for
    the CPU (None: torch's default, the cores available). Any choice gives the same bits; float32 streams ignore it
    and use what they recorded."""

    device: str = "auto"
    threads: int | None = None


def arithmetic_to_write(arithmetic: Any) -> str:
    """``arithmetic`` a predictor may compress in (None: FIXED_POINT, what new streams use), else a clear
    InvalidInputError."""
    if arithmetic is None:
        return FIXED_POINT
    if arithmetic not in (*FIXED_POINTS, FLOAT):
        raise InvalidInputError(f"arithmetic must be one of {', '.join(map(repr, (*FIXED_POINTS, FLOAT)))}, got "
                                f"{arithmetic!r}")
    return str(arithmetic)


def check_arithmetic(arithmetic: Any) -> str:
    """``arithmetic`` from a stream header if this srnsz computes it, else a clear StreamFormatError."""
    if arithmetic not in (FLOAT, *FIXED_POINTS):
        raise StreamFormatError(f"the stream's networks use arithmetic {arithmetic!r}, which this srnsz does not "
                                f"know (it computes {', '.join(map(repr, (FLOAT, *FIXED_POINTS)))}); upgrade srnsz")
    return str(arithmetic)


def check_device(device: Any) -> str:
    """``device`` if it names one (auto | cpu | cuda | cuda:n), else a clear error; imports no torch."""
    if not isinstance(device, str) or not (device in ("auto", "cpu", "cuda") or
                                           (device.startswith("cuda:") and device[5:].isdigit())):
        raise InvalidInputError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}")
    return device


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; 'cuda' without one is a clear error."""
    import torch

    check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    return device


# glibc's malloc (mallopt parameters): tensors of a few MB up to 32 MB come from the heap and freed ones stay there
# while networks run; by default glibc hands them back to the kernel, and a forward pass's every temporary then pays its
# page faults afresh (one fixed-point attention call measured 2.5-3.2x slower on 2 cores). Afterwards the thresholds
# are those glibc's own adjustment reaches after large arrays (mmap 32 MiB, trim twice that).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
HEAP_MMAP_THRESHOLD = 32 << 20
HEAP_KEPT_DURING_INFERENCE = 1 << 30


def _glibc() -> Any:
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@contextmanager
def heap_kept() -> Iterator[None]:
    """Freed memory stays in the process's heap inside the block (glibc on Linux; elsewhere nothing changes)."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)
    libc.mallopt(M_TRIM_THRESHOLD, HEAP_KEPT_DURING_INFERENCE)
    try:
        yield
    finally:
        libc.mallopt(M_TRIM_THRESHOLD, 2 * HEAP_MMAP_THRESHOLD)  # glibc trims the heap's top at the next free


@contextmanager
def pinned_torch(settings: InferenceSettings) -> Iterator[Any]:
    """torch with the recorded thread count, no autograd and freed memory kept for the next tensors
    (:func:`heap_kept`); restores on exit. Float32 networks also get deterministic algorithms; fixed point needs none
    (its sums are exact in any order), and without them torch neither fills every new tensor with NaN first (a pass
    over memory per allocation) nor warns about cuBLAS on a GPU."""
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        torch.set_num_threads(settings.threads or threads)
        torch.use_deterministic_algorithms(settings.arithmetic == FLOAT, warn_only=True)
        with torch.inference_mode(), heap_kept():
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


def _scaled(values: np.ndarray, lows: np.ndarray, spans: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """(N, ...) values -> (v - lows[n]) / spans[n] per leading index in ``dtype`` (0 where not finite or no span)."""
    shape = (-1,) + (1,) * (values.ndim - 1)
    lows, spans = lows.reshape(shape), spans.reshape(shape)
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = np.where(np.isfinite(values), values.astype(np.float64) - lows, 0.0)
        scaled = np.divide(shifted, spans, out=np.zeros_like(shifted), where=spans > 0)
    return scaled.astype(dtype)


def upsample_planes(model: Any, planes: np.ndarray, settings: InferenceSettings, eb: float = 0.0,
                    context: np.ndarray | None = None) -> np.ndarray:
    """x2 super-resolution of each coarse plane: (N, h, w) float -> (N, 2h, 2w) float64 in data units.

    Each plane is scaled to [0, 1] by the min/max of its finite values (non-finite entries are set to the
    minimum), the network output is clipped to [0, 1] and scaled back. Large planes are cut in overlapping
    tiles whose centres are stitched. Constant planes come back constant without running the network.
    A network with a bound channel is also given ``eb`` (data units: how far the planes may be from the
    truth) relative to each plane's span. A network that takes context planes is given ``context`` (N, 2, h, w):
    the coarse planes before and after each plane, scaled like it (required then). ``settings.arithmetic`` picks
    float32 or fixed-point inference (:mod:`srnsz.neural.fixed_point`: planes scaled in float64, then its grid).
    """
    fixed = settings.arithmetic != FLOAT
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
    dtype = np.float64 if fixed else np.float32
    normalised = _scaled(planes, lows, spans, dtype)
    if with_context:
        scaled = _scaled(context, lows, spans, dtype)
    rows, cols = _tile_ranges(h, settings.tile, settings.overlap), _tile_ranges(w, settings.tile, settings.overlap)
    for i in range(n):
        if spans[i] <= 0:
            out[i] = lows[i]
            continue
        for r in rows:
            for c in cols:
                work.setdefault((r[1] - r[0], c[1] - c[0]), []).append((i, r, c))
    if fixed:
        from srnsz.neural.fixed_point import bound_level, hat_forward
    with pinned_torch(settings) as torch:
        for items in work.values():
            per_call = settings.batch
            if fixed:  # the bits do not depend on the batch: small tiles go in larger batches (less per-call overhead)
                tile_points = (items[0][1][1] - items[0][1][0]) * (items[0][2][1] - items[0][2][0])
                per_call = max(per_call, FIXED_POINT_BATCH_POINTS // tile_points)
            for start in range(0, len(items), per_call):
                group = items[start:start + per_call]
                batch = torch.from_numpy(
                    np.stack([normalised[i, r[0]:r[1], c[0]:c[1]] for i, r, c in group])[:, None]).to(settings.device)
                extra: dict[str, Any] = {}
                if bound_aware and fixed:
                    levels = np.array([bound_level(float(eb / spans[i])) for i, _, _ in group])
                    extra["levels"] = torch.from_numpy(levels).to(settings.device)
                elif bound_aware:
                    bound = np.array([eb / spans[i] for i, _, _ in group], dtype=np.float32)
                    extra["bound"] = torch.from_numpy(bound).to(settings.device)
                if with_context:
                    extra["context"] = torch.from_numpy(
                        np.stack([scaled[i, :, r[0]:r[1], c[0]:c[1]] for i, r, c in group])).to(settings.device)
                pred = hat_forward(model, batch, arithmetic=settings.arithmetic, **extra) if fixed else \
                    model(batch, **extra)
                pred = pred.clamp_(0.0, 1.0)
                pred = pred[:, 0].to("cpu", torch.float64).numpy()
                for (i, r, c), p in zip(group, pred):
                    keep = p[2 * (r[2] - r[0]):2 * (r[3] - r[0]), 2 * (c[2] - c[0]):2 * (c[3] - c[0])]
                    out[i, 2 * r[2]:2 * r[3], 2 * c[2]:2 * c[3]] = lows[i] + keep * spans[i]
    return out
