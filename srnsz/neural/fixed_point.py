"""Fixed-point network inference: the same prediction bits on every CPU, GPU, thread count and torch build.

Contract. Every tensor the forward pass computes is float64 holding values on a grid (multiples of 2^-bits,
bounded), and every operation is one of:

- a sum of products of grid values (convolutions, matrix products, attention products, means): exact, because
  every partial sum is a multiple of the grid's step below 2^53 of it (checked for every layer before it runs:
  :func:`fixed_weight` and :func:`check_exact`), so the order, the BLAS, FMA, the device and the thread count
  cannot change it;
- one IEEE basic operation (+ - * / sqrt) on whole tensors, correctly rounded on every IEEE platform, each its own
  kernel (never fused; square roots by :func:`square_root`, since torch's CPU kernel is not correctly rounded),
  followed by rounding back to a grid (:func:`quantize`, round half to even); a scaling by a power of two is exact,
  so it may be folded into a neighbouring step (weights held in grid units,
  :func:`product_on_grid`, :func:`quotient_on_grid`); a division by anything but a power of two has its divisor
  in a tensor on the dividend's device (:func:`on_device`): torch's CUDA kernels multiply by the reciprocal of a
  Python number instead of dividing, one rounding more (the arithmetic ``fixed-point-1`` of the streams of formats
  1.9-1.15 keeps torch.sqrt and the Python divisors: :class:`srnsz.neural.runtime.FixedPointArithmetic`);
- a lookup in an integer table made here with Python's decimal arithmetic (correctly rounded, no platform libm):
  exp(-a) for attention and sigmoid (:func:`exp_negative`), the normal CDF for GELU (:func:`gelu`);
- data movement (padding, windows, rolls, pixel shuffle), max, clamp and comparisons: exact.

No library exp/erf/tanh/log and no reduction over values off the grid. The grids (ACTIVATION_BITS and the others
below) keep the network's outputs within about 1e-5 of its float ones; they are part of the stream format
(``ARITHMETIC`` names them), never tuned per call.

With autograd on (training), every rounding and table passes the float function's gradient through
(straight-through), so quantization-aware training uses this same forward pass in float32
(``training/objectives.py``); the float32 values are then close to, not exactly, the float64 grid values.
"""

from __future__ import annotations

import decimal
import functools
import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from srnsz.neural.runtime import FIXED_POINT as ARITHMETIC  # the newest one's name in streams
from srnsz.neural.runtime import FIXED_POINT_ARITHMETICS, FixedPointArithmetic

ACTIVATION_BITS = 16  # activations are multiples of 2^-16 ...
ACTIVATION_LIMIT = 2.0 ** 12  # ... of at most 4096 in magnitude where a layer reads them (hat: ~160 seen)
WEIGHT_BITS = 15  # weights: integers of magnitude <= 2^15 times a power of two per tensor
EXACT_LIMIT = 2.0 ** 53  # a sum of integers in float64 is exact while every partial sum stays below this
QK_BITS, QK_LIMIT = 12, 2.0 ** 8  # attention queries and keys
VALUE_LIMIT = 2.0 ** 8  # attention values (on the activation grid)
LOGIT_BITS = 12  # attention logits and the arguments of exp
TABLE_BITS = 30  # exp and normal-CDF tables: integers / 2^30
EXP_SPAN = 32  # exp(-a) is 0 for a >= 32 (below 2^-46)
EXP_HIGH_BITS = 9  # exp(-a) = high[a // 2^-3] * low[a mod 2^-3] (a on the logit grid)
VARIANCE_BITS, VARIANCE_LIMIT = 12, 2.0 ** 8  # deviations squared in a layer norm's variance
GELU_SPAN, GELU_TABLE_BITS = 8, 7  # normal CDF tabulated on [-8, 8] every 2^-7, linear between
SQUARE_BITS, SQUARE_LIMIT = 12, 2.0 ** 16  # squares in the generalized divisive normalization
LATENT_BITS, LATENT_LIMIT = 24, 2.0 ** 8  # an autoencoder's latent (its quantization step can be ~1e-5)


class FixedPointError(ValueError):
    """A layer cannot be computed exactly on the fixed-point grids (its weights or sizes are too large), or a
    fixed-point arithmetic is not one this module computes."""


def quantize(x: torch.Tensor, bits: int, limit: float | None = None) -> torch.Tensor:
    """``x`` rounded to the nearest multiple of 2^-bits (half to even), clamped to [-limit, limit]; same shape.

    With autograd on, the gradient passes through unchanged (straight-through)."""
    scale = 2.0 ** bits
    q = torch.round(x * scale)
    if limit is not None:
        q.clamp_(-limit * scale, limit * scale)
    q.mul_(1.0 / scale)
    return x + (q - x).detach() if x.requires_grad else q


def rounded(x: torch.Tensor, bits: int, limit: float | None = None) -> torch.Tensor:
    """:func:`quantize` of a temporary that nothing else holds, in place (the same values; without autograd no
    copy is made)."""
    if x.requires_grad:
        return quantize(x, bits, limit)
    return _units_to_grid(x.mul_(2.0 ** bits), bits, limit)


def _units_to_grid(units: torch.Tensor, bits: int, limit: float | None = None) -> torch.Tensor:
    """A temporary holding x 2^bits -> x rounded to the nearest multiple of 2^-bits (half to even) within ``limit``,
    in place: :func:`rounded` after its first multiplication."""
    units.round_()
    if limit is not None:
        units.clamp_(-limit * 2.0 ** bits, limit * 2.0 ** bits)
    return units.mul_(2.0 ** -bits)


def product_on_grid(a: torch.Tensor, b: torch.Tensor | float, bits: int = ACTIVATION_BITS) -> torch.Tensor:
    """a x b (broadcasting) rounded to the nearest multiple of 2^-bits: :func:`rounded` (a x b) in one pass fewer.
    ``b`` (a number or the smaller tensor) is scaled by 2^bits first, so the product comes out in grid units: a
    power of two, exact, and the rounding of a x b x 2^bits is the rounding of a x b scaled (no values near float64's
    overflow or underflow here)."""
    if a.requires_grad or (isinstance(b, torch.Tensor) and b.requires_grad):
        return quantize(a * b, bits)
    return _units_to_grid(a * (b * 2.0 ** bits), bits)


def on_device(number: float, like: torch.Tensor) -> torch.Tensor:
    """``number`` as a 0-dim tensor of ``like``'s dtype on its device: a divisor that is divided by everywhere (on
    CUDA a tensor divided by a Python number, or by a 0-dim CPU tensor, is multiplied by its reciprocal)."""
    return torch.full((), number, dtype=like.dtype, device=like.device)


def divisor(number: float, like: torch.Tensor, arithmetic: FixedPointArithmetic) -> torch.Tensor | float:
    """``number`` as the arithmetic divides by it: :func:`on_device`, or the number itself (``fixed-point-1``)."""
    return on_device(number, like) if arithmetic.divisors_on_device else number


def quotient_on_grid(a: torch.Tensor, b: torch.Tensor | float, bits: int = ACTIVATION_BITS,
                     limit: float | None = None) -> torch.Tensor:
    """a / b (broadcasting) rounded to the nearest multiple of 2^-bits within ``limit``: :func:`rounded` (a / b) in
    one pass fewer (``b``, the smaller, scaled by 2^-bits first; exact as in :func:`product_on_grid`; a number ``b``
    that is not a power of two is divided by otherwise on CUDA: :func:`divisor`)."""
    if a.requires_grad or (isinstance(b, torch.Tensor) and b.requires_grad):
        return quantize(a / b, bits, limit)
    return _units_to_grid(a / (b * 2.0 ** -bits), bits, limit)


def bounded(x: torch.Tensor, limit: float = ACTIVATION_LIMIT) -> torch.Tensor:
    """An activation (already on its grid: every operation here rounds its result back) clamped to [-limit, limit],
    the range a layer's exactness check assumes (``x`` itself where it is within them: one read instead of a copy on
    the CPU)."""
    if x.device.type == "cpu" and x.numel():
        low, high = torch.aminmax(x.detach())
        if -limit <= float(low) and float(high) <= limit:
            return x
    return x.clamp(-limit, limit)


def _straight_through(exact: torch.Tensor, x: torch.Tensor, smooth: Callable[[torch.Tensor], torch.Tensor]
                      ) -> torch.Tensor:
    """``exact``'s values with the gradient of ``smooth(x)`` (just ``exact`` without autograd)."""
    if not x.requires_grad:
        return exact
    reference = smooth(x)
    return reference + (exact - reference).detach()


def fixed_weight(weight: torch.Tensor, input_limit: float, input_bits: int = ACTIVATION_BITS
                 ) -> tuple[torch.Tensor, int]:
    """(weights on the grid 2^-bits, bits) for a layer whose inputs are multiples of 2^-input_bits of magnitude
    <= input_limit; ``weight`` (out, ...) with the reduction over all axes but the first. The bits are the most
    (integers of at most WEIGHT_BITS bits) for which every output's sum of |input| x |weight| in integer units stays
    below EXACT_LIMIT, so the layer is exact for any input within the limit. Decided on the rounded integers
    (exact sums), so every machine decides alike."""
    w = weight.detach().to(torch.float64)
    peak = float(w.abs().max()) if w.numel() else 0.0
    if not math.isfinite(peak):
        raise FixedPointError("a layer has weights that are not finite")
    if peak == 0.0:
        return torch.zeros_like(weight), 0
    bits = WEIGHT_BITS - math.frexp(peak)[1]
    input_ints = input_limit * 2.0 ** input_bits
    rows = w.reshape(w.shape[0], -1) if w.ndim > 1 else w.reshape(-1, 1)
    while input_ints * float(torch.round(rows * 2.0 ** bits).abs().sum(dim=1).max()) >= EXACT_LIMIT:
        bits -= 1
    return quantize(weight, bits), bits


def check_exact(left_ints: float, right_ints: float, terms: int, what: str) -> None:
    """Refuse a product of grid values whose integers reach ``left_ints`` and ``right_ints``, summed over ``terms``,
    that could leave float64's exact integers."""
    if left_ints * right_ints * terms >= EXACT_LIMIT:
        raise FixedPointError(f"{what}: {terms} products of integers up to {left_ints:.3g} x {right_ints:.3g} "
                              "are not exact in float64")


# A layer's parameters on their grids, kept per layer while they are unchanged (inference only): deriving them is a
# tenth of a small network's forward pass.
_ON_GRID: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple[tuple[int, ...], Any]]] = weakref.WeakKeyDictionary()


def on_grid(layer: nn.Module, key: tuple, make: Callable[[], Any]) -> Any:
    """``make()`` -- ``layer``'s parameters on their fixed-point grids, for ``key`` (what, dtype, device, ...) -- kept
    for the next call while the parameters are unchanged (their versions); computed afresh with autograd on, where
    training needs their gradients."""
    if torch.is_grad_enabled():
        return make()
    versions = tuple(p._version for p in layer.parameters(recurse=False))
    entries = _ON_GRID.setdefault(layer, {})
    kept = entries.get(key)
    if kept is None or kept[0] != versions:
        kept = entries[key] = (versions, make())
    return kept[1]


def linear(x: torch.Tensor, layer: nn.Linear, input_bits: int = ACTIVATION_BITS,
           input_limit: float = ACTIVATION_LIMIT) -> torch.Tensor:
    """``layer`` on activations (..., in) -> (..., out), exact, on the activation grid (its inputs first rounded to
    ``input_bits`` within ``input_limit``)."""
    x = quantize(x, input_bits, input_limit) if input_bits != ACTIVATION_BITS else bounded(x, input_limit)
    def make() -> tuple[torch.Tensor, torch.Tensor | None]:
        weight, _ = fixed_weight(layer.weight.to(x.dtype), input_limit, input_bits)
        return weight.t(), None if layer.bias is None else quantize(layer.bias.to(x.dtype), ACTIVATION_BITS)

    key = ("linear", x.dtype, x.device, input_bits, input_limit)
    weight, bias = on_grid(layer, key, make)
    if x.requires_grad or weight.requires_grad:
        y = rounded(torch.matmul(x, weight), ACTIVATION_BITS)
        return y if bias is None else y + bias
    weight_units, bias_units = on_grid(layer, (*key, "grid units"), lambda: _in_grid_units(weight, bias))
    return _sum_to_grid(torch.matmul(x, weight_units), bias_units)


def _in_grid_units(weight: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A layer's weights and bias times 2^ACTIVATION_BITS (powers of two: exact), so its sums come out in units of the
    activation grid (:func:`_sum_to_grid`)."""
    units = 2.0 ** ACTIVATION_BITS
    return weight * units, None if bias is None else bias * units


def _sum_to_grid(sums: torch.Tensor, bias_units: torch.Tensor | None) -> torch.Tensor:
    """A layer's sums in grid units (weights from :func:`_in_grid_units`), a temporary -> rounded to the activation
    grid plus the bias, in place: the values of rounding the sums and adding the bias (every step exact but the
    rounding), in one pass fewer."""
    sums.round_()
    if bias_units is not None:
        sums += bias_units
    return sums.mul_(2.0 ** -ACTIVATION_BITS)


def _no_cudnn() -> Any:
    # cuDNN may pick FFT or Winograd algorithms, which are not sums of the products; the native kernels are.
    return torch.backends.cudnn.flags(enabled=False)


def _tap_products_apply(x: torch.Tensor, weight: torch.Tensor, layer: nn.Conv2d) -> bool:
    """Whether :func:`_conv2d_by_tap_products` computes ``layer`` and is the faster way: a 'same' convolution (stride
    1, odd square kernel, no dilation or groups) of more than 2 input channels (on fewer, torch's im2col copies are
    small and its kernel is faster; on more, its float64 kernel is 1.2-3x slower on the CPU, measured on hat's
    layers)."""
    k = weight.shape[-1]
    return (weight.shape[-2] == k and k % 2 == 1 and tuple(layer.stride) == (1, 1) and
            tuple(layer.dilation) == (1, 1) and layer.groups == 1 and tuple(layer.padding) == (k // 2, k // 2) and
            layer.padding_mode == "zeros" and weight.shape[1] > 2 and x.ndim == 4)


def _conv2d_by_tap_products(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A 'same' 2D convolution (B, C, H, W) -> (B, O, H, W) as one matrix product per kernel tap, accumulated: the
    zero-padded images side by side as (C, B x padded points), each tap's weights (O, C) times them shifted by the
    tap's offset. Sums of the same grid products as F.conv2d (exact: the same bits), without its im2col copies.
    The output is a view (channels first in memory)."""
    batch, channels, height, width = x.shape
    outputs, k = weight.shape[0], weight.shape[-1]
    pad = k // 2
    padded = F.pad(x.transpose(0, 1), (pad, pad, pad, pad)).reshape(channels, -1)
    row, rows = width + 2 * pad, height + 2 * pad
    offsets = [(t // k) * row + t % k for t in range(k * k)]
    # the output at padded position p reads p + offset: for p inside an image that stays inside its padded image
    span = batch * rows * row - offsets[-1]
    out = torch.empty(outputs, batch * rows * row, dtype=x.dtype, device=x.device)
    y = out[:, :span]
    taps = weight.permute(2, 3, 0, 1).reshape(k * k, outputs, channels)
    torch.mm(taps[0], padded[:, :span], out=y)
    for t in range(1, k * k):
        y.addmm_(taps[t], padded[:, offsets[t]:offsets[t] + span])
    return out.view(outputs, batch, rows, row)[:, :, :height, :width].transpose(0, 1)


def conv(x: torch.Tensor, layer: nn.Conv2d | nn.Conv3d | nn.ConvTranspose2d | nn.ConvTranspose3d) -> torch.Tensor:
    """A (transposed) 2D or 3D convolution ``layer`` on activations (B, C, *spatial), exact, on the activation grid.

    Computed by :func:`_conv2d_by_tap_products` where that is faster, else by torch's float64 convolution, which
    on the CPU and (cuDNN off) on CUDA is im2col and a matrix product: both sums of grid products, exact in any order
    (tests/unit/neural/test_fixed_point.py compares them with an int64 reference and with each other)."""
    x = bounded(x)
    transposed = isinstance(layer, nn.ConvTranspose2d | nn.ConvTranspose3d)
    # A transposed convolution sums over the input channels and the kernel: the weight's axes 0 and 2.. .

    def make() -> tuple[torch.Tensor, torch.Tensor | None]:
        weight = layer.weight.to(x.dtype)
        weight, _ = fixed_weight(weight.transpose(0, 1) if transposed else weight, ACTIVATION_LIMIT)
        bias = None if layer.bias is None else quantize(layer.bias.to(x.dtype), ACTIVATION_BITS)
        return weight.transpose(0, 1) if transposed else weight, bias

    weight, bias = on_grid(layer, ("conv", x.dtype, x.device), make)
    tracked = x.requires_grad or weight.requires_grad  # (training: products into out= record no gradient)
    if not tracked:
        weight, bias = on_grid(layer, ("conv", x.dtype, x.device, "grid units"), lambda: _in_grid_units(weight, bias))
    with _no_cudnn():
        if isinstance(layer, nn.Conv2d) and not tracked and _tap_products_apply(x, weight, layer):
            y = _conv2d_by_tap_products(x, weight)
        elif isinstance(layer, nn.Conv2d):
            y = F.conv2d(x, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
        elif isinstance(layer, nn.Conv3d):
            y = F.conv3d(x, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
        elif isinstance(layer, nn.ConvTranspose2d):
            y = F.conv_transpose2d(x, weight, None, layer.stride, layer.padding, layer.output_padding,
                                   layer.groups, layer.dilation)
        else:
            y = F.conv_transpose3d(x, weight, None, layer.stride, layer.padding, layer.output_padding,
                                   layer.groups, layer.dilation)
    bias = None if bias is None else bias.reshape(1, -1, *([1] * (y.ndim - 2)))
    if not tracked:
        return _sum_to_grid(y, bias)
    y = rounded(y, ACTIVATION_BITS)
    return y if bias is None else y + bias


def scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` times a constant, rounded back to the activation grid."""
    return product_on_grid(x, factor)


def multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise product of two activations, rounded back to the activation grid (broadcasting)."""
    return product_on_grid(bounded(a), bounded(b))


def mean(x: torch.Tensor, dims: tuple[int, ...], arithmetic: FixedPointArithmetic) -> torch.Tensor:
    """Mean over ``dims`` (kept), on the activation grid: an exact sum, one division."""
    x = bounded(x)
    count = math.prod(x.shape[d] for d in dims)
    check_exact(ACTIVATION_LIMIT * 2.0 ** ACTIVATION_BITS, 1.0, count, "mean")
    return quotient_on_grid(x.sum(dim=dims, keepdim=True), divisor(float(count), x, arithmetic))


# ---- tables (Python decimal arithmetic: correctly rounded, the same on every machine) ----

def _to_table_int(value: decimal.Decimal) -> int:
    return int((value * (1 << TABLE_BITS)).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))


@functools.cache
def _exp_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """exp(-j * 2^-(LOGIT_BITS - EXP_HIGH_BITS)) for the high part (one more entry: 0, past EXP_SPAN) and
    exp(-(j + 1/2) * 2^-LOGIT_BITS) for the low part (the middle of each cell), as integers / 2^TABLE_BITS."""
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        high_step = decimal.Decimal(2) ** -(LOGIT_BITS - EXP_HIGH_BITS)
        low_step = decimal.Decimal(2) ** -LOGIT_BITS
        n_high = EXP_SPAN << (LOGIT_BITS - EXP_HIGH_BITS)
        high = tuple(_to_table_int((-j * high_step).exp()) for j in range(n_high)) + (0,)
        low = tuple(_to_table_int((-(j + decimal.Decimal("0.5")) * low_step).exp())
                    for j in range(1 << EXP_HIGH_BITS))
    return high, low


def _pi(ctx: decimal.Context) -> decimal.Decimal:
    """pi to the context's precision (the decimal module's documented series)."""
    with decimal.localcontext(ctx) as local:
        local.prec += 2
        three = decimal.Decimal(3)
        lasts, t, s, n, na, d, da = 0, three, 3, 1, 0, 0, 24
        while s != lasts:
            lasts = s
            n, na = n + na, na + 8
            d, da = d + da, da + 32
            t = (t * n) / d
            s += t
    return +s


@functools.cache
def _normal_cdf_table() -> tuple[int, ...]:
    """Phi(j * 2^-GELU_TABLE_BITS) for j = -GELU_SPAN * 2^GELU_TABLE_BITS ... +that, as integers / 2^TABLE_BITS
    (erf by its Taylor series at 60 digits; Phi(-x) = 1 - Phi(x) by construction)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        two_over_sqrt_pi = 2 / _pi(ctx).sqrt()
        root2 = decimal.Decimal(2).sqrt()
        step = decimal.Decimal(2) ** -GELU_TABLE_BITS
        tiny = decimal.Decimal(10) ** -40
        positive = []
        for j in range(GELU_SPAN * (1 << GELU_TABLE_BITS) + 1):
            z = j * step / root2
            term, total, n, z2 = z, z, 0, z * z
            while abs(term) > tiny:
                term = -term * z2 * (2 * n + 1) / ((n + 1) * (2 * n + 3))
                total += term
                n += 1
            positive.append(_to_table_int((1 + two_over_sqrt_pi * total) / 2))
    one = 1 << TABLE_BITS
    return tuple(one - v for v in reversed(positive[1:])) + tuple(positive)


def _exp_negative_table() -> torch.Tensor:
    """exp(-a) for every cell [j, j + 1) 2^-LOGIT_BITS of [0, EXP_SPAN) at its middle (and 0 past it), as multiples
    of 2^-TABLE_BITS: the rounded-down product of the high and the low table (one correctly rounded product each)."""
    high, low = (torch.tensor(t, dtype=torch.float64) for t in _exp_tables())
    index = torch.arange((EXP_SPAN << LOGIT_BITS) + 1)
    product = high[index >> EXP_HIGH_BITS] * low[index & ((1 << EXP_HIGH_BITS) - 1)]
    return torch.floor(product * 2.0 ** -TABLE_BITS) * 2.0 ** -TABLE_BITS


@functools.cache
def _table(name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if name.startswith("exp_negative_"):
        bits = int(name.rsplit("_", 1)[1])
        values = torch.floor(_exp_negative_table() * 2.0 ** bits) * 2.0 ** -bits
        # from the first 0 on every entry is 0 (exp decreases): the lookup clamps its index there instead
        values = values[:int(torch.count_nonzero(values)) + 1]
    else:
        values = torch.tensor(_normal_cdf_table(), dtype=torch.float64) * 2.0 ** -TABLE_BITS
    return values.to(device=device, dtype=dtype)


def _lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for a float tensor of whole numbers in [0, len(table)) (truncated to int32: a lookup by
    index_select reads and writes less than torch.take's int64 indices)."""
    return table.index_select(0, index.to(torch.int32).reshape(-1)).view(index.shape)


# ---- nonlinearities ----

def exp_negative(a: torch.Tensor, bits: int = TABLE_BITS, scaled: bool = False) -> torch.Tensor:
    """exp(-a) for a >= 0 (``scaled``: a x 2^LOGIT_BITS, a temporary it may overwrite) at the middle of a's cell
    of the logit grid, rounded down to a multiple of 2^-bits (bits <= TABLE_BITS; 0 from EXP_SPAN on): one table
    lookup at floor(a 2^LOGIT_BITS)."""
    index = a if scaled else a * 2.0 ** LOGIT_BITS
    table = _table(f"exp_negative_{bits}", a.dtype, a.device)
    return _lookup(table, index.clamp_(0, table.shape[0] - 1))


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """The logistic function on the activation grid, from exp(-|x|) on the logit grid."""
    e = exp_negative(x.detach().abs())
    upper = 1.0 / (1.0 + e)
    exact = rounded(torch.where(x.detach() >= 0, upper, 1.0 - upper), ACTIVATION_BITS)
    return _straight_through(exact, x, torch.sigmoid)


def _gelu_interpolated(v: torch.Tensor) -> torch.Tensor:
    """x Phi(x) for activations ``v`` (bounded, on the activation grid): Phi from the table every 2^-7 on [-8, 8],
    linear in between; one rounded product and the activation grid."""
    inside = v.clamp(-GELU_SPAN, GELU_SPAN) * 2.0 ** GELU_TABLE_BITS
    half = GELU_SPAN << GELU_TABLE_BITS  # the table's entries run from -half to +half
    cell = torch.floor(inside).clamp(max=half - 1)
    frac = inside - cell
    table = _table("normal_cdf", v.dtype, v.device)
    index = (cell + half).to(torch.int64)
    below, above = torch.take(table, index), torch.take(table, index + 1)
    phi = below + (above - below) * frac
    return rounded(v * phi, ACTIVATION_BITS)


@functools.cache
def _gelu_grid_table(device: torch.device) -> torch.Tensor:
    """:func:`_gelu_interpolated` of every activation-grid value in [-8, 8] (2^20 + 1 entries): the same bits, one
    lookup instead of the table arithmetic. Stored in float32, which holds them exactly (multiples of 2^-16 below 8
    in magnitude): half the memory a lookup reads."""
    grid = torch.arange(-GELU_SPAN << ACTIVATION_BITS, (GELU_SPAN << ACTIVATION_BITS) + 1, dtype=torch.float64)
    values = _gelu_interpolated(grid * 2.0 ** -ACTIVATION_BITS)
    single = values.to(torch.float32)
    if not torch.equal(single.to(torch.float64), values):
        raise FixedPointError("the GELU table does not fit float32")
    return single.to(device)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """x Phi(x) (exact GELU) on the activation grid (``x`` on it): Phi tabulated every 2^-7 on [-8, 8], linear in
    between (:func:`_gelu_interpolated`); in float64 inference read from a table of its values on the grid."""
    v = x.detach()
    if x.requires_grad or v.dtype != torch.float64:
        return _straight_through(_gelu_interpolated(bounded(v)), x, F.gelu)
    low, high = (float(t) for t in torch.aminmax(v)) if v.numel() else (0.0, 0.0)
    inside = low >= -GELU_SPAN and high <= GELU_SPAN
    if not inside:
        v = bounded(v)
    # the table's index (v + GELU_SPAN) 2^ACTIVATION_BITS in one pass: 2^ACTIVATION_BITS v is exact, so is the sum
    index = torch.add(torch.tensor(float(GELU_SPAN << ACTIVATION_BITS), dtype=v.dtype, device=v.device), v,
                      alpha=2.0 ** ACTIVATION_BITS)
    if not inside:
        index.clamp_(0, 2 * GELU_SPAN << ACTIVATION_BITS)
    out = _lookup(_gelu_grid_table(v.device), index).to(v.dtype).copysign_(v)  # x Phi(x) has x's sign, -0 too
    if not inside:
        outside = v.abs() > GELU_SPAN
        out[outside] = _gelu_interpolated(v[outside])
    return out


def leaky_relu(x: torch.Tensor, slope: float) -> torch.Tensor:
    """max(x, slope x) on the activation grid."""
    return torch.where(x >= 0, x, scale(x, slope))


def square_root(v: torch.Tensor, arithmetic: FixedPointArithmetic) -> torch.Tensor:
    """sqrt(v) of a float tensor v >= 0, correctly rounded on every device: on the CPU by NumPy (the processor's
    square-root instruction), where torch's kernel calls MKL's vdSqrt in builds with MKL (x86), 1 ulp from the
    correctly rounded root for about 1% of float64 inputs; CUDA's sqrt is correctly rounded. Where the arithmetic's
    roots are not correctly rounded (``fixed-point-1``) and with autograd: torch.sqrt."""
    if not arithmetic.correct_roots or v.requires_grad or v.device.type != "cpu":
        return torch.sqrt(v)
    return torch.from_numpy(np.sqrt(v.numpy()))


def layer_norm(x: torch.Tensor, norm: nn.LayerNorm, arithmetic: FixedPointArithmetic) -> torch.Tensor:
    """``norm`` over the last axis: an exact mean, the variance of the deviations on a coarser grid (exact sum), one
    sqrt and one division per token, then the affine map; on the activation grid."""
    # (float64 inference: x is on the activation grid already, so only its range needs checking)
    exact = x.dtype == torch.float64 and not x.requires_grad
    x = bounded(x) if exact else quantize(x, ACTIVATION_BITS, ACTIVATION_LIMIT)
    channels = x.shape[-1]
    centre = mean(x, (x.ndim - 1,), arithmetic)
    deviation = x - centre
    coarse = quantize(deviation, VARIANCE_BITS, VARIANCE_LIMIT)
    check_exact((VARIANCE_LIMIT * 2.0 ** VARIANCE_BITS) ** 2, 1.0, channels, "layer norm")
    variance = (coarse * coarse).sum(dim=-1, keepdim=True) / divisor(channels, coarse, arithmetic)
    normalised = quotient_on_grid(deviation, square_root(variance + norm.eps, arithmetic), ACTIVATION_BITS,
                                  ACTIVATION_LIMIT)
    y = _straight_through(normalised, x, functools.partial(F.layer_norm, normalized_shape=(channels,), eps=norm.eps))

    def make() -> tuple[torch.Tensor | None, torch.Tensor | None]:
        gain = None if norm.weight is None else fixed_weight(norm.weight.to(y.dtype)[:, None], ACTIVATION_LIMIT)[0]
        return (None if gain is None else gain[:, 0],
                None if norm.bias is None else quantize(norm.bias.to(y.dtype), ACTIVATION_BITS))

    gain, bias = on_grid(norm, ("layer norm", y.dtype, y.device), make)
    if gain is not None:
        y = product_on_grid(y, gain)
    if bias is not None:
        y = y + bias
    return y


def key_ints(k: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
    """Keys (or queries times ``factor``), any shape and strides -> on the QK grid as integers, contiguous (the
    layout the logits' batched product reads without a copy)."""
    grid = 2.0 ** QK_BITS
    out = torch.mul(k.detach(), factor * grid, out=torch.empty(k.shape, dtype=k.dtype, device=k.device))
    return out.round_().clamp_(-QK_LIMIT * grid, QK_LIMIT * grid)


def query_ints(q: torch.Tensor, factor: float) -> torch.Tensor:
    """Queries (N, h, L, d), any strides -> :func:`key_ints` of factor q times 2^(LOGIT_BITS - 2 QK_BITS) (a power of
    two, exact: the logits then come out in the table's units of 2^-LOGIT_BITS)."""
    return key_ints(q, factor).mul_(2.0 ** (LOGIT_BITS - 2 * QK_BITS))


def values_with_ones(v: torch.Tensor) -> torch.Tensor:
    """Values (..., d), any strides -> (..., d + 1): v within VALUE_LIMIT and a column of ones beside (the weighted
    sum of the values and the sum of the weights come out of one product)."""
    values_and_ones = v.new_ones(*v.shape[:-1], v.shape[-1] + 1)
    torch.clamp(v.detach(), -VALUE_LIMIT, VALUE_LIMIT, out=values_and_ones[..., :-1])
    return values_and_ones


def attention_on_grid(q_ints: torch.Tensor, k_ints: torch.Tensor, values_and_ones: torch.Tensor,
                      bias: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`attention` from its prepared operands: q_ints (N, h, L, d) (:func:`query_ints`), k_ints (N, h, S, d)
    (:func:`key_ints`), values_and_ones (N, h, S, d + 1) (:func:`values_with_ones`), bias (h, L, S), mask (nW, L, S)
    -> (N, h, L, d) on the activation grid (no gradient)."""
    offset = torch.round(bias.detach().to(q_ints.dtype) * 2.0 ** LOGIT_BITS)  # bias and mask on the logit grid
    if mask is not None:
        offset = offset[None] + torch.round(mask.to(q_ints.dtype) * 2.0 ** LOGIT_BITS)[:, None]
    check_exact(QK_LIMIT * 2.0 ** QK_BITS, QK_LIMIT * 2.0 ** QK_BITS, q_ints.shape[-1], "attention logits")
    # the offsets first and the products added to them (one pass over the logits fewer than adding them after)
    logits = torch.empty(*q_ints.shape[:-1], k_ints.shape[-2], dtype=q_ints.dtype, device=q_ints.device)
    logits.view(-1, *offset.shape).copy_(offset[None])
    flat = logits.view(-1, *logits.shape[-2:])
    torch.baddbmm(flat, q_ints.reshape(-1, *q_ints.shape[-2:]), k_ints.reshape(-1, *k_ints.shape[-2:]).transpose(1, 2),
                  out=flat)
    keys = k_ints.shape[-2]
    value_ints = VALUE_LIMIT * 2.0 ** ACTIVATION_BITS
    weight_bits = min(TABLE_BITS, math.floor(math.log2(EXACT_LIMIT / (value_ints * keys))) - 1)
    gaps = torch.sub(logits.amax(dim=-1, keepdim=True), logits, out=logits)
    weights = exp_negative(gaps, weight_bits, scaled=True)
    check_exact(2.0 ** weight_bits, value_ints, keys, "attention values")
    sums = weights @ values_and_ones
    return quotient_on_grid(sums[..., :-1], sums[..., -1:])


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, factor: float, bias: torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(factor q k^T + bias (+ mask)) v: q (N, h, L, d), k and v (N, h, S, d), bias (h, L, S), mask (nW, L, S)
    for N = batch x nW windows -> (N, h, L, d), on the activation grid.

    The logits are exact multiples of 2^-2 QK_BITS (factor q and k on the QK grid, bias and mask on the logit
    grid), held in units of 2^-LOGIT_BITS; exp(max - logit) comes from the table (:func:`exp_negative`), rounded down
    to 2^-e (e as fine as keeps the weighted sum of the values exact); the output is that sum divided by the sum of
    the weights (:func:`attention_on_grid`)."""
    exact = attention_on_grid(query_ints(q, factor), key_ints(k), values_with_ones(v), bias, mask)
    if not any(t.requires_grad for t in (q, k, v)):
        return exact
    reference = (q * factor) @ k.transpose(-2, -1) + bias.to(q.dtype)[None]
    if mask is not None:
        reference = (reference.view(-1, mask.shape[0], *reference.shape[1:]) + mask.to(q.dtype)[None, :, None]
                     ).view(reference.shape)
    reference = torch.softmax(reference, dim=-1) @ v
    return reference + (exact - reference).detach()


# ---- networks ----

def _mlp(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's Mlp (fc1, GELU, fc2; dropout and norm off at inference)."""
    if not isinstance(getattr(mlp, "act", None), nn.GELU) or not isinstance(getattr(mlp, "norm", None), nn.Identity):
        raise FixedPointError("only an Mlp with GELU and no norm has a fixed-point form")
    return linear(gelu(linear(x, mlp.fc1)), mlp.fc2)


def _relative_bias(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return table[index.reshape(-1)].reshape(*index.shape, -1).permute(2, 0, 1)


def _window_attention(attn: nn.Module, windows: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    q, k, v = rearrange(linear(windows, attn.qkv), "n l (three h d) -> three n h l d", three=3, h=attn.num_heads)
    out = attention(q, k, v, attn.scale, _relative_bias(attn.bias_table, attn.position_index), mask)
    return linear(rearrange(out, "n h l d -> n l (h d)"), attn.proj)


def _channel_attention_block(cab: nn.Module, x: torch.Tensor, arithmetic: FixedPointArithmetic) -> torch.Tensor:
    first, act, second, channel_attention = cab.body
    if not isinstance(act, nn.GELU):
        raise FixedPointError("the channel attention block's activation must be GELU")
    y = conv(gelu(conv(x, first)), second)
    pool, squeeze, relu, excite, gate = channel_attention.gate
    if not (isinstance(pool, nn.AdaptiveAvgPool2d) and isinstance(relu, nn.ReLU) and isinstance(gate, nn.Sigmoid)):
        raise FixedPointError("the channel attention must be pool, conv, ReLU, conv, sigmoid")
    g = sigmoid(conv(torch.relu(conv(mean(y, (2, 3), arithmetic), squeeze)), excite))
    return multiply(y, g)


def _hybrid_attention_block(block: nn.Module, x: torch.Tensor, size: tuple[int, int],
                            arithmetic: FixedPointArithmetic) -> torch.Tensor:
    from srnsz.networks.hat import shifted_window_mask, window_partition, window_reverse

    height, width = size
    ws, shift = block.window_size, block.shift
    shortcut = x
    x = layer_norm(x, block.norm1, arithmetic).view(x.shape[0], height, width, -1)
    conv_x = rearrange(_channel_attention_block(block.conv_block, rearrange(x, "b h w c -> b c h w"), arithmetic),
                       "b c h w -> b (h w) c")
    mask = None
    if shift:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        mask = shifted_window_mask(height, width, ws, shift, x.device)
    windows = window_partition(x, ws).flatten(1, 2)
    attn = _window_attention(block.attn, windows, mask).view(-1, ws, ws, x.shape[-1])
    x = window_reverse(attn, ws, height, width)
    if shift:
        x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
    x = shortcut + x.flatten(1, 2) + scale(conv_x, block.conv_scale)
    return x + _mlp(block.mlp, layer_norm(x, block.norm2, arithmetic))


def _overlapping_cross_attention_block(block: nn.Module, x: torch.Tensor, size: tuple[int, int],
                                       arithmetic: FixedPointArithmetic) -> torch.Tensor:
    from srnsz.networks.hat import overlapping_window_view, overlapping_windows, window_partition, window_reverse

    height, width = size
    batch, _, channels = x.shape
    ws, ows, heads = block.window_size, block.overlap_size, block.num_heads
    shortcut = x
    qkv = linear(layer_norm(x, block.norm1, arithmetic), block.qkv).view(batch, height, width, 3, channels
                                                                        ).permute(3, 0, 4, 1, 2)
    bias = _relative_bias(block.bias_table, block.position_index)
    if qkv.requires_grad:
        q = rearrange(window_partition(qkv[0].permute(0, 2, 3, 1), ws).flatten(1, 2), "n l (h d) -> n h l d", h=heads)
        k, v = (rearrange(overlapping_windows(t, ws, ows), "n l (h d) -> n h l d", h=heads) for t in (qkv[1], qkv[2]))
        out = attention(q, k, v, block.scale, bias)
    else:
        # The keys rounded before the overlapping windows repeat them (ows^2 / ws^2 times fewer values; the zero
        # padding stays zero), the values clamped as they are gathered: one copy each into the layout the products read.
        q_ints = query_ints(rearrange(qkv[0], "b (h d) (y p) (x q) -> b y x h p q d", h=heads, p=ws, q=ws),
                            block.scale)
        k_ints = rearrange(overlapping_window_view(key_ints(qkv[1]), ws, ows), "b (h d) y x p q -> (b y x) h (p q) d",
                           h=heads)
        values_and_ones = values_with_ones(rearrange(overlapping_window_view(qkv[2], ws, ows),
                                                     "b (h d) y x p q -> b y x h p q d", h=heads))
        out = attention_on_grid(q_ints.view(-1, heads, ws * ws, q_ints.shape[-1]), k_ints,
                                values_and_ones.view(*k_ints.shape[:-1], -1), bias)
    out = rearrange(out, "n h l d -> n l (h d)").view(-1, ws, ws, channels)
    x = linear(window_reverse(out, ws, height, width).flatten(1, 2), block.proj) + shortcut
    return x + _mlp(block.mlp, layer_norm(x, block.norm2, arithmetic))


def _residual_group(group: nn.Module, x: torch.Tensor, size: tuple[int, int], arithmetic: FixedPointArithmetic
                    ) -> torch.Tensor:
    shortcut = x
    for block in group.blocks:
        x = _hybrid_attention_block(block, x, size, arithmetic)
    x = _overlapping_cross_attention_block(group.overlap_attn, x, size, arithmetic)
    x = rearrange(x, "b (h w) c -> b c h w", h=size[0], w=size[1])
    return rearrange(conv(x, group.conv), "b c h w -> b (h w) c") + shortcut


@functools.lru_cache(maxsize=4096)
def bound_level(bound: float) -> float:
    """The bound channel's value (networks.hat.bound_feature) for ``bound`` = eb / span, by decimal arithmetic:
    log10 correctly rounded, then the activation grid."""
    from srnsz.networks.hat import BOUND_FLOOR

    with decimal.localcontext() as ctx:
        ctx.prec = 40
        clipped = min(max(decimal.Decimal(bound), decimal.Decimal(BOUND_FLOOR)), decimal.Decimal(1))
        level = clipped.log10() / -decimal.Decimal(BOUND_FLOOR).log10() + 1
        return float((level * (1 << ACTIVATION_BITS)).to_integral_value(decimal.ROUND_HALF_EVEN)) \
            / (1 << ACTIVATION_BITS)


def kernels_off_ieee(device: str | torch.device = "cpu", size: int = 50_000, seed: int = 11) -> list[str]:
    """The IEEE steps this module relies on (division by a tensor and by a number on the device, reciprocal, product,
    sum, round, floor, :func:`square_root`) run on ``device`` over random float64 values of many binades and compared
    with NumPy's (correctly rounded): the names of those whose bits differ; empty where the device computes the
    arithmetic."""
    rng = np.random.default_rng(seed)
    a_np, b_np = (rng.standard_normal(size) * np.exp(rng.uniform(-20, 20, size)) for _ in range(2))
    a, b = torch.from_numpy(a_np).to(device), torch.from_numpy(b_np).to(device)
    ties_np = np.concatenate([(np.arange(-64, 64) + 0.5) * 2.0 ** k for k in range(0, 40, 3)])
    ties = torch.from_numpy(ties_np).to(device)
    number = 3.0 * 2.0 ** -16
    checks = {
        "a / b": (a / b, a_np / b_np),
        "a / on_device(c)": (a / on_device(number, a), a_np / number),
        "quotient_on_grid": (quotient_on_grid(a, b), np.round(a_np / b_np * 2.0 ** 16) * 2.0 ** -16),
        "1 / b": (1.0 / b, 1.0 / b_np),
        "a * b": (a * b, a_np * b_np),
        "a * 0.01": (a * 0.01, a_np * 0.01),
        "a + b": (a + b, a_np + b_np),
        # ties (half to even) over many binades, and random values
        "round": (torch.round(torch.cat([a * 1e3, ties])), np.round(np.concatenate([a_np * 1e3, ties_np]))),
        "floor": (torch.floor(a), np.floor(a_np)),
        "square_root": (square_root(a.abs(), arithmetic_named(ARITHMETIC)), np.sqrt(np.abs(a_np))),
    }
    return [name for name, (got, want) in checks.items() if not np.array_equal(got.cpu().numpy(), want)]


def arithmetic_named(name: str) -> FixedPointArithmetic:
    """The fixed-point arithmetic a stream names (srnsz.neural.runtime.FIXED_POINT_ARITHMETICS), else
    FixedPointError."""
    if name not in FIXED_POINT_ARITHMETICS:
        raise FixedPointError(f"unknown fixed-point arithmetic {name!r} (this module computes "
                              f"{', '.join(map(repr, FIXED_POINT_ARITHMETICS))})")
    return FIXED_POINT_ARITHMETICS[name]


def hat_forward(model: nn.Module, x: torch.Tensor, levels: torch.Tensor | None = None,
                context: torch.Tensor | None = None, *, arithmetic: str) -> torch.Tensor:
    """networks.hat.HAT's forward in fixed point: (B, 1, h, w) in [0, 1] -> (B, 1, 2h, 2w) on a 2^-24 grid.

    levels: (B,) the bound channel's values (:func:`bound_level`; with autograd, ``bound_feature`` of the bound);
    context: (B, 2, h, w) the coarse planes beside each input (networks that take them); arithmetic: the stream's
    (:data:`ARITHMETIC` for a new one)."""
    from srnsz.networks.upsample import cubic_upsample2x

    spec = arithmetic_named(arithmetic)
    height, width = x.shape[-2:]
    ws = model.window_size
    pad_h, pad_w = (-height) % ws, (-width) % ws
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    x = quantize(x, ACTIVATION_BITS, ACTIVATION_LIMIT)
    padded = F.pad(x - 0.5, (0, pad_w, 0, pad_h), mode=mode)
    if model.bound_channel:
        if levels is None:
            raise ValueError("this network takes the input's error bound: call it with levels")
        level = quantize(levels.to(x.dtype).reshape(-1), ACTIVATION_BITS)[:, None, None, None]
        padded = torch.cat([padded, level.expand_as(padded)], dim=1)
    if model.context_planes:
        if context is None or context.shape[1] != 2 or context.shape[2:] != x.shape[2:]:
            raise ValueError("this network takes the coarse planes beside its input: context (B, 2, h, w)")
        context = quantize(context, ACTIVATION_BITS, ACTIVATION_LIMIT)
        padded = torch.cat([padded, F.pad(context - 0.5, (0, pad_w, 0, pad_h), mode=mode)], dim=1)
    size = padded.shape[-2:]
    shallow = conv(padded, model.conv_first)
    tokens = rearrange(shallow, "b c h w -> b (h w) c")
    for group in model.groups:
        tokens = _residual_group(group, tokens, size, spec)
    deep = rearrange(layer_norm(tokens, model.norm, spec), "b (h w) c -> b c h w", h=size[0], w=size[1])
    first, act, second, shuffle, last = model.upsample
    y = conv(deep, model.conv_after_body) + shallow
    y = conv(F.pixel_shuffle(conv(leaky_relu(conv(y, first), act.negative_slope), second), shuffle.upscale_factor),
             last)
    out = y[..., : 2 * height, : 2 * width]
    if not model.cubic_skip:
        return out + 0.5
    with _no_cudnn():  # the cubic spline of grid values is exact: its coefficients are multiples of 1/16
        return out + cubic_upsample2x(x)


def _gdn(gdn: nn.Module, x: torch.Tensor, arithmetic: FixedPointArithmetic) -> torch.Tensor:
    """networks.autoencoder.GDN in fixed point: squares on a coarser grid, an exact channel mix, one sqrt and one
    division or product per value."""
    x = quantize(x, ACTIVATION_BITS, ACTIVATION_LIMIT)
    beta_root, gamma_root = gdn.beta_root.to(x.dtype), gdn.gamma_root.to(x.dtype)
    beta = beta_root * beta_root + gdn.beta_min
    gamma = gamma_root * gamma_root
    squares = rounded(x * x, SQUARE_BITS, SQUARE_LIMIT)
    mix, _ = fixed_weight(gamma, SQUARE_LIMIT, SQUARE_BITS)
    spatial = x.ndim - 2
    norm = torch.einsum("ij,bj...->bi...", mix.to(x.dtype), squares)
    norm = rounded(norm, SQUARE_BITS) + quantize(beta, SQUARE_BITS).view(1, -1, *([1] * spatial))
    root = square_root(norm, arithmetic)
    return rounded(x * root if gdn.inverse else x / root, ACTIVATION_BITS)


def autoencoder_decode(model: nn.Module, latent: torch.Tensor, *, arithmetic: str) -> torch.Tensor:
    """networks.autoencoder.BlockAutoencoder.decode in fixed point: (B, latent_dim) -> (B, 1, *block); arithmetic: the
    stream's (:data:`ARITHMETIC` for a new one)."""
    from srnsz.networks.autoencoder import GDN

    spec = arithmetic_named(arithmetic)
    x = linear(latent, model.from_latent, LATENT_BITS, LATENT_LIMIT)
    x = x.view(-1, model.channels, *([2] * model.spatial_dims))
    for layer in model.decoder_convs:
        x = _gdn(layer, x, spec) if isinstance(layer, GDN) else conv(x, layer)
    return x


# One fixed-point form per network family (networks.registry): what runs a network portably.
FORWARDS: dict[str, Callable[..., torch.Tensor]] = {"hat": hat_forward, "autoencoder": autoencoder_decode}

__all__ = ["ARITHMETIC", "FORWARDS", "FixedPointError", "attention", "autoencoder_decode", "bound_level", "conv",
           "bounded", "exp_negative", "fixed_weight", "gelu", "hat_forward", "kernels_off_ieee", "layer_norm",
           "linear", "arithmetic_named", "divisor", "mean", "on_device", "quantize", "sigmoid", "square_root"]
