"""Hybrid Attention Transformer (HAT) for x2 super-resolution of one-channel scientific fields.

Chen et al., "Activating More Pixels in Image Super-Resolution Transformer" (CVPR 2023). Structure as in the paper:
shallow conv -> residual hybrid attention groups (RHAG: hybrid attention blocks = (shifted) window self-attention
plus a channel-attention conv block, then one overlapping cross-attention block, then a conv) -> conv -> pixel-shuffle
x2 upsampler. One input and one output channel; inputs are fields normalised to [0, 1].

With `cubic_skip=True` the network output is added to the cubic spline upsampling of its input, so it learns a
correction to the interpolation the compressor would otherwise use (a zero correction reproduces that baseline).

With `bound_channel=True` the network also takes the error bound of its input: the compressor's coarse lattice is
reconstructed within eb, so the network is told eb relative to the input's normalisation span (a constant second
channel, :func:`bound_feature`) and can learn to denoise as much as that bound calls for.

With `context_planes=True` the network also takes the two coarse planes beside its input in a 3D field (the previous
and next plane of the same coarse lattice, scaled like the input; the input itself where there is none, and in 2D):
the third dimension that a slice-by-slice upsampling would not see.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn

from srnsz.networks.registry import register_model
from srnsz.networks.upsample import cubic_upsample2x

# eb / span from 1e-6 (or 0: lossless input) to 1 maps to the channel value 0..1 on a log scale.
BOUND_FLOOR = 1e-6


def bound_feature(bound: torch.Tensor) -> torch.Tensor:
    """The bound channel's value for ``bound`` = eb / span of the normalised input, (B,) -> (B,) in [0, 1]."""
    return torch.log10(bound.clamp(BOUND_FLOOR, 1.0)) / -torch.log10(bound.new_tensor(BOUND_FLOOR)) + 1.0


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/ws * W/ws, ws, ws, C)."""
    return rearrange(x, "b (h p) (w q) c -> (b h w) p q c", p=window_size, q=window_size)


def window_reverse(windows: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """(B * H/ws * W/ws, ws, ws, C) -> (B, H, W, C)."""
    return rearrange(windows, "(b h w) p q c -> b (h p) (w q) c", h=height // window_size, w=width // window_size)


def relative_position_index(window_size: int) -> torch.Tensor:
    """(ws*ws, ws*ws) index into a ((2ws-1)^2)-row bias table, as in Swin."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
    return rel[..., 0] * (2 * window_size - 1) + rel[..., 1]


def overlap_relative_position_index(window_size: int, overlap_size: int) -> torch.Tensor:
    """(ws*ws, ows*ows) index for queries in a window and keys in its enlarged overlapping window."""
    q = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")).flatten(1)
    k = torch.stack(torch.meshgrid(torch.arange(overlap_size), torch.arange(overlap_size), indexing="ij")).flatten(1)
    k = k - (overlap_size - window_size) // 2
    rel = (k[:, None, :] - q[:, :, None]).permute(1, 2, 0) + (window_size - 1)
    span = window_size + overlap_size - 1
    return rel[..., 0] * span + rel[..., 1]


@functools.lru_cache(maxsize=32)
def shifted_window_mask(height: int, width: int, window_size: int, shift: int, device: torch.device) -> torch.Tensor:
    """(nW, ws*ws, ws*ws) additive mask keeping shifted-window attention inside contiguous regions (a constant per
    shape: cached, every shifted block of every batch of the same size uses it read-only; only ever added, so one
    made under inference_mode also serves training)."""
    regions = torch.zeros(1, height, width, 1, device=device)
    cuts = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            regions[:, hs, ws, :] = label
            label += 1
    windows = window_partition(regions, window_size).flatten(1)
    diff = windows[:, None, :] - windows[:, :, None]
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


def overlapping_window_view(x: torch.Tensor, window_size: int, overlap_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H/ws, W/ws, ows, ows): the enlarged window around each window, zero-padded at the
    edges, as a view of one padded copy of ``x``."""
    pad = (overlap_size - window_size) // 2
    return F.pad(x, (pad, pad, pad, pad)).unfold(2, overlap_size, window_size).unfold(3, overlap_size, window_size)


def overlapping_windows(x: torch.Tensor, window_size: int, overlap_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * H/ws * W/ws, ows*ows, C): the enlarged window around each window, zero-padded at the
    edges (the values nn.Unfold gives, gathered in one copy instead of two)."""
    return rearrange(overlapping_window_view(x, window_size, overlap_size), "b c h w p q -> (b h w) (p q) c")


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window with a learned relative position bias. (N, L, C) -> (N, L, C)."""

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("position_index", relative_position_index(window_size), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        trunc_normal_(self.bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "n l (three h d) -> three n h l d", three=3, h=self.num_heads)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.bias_table[self.position_index.reshape(-1)].reshape(*self.position_index.shape, -1)
        # In place: the product is not needed for its own gradient, and a copy per add costs a pass over memory.
        attn += bias.permute(2, 0, 1)[None]
        if mask is not None:
            attn.view(-1, mask.shape[0], *attn.shape[1:]).add_(mask[None, :, None])
        out = attn.softmax(dim=-1) @ v
        return self.proj(rearrange(out, "n h l d -> n l (h d)"))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel gate (RCAN). (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, num_feat: int, squeeze_factor: int) -> None:
        super().__init__()
        hidden = max(1, num_feat // squeeze_factor)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(num_feat, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, num_feat, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class ChannelAttentionBlock(nn.Module):
    """CAB: conv, GELU, conv, channel attention. (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, num_feat: int, compress_ratio: int, squeeze_factor: int) -> None:
        super().__init__()
        hidden = max(1, num_feat // compress_ratio)
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, num_feat, 3, padding=1),
            ChannelAttention(num_feat, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class HybridAttentionBlock(nn.Module):
    """HAB: (shifted) window attention in parallel with a scaled CAB, then an MLP. (B, L, C) -> (B, L, C)."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int, compress_ratio: int,
                 squeeze_factor: int, conv_scale: float, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.window_size, self.shift, self.conv_scale = window_size, shift, conv_scale
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.conv_block = ChannelAttentionBlock(dim, compress_ratio, squeeze_factor)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        height, width = size
        shortcut = x
        x = self.norm1(x).view(x.shape[0], height, width, -1)
        conv_x = rearrange(self.conv_block(rearrange(x, "b h w c -> b c h w")), "b c h w -> b (h w) c")
        mask = None
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
            mask = shifted_window_mask(height, width, self.window_size, self.shift, x.device)
        windows = window_partition(x, self.window_size).flatten(1, 2)
        attn = self.attn(windows, mask).view(-1, self.window_size, self.window_size, x.shape[-1])
        x = window_reverse(attn, self.window_size, height, width)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + self.drop_path(x.flatten(1, 2)) + conv_x * self.conv_scale
        return x + self.drop_path(self.mlp(self.norm2(x)))


class OverlappingCrossAttentionBlock(nn.Module):
    """OCAB: queries from each window attend to keys/values of an enlarged, overlapping window. (B, L, C) -> same."""

    def __init__(self, dim: int, num_heads: int, window_size: int, overlap_ratio: float, mlp_ratio: float) -> None:
        super().__init__()
        self.dim, self.num_heads, self.window_size = dim, num_heads, window_size
        self.overlap_size = int(window_size * overlap_ratio) + window_size
        self.scale = (dim // num_heads) ** -0.5
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        span = window_size + self.overlap_size - 1
        self.bias_table = nn.Parameter(torch.zeros(span * span, num_heads))
        self.register_buffer("position_index", overlap_relative_position_index(window_size, self.overlap_size),
                             persistent=False)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)
        trunc_normal_(self.bias_table, std=0.02)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        height, width = size
        batch, _, channels = x.shape
        ws, ows = self.window_size, self.overlap_size
        shortcut = x
        qkv = self.qkv(self.norm1(x)).view(batch, height, width, 3, channels).permute(3, 0, 4, 1, 2)
        q = window_partition(qkv[0].permute(0, 2, 3, 1), ws).flatten(1, 2)
        q = rearrange(q, "n l (h d) -> n h l d", h=self.num_heads)
        k, v = (rearrange(overlapping_windows(t, ws, ows), "n l (h d) -> n h l d", h=self.num_heads)
                for t in (qkv[1], qkv[2]))
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.bias_table[self.position_index.reshape(-1)].reshape(*self.position_index.shape, -1)
        attn += bias.permute(2, 0, 1)[None]
        attn = attn.softmax(dim=-1)
        out = rearrange(attn @ v, "n h l d -> n l (h d)").view(-1, ws, ws, channels)
        x = self.proj(window_reverse(out, ws, height, width).flatten(1, 2)) + shortcut
        return x + self.mlp(self.norm2(x))


class ResidualHybridAttentionGroup(nn.Module):
    """RHAG: `depth` HABs (shift alternating), one OCAB, a 3x3 conv, and a residual. (B, L, C) -> (B, L, C)."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, compress_ratio: int,
                 squeeze_factor: int, conv_scale: float, overlap_ratio: float, mlp_ratio: float,
                 drop_path: list[float]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            HybridAttentionBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, compress_ratio,
                                 squeeze_factor, conv_scale, mlp_ratio, drop_path[i])
            for i in range(depth)
        )
        self.overlap_attn = OverlappingCrossAttentionBlock(dim, num_heads, window_size, overlap_ratio, mlp_ratio)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        shortcut = x
        for block in self.blocks:
            x = block(x, size)
        x = self.overlap_attn(x, size)
        x = rearrange(x, "b (h w) c -> b c h w", h=size[0], w=size[1])
        return rearrange(self.conv(x), "b c h w -> b (h w) c") + shortcut


class HAT(nn.Module):
    """x2 super-resolution: (B, 1, h, w) in [0, 1] -> (B, 1, 2h, 2w). Any h, w (padded to the window inside).

    bound_channel: forward also takes ``bound`` (B,), the input's error bound relative to its normalisation span.
    context_planes: forward also takes ``context`` (B, 2, h, w), the coarse planes before and after the input.
    """

    def __init__(self, embed_dim: int = 48, depths: tuple[int, ...] = (2, 2), num_heads: tuple[int, ...] = (4, 4),
                 window_size: int = 8, compress_ratio: int = 3, squeeze_factor: int = 16, conv_scale: float = 0.01,
                 overlap_ratio: float = 0.5, mlp_ratio: float = 2.0, num_feat: int = 32, drop_path_rate: float = 0.0,
                 cubic_skip: bool = True, bound_channel: bool = False, context_planes: bool = False) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {depths} and num_heads {num_heads} must have the same length")
        self.window_size, self.cubic_skip, self.bound_channel = window_size, cubic_skip, bound_channel
        self.context_planes = context_planes
        # Input channels: the plane, then the bound, then the context planes (each added after the others, so
        # widening a trained network appends zero weights and keeps its predictions).
        self.conv_first = nn.Conv2d(1 + int(bound_channel) + 2 * int(context_planes), embed_dim, 3, padding=1)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.groups = nn.ModuleList(
            ResidualHybridAttentionGroup(embed_dim, d, h, window_size, compress_ratio, squeeze_factor, conv_scale,
                                         overlap_ratio, mlp_ratio, rates[s:s + d])
            for d, h, s in zip(depths, num_heads, starts)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        self.upsample = nn.Sequential(
            nn.Conv2d(embed_dim, num_feat, 3, padding=1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(num_feat, 4 * num_feat, 3, padding=1), nn.PixelShuffle(2),
            nn.Conv2d(num_feat, 1, 3, padding=1),
        )
        self.apply(self._init_weights)
        if cubic_skip:
            # Start as the cubic baseline: the correction branch outputs zero until it learns something better.
            nn.init.zeros_(self.upsample[-1].weight)
            nn.init.zeros_(self.upsample[-1].bias)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor, bound: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        height, width = x.shape[-2:]
        ws = self.window_size
        pad_h, pad_w = (-height) % ws, (-width) % ws
        # Reflection needs the pad to be smaller than the side; replicate covers tiny inputs.
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        padded = F.pad(x - 0.5, (0, pad_w, 0, pad_h), mode=mode)
        if self.bound_channel:
            if bound is None:
                raise ValueError("this network takes the input's error bound: call it as model(x, bound)")
            level = bound_feature(bound.to(x.dtype).reshape(-1))[:, None, None, None]
            padded = torch.cat([padded, level.expand_as(padded)], dim=1)
        if self.context_planes:
            if context is None or context.shape[1] != 2 or context.shape[2:] != x.shape[2:]:
                raise ValueError("this network takes the coarse planes beside its input: model(x, bound, context) "
                                 "with context (B, 2, h, w)")
            padded = torch.cat([padded, F.pad(context - 0.5, (0, pad_w, 0, pad_h), mode=mode)], dim=1)
        size = padded.shape[-2:]
        shallow = self.conv_first(padded)
        tokens = rearrange(shallow, "b c h w -> b (h w) c")
        for group in self.groups:
            tokens = group(tokens, size)
        deep = rearrange(self.norm(tokens), "b (h w) c -> b c h w", h=size[0], w=size[1])
        out = self.upsample(self.conv_after_body(deep) + shallow)[..., : 2 * height, : 2 * width]
        return out + cubic_upsample2x(x) if self.cubic_skip else out + 0.5


def with_bound_channel(model: HAT, kwargs: dict) -> HAT:
    """A copy of ``model`` (built with registry ``kwargs``) that also takes the bound channel, its weights zero
    there: it predicts exactly as ``model`` until fine-tuning teaches it to use the bound."""
    return _with_zero_inputs(model, kwargs, "bound_channel", channels=1, position=1)


def with_context_planes(model: HAT, kwargs: dict) -> HAT:
    """A copy of ``model`` (built with registry ``kwargs``) that also takes the context planes, its weights zero
    there: it predicts exactly as ``model`` until training teaches it to use them."""
    return _with_zero_inputs(model, kwargs, "context_planes", channels=2, position=1 + int(model.bound_channel))


def _with_zero_inputs(model: HAT, kwargs: dict, switch: str, channels: int, position: int) -> HAT:
    """``model`` rebuilt with ``switch`` on: ``channels`` more input channels at ``position`` of conv_first (the
    order forward concatenates them in), their weights zero; ``model`` itself if the switch is already on."""
    if getattr(model, switch):
        return model
    widened = _hat(**{**kwargs, switch: True})
    state = model.state_dict()
    weight = state["conv_first.weight"]
    zeros = weight.new_zeros(weight.shape[0], channels, *weight.shape[2:])
    state["conv_first.weight"] = torch.cat([weight[:, :position], zeros, weight[:, position:]], dim=1)
    widened.load_state_dict(state, strict=True)
    return widened.to(weight.device).train(model.training)


def _hat(**kwargs: object) -> HAT:
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return HAT(**kwargs)


# Paper sizes (HAT-S and HAT, x2) and CPU-sized variants. Window 16 in the paper; 8 keeps tiny inputs cheap.
register_model("hat_tiny", "hat", _hat, embed_dim=48, depths=(2, 2), num_heads=(4, 4), window_size=8,
               compress_ratio=3, squeeze_factor=16, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0, num_feat=32,
               drop_path_rate=0.0, cubic_skip=True, bound_channel=False, context_planes=False)
# A quarter of hat_tiny's inference time per point (one group of two blocks, width 32, window 4): for where speed
# matters more than the last few percent of ratio (benchmarks/finetune_eval.py figures in docs/benchmarks/index.md).
register_model("hat_nano", "hat", _hat, embed_dim=32, depths=(2,), num_heads=(4,), window_size=4,
               compress_ratio=3, squeeze_factor=16, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0, num_feat=16,
               drop_path_rate=0.0, cubic_skip=True, bound_channel=False, context_planes=False)
# A third of hat_nano's inference time per point (width 16, 8 features before the upsampling): trained from scratch on
# the user's own run (experiment=pico) where speed matters more than the last few percent of ratio (docs/benchmarks).
register_model("hat_pico", "hat", _hat, embed_dim=16, depths=(2,), num_heads=(2,), window_size=4,
               compress_ratio=3, squeeze_factor=16, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0, num_feat=8,
               drop_path_rate=0.0, cubic_skip=True, bound_channel=False, context_planes=False)
# Half of hat_pico's multiply-adds per point (one block instead of two, width 12): 1.7x its fixed-point inference
# speed, for where the network's time matters more than the last percent of its gain (docs/benchmarks).
register_model("hat_femto", "hat", _hat, embed_dim=12, depths=(1,), num_heads=(2,), window_size=4,
               compress_ratio=3, squeeze_factor=16, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0, num_feat=8,
               drop_path_rate=0.0, cubic_skip=True, bound_channel=False, context_planes=False)
register_model("hat_s", "hat", _hat, embed_dim=144, depths=(6,) * 6, num_heads=(6,) * 6, window_size=16,
               compress_ratio=24, squeeze_factor=24, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0, num_feat=64,
               drop_path_rate=0.1, cubic_skip=True, bound_channel=False, context_planes=False)
register_model("hat", "hat", _hat, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, window_size=16,
               compress_ratio=3, squeeze_factor=30, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0, num_feat=64,
               drop_path_rate=0.1, cubic_skip=True, bound_channel=False, context_planes=False)

__all__ = ["HAT", "bound_feature", "with_bound_channel", "with_context_planes"]
