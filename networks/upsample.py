"""Fixed (non-learned) x2 upsampling of a decimated grid, the baseline the networks correct.

The coarse grid is `x[..., ::2, ::2]` of a fine grid; the fine grid points that are on the coarse grid are copied,
the others are predicted by the SZ3 cubic spline (-1, 9, 9, -1)/16, one axis after the other, with the quadratic and
linear formulas near the edges -- the same family the compressor's interpolation predictor uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _cubic_midpoints(coarse: torch.Tensor) -> torch.Tensor:
    """Midpoints between consecutive samples along the last axis: (..., n) -> (..., n) (last one extrapolated)."""
    n = coarse.shape[-1]
    if n == 1:
        return coarse.clone()
    if n == 2:
        a, b = coarse[..., :1], coarse[..., 1:]
        return torch.cat([(a + b) / 2, 1.5 * b - 0.5 * a], dim=-1)
    if n == 3:
        a, b, c = coarse[..., :1], coarse[..., 1:2], coarse[..., 2:]
        return torch.cat([(3 * a + 6 * b - c) / 8, (-a + 6 * b + 3 * c) / 8, (3 * a - 10 * b + 15 * c) / 8], -1)
    padded = coarse.reshape(-1, 1, n)
    interior = F.conv1d(padded, coarse.new_tensor([[[-1.0, 9.0, 9.0, -1.0]]]) / 16).reshape(*coarse.shape[:-1], n - 3)
    first = (3 * coarse[..., :1] + 6 * coarse[..., 1:2] - coarse[..., 2:3]) / 8
    before_last = (-coarse[..., -3:-2] + 6 * coarse[..., -2:-1] + 3 * coarse[..., -1:]) / 8
    # Beyond the last coarse sample: quadratic extrapolation through the last three.
    last = (3 * coarse[..., -3:-2] - 10 * coarse[..., -2:-1] + 15 * coarse[..., -1:]) / 8
    return torch.cat([first, interior, before_last, last], dim=-1)


def _upsample_last_axis(coarse: torch.Tensor) -> torch.Tensor:
    mids = _cubic_midpoints(coarse)
    return torch.stack([coarse, mids], dim=-1).flatten(-2)


def cubic_upsample2x(coarse: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) coarse grid -> (B, C, 2h, 2w); rows first, then columns (like one SZ3 level)."""
    rows = _upsample_last_axis(coarse.transpose(-1, -2)).transpose(-1, -2)
    return _upsample_last_axis(rows)


def new_point_mask(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """(height, width) bool, True where a point is not on the coarse grid (the points a predictor must supply)."""
    mask = torch.ones(height, width, dtype=torch.bool, device=device)
    mask[::2, ::2] = False
    return mask
