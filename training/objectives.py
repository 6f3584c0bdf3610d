"""Losses and the validation metric for each kind of network.

Validation reports prediction PSNR (peak = 1, the normalised range) of the network and of the fixed baseline the
network must beat in the compressor, on the same held-out samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from srnsz.networks.hat import bound_feature
from srnsz.networks.upsample import cubic_upsample2x, new_point_mask
from srnsz.neural import fixed_point


def psnr(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR in dB of values in [0, 1] units, over `mask` (broadcast over batch) when given."""
    err = (prediction.double() - target.double()) ** 2
    mse = err[..., mask].mean() if mask is not None else err.mean()
    return float("inf") if mse == 0 else -10.0 * math.log10(float(mse))


def _context(batch: dict[str, torch.Tensor], rows: slice = slice(None)) -> dict[str, torch.Tensor]:
    """The batch's context planes as the network's keyword argument, when the data gives them."""
    return {"context": batch["context"][rows]} if "context" in batch else {}


def _fixed_point_hat(model: nn.Module, lr: torch.Tensor, bound: torch.Tensor | None,
                     context: dict[str, torch.Tensor], exact: bool) -> torch.Tensor:
    """The HAT network as the compressor runs it (srnsz.neural.fixed_point): ``exact`` in float64 with the bound
    channel's value as the compressor computes it (validation); else in the batch's dtype with straight-through
    gradients (quantization-aware training)."""
    if hasattr(model, "module"):
        raise ValueError("quantization-aware training (objective.fixed_point=true) runs on one process, not DDP")
    levels = None
    if model.bound_channel and bound is not None:
        levels = (torch.tensor([fixed_point.bound_level(float(b)) for b in bound], dtype=torch.float64)
                  if exact else bound_feature(bound.to(lr.dtype)))
    dtype = torch.float64 if exact else lr.dtype
    context = {k: v.to(dtype) for k, v in context.items()}
    out = fixed_point.hat_forward(model, lr.to(dtype), levels, **context, arithmetic=fixed_point.ARITHMETIC)
    return out.to(lr.dtype)


class SuperResolutionL1:
    """L1 on the points the coarse grid lacks (the ones the compressor asks the network for).

    fixed_point: train through the compressor's fixed-point forward pass (straight-through rounding; one process,
    about three times the float step's time) instead of the float network. Validation reports both: ``psnr`` (the
    network as trained) and ``psnr_fixed_point`` (as the compressor runs it, exactly)."""

    def __init__(self, fixed_point: bool = False) -> None:
        self.fixed_point = fixed_point

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar training loss for {'lr': (B,1,h,w), 'hr': (B,1,2h,2w), 'bound': (B,) (used by networks that
        take it)}."""
        if self.fixed_point:
            prediction = _fixed_point_hat(model, batch["lr"], batch.get("bound"), _context(batch), exact=False)
        else:
            prediction = model(batch["lr"], batch.get("bound"), **_context(batch))
        mask = new_point_mask(*batch["hr"].shape[-2:], device=prediction.device)
        return (prediction - batch["hr"]).abs()[..., mask].mean()

    @torch.inference_mode()
    def validate(self, model: nn.Module, batch: dict[str, torch.Tensor], chunk: int = 64) -> dict[str, float]:
        """{'psnr', 'psnr_fixed_point', 'baseline_psnr'} over the new points; baseline = cubic spline upsampling."""
        lr, hr, bound = batch["lr"], batch["hr"], batch.get("bound")
        core = model.module if hasattr(model, "module") else model
        floating, fixed = [], []
        for i in range(0, len(lr), chunk):
            rows = slice(i, i + chunk)
            part_bound = None if bound is None else bound[rows]
            floating.append(model(lr[rows], part_bound, **_context(batch, rows)))
            fixed.append(_fixed_point_hat(core, lr[rows], part_bound, _context(batch, rows), exact=True))
        mask = new_point_mask(*hr.shape[-2:], device=hr.device)
        return {"psnr": psnr(torch.cat(floating), hr, mask), "psnr_fixed_point": psnr(torch.cat(fixed), hr, mask),
                "baseline_psnr": psnr(cubic_upsample2x(lr), hr, mask)}


def sliced_wasserstein(samples: torch.Tensor, reference: torch.Tensor, projections: int) -> torch.Tensor:
    """Squared sliced-Wasserstein-2 distance between two (N, d) point sets, random directions each call."""
    directions = F.normalize(torch.randn(samples.shape[1], projections, device=samples.device), dim=0)
    a = torch.sort(samples @ directions, dim=0).values
    b = torch.sort(reference @ directions, dim=0).values
    return ((a - b) ** 2).mean()


class SlicedWassersteinAutoencoder:
    """Reconstruction L1 plus `weight` x sliced-Wasserstein distance of the latents to a uniform prior on
    [-prior_scale, prior_scale] (SWAE, Kolouri et al. 2019), which keeps latents compact and cheap to code."""

    def __init__(self, weight: float = 0.1, projections: int = 64, prior_scale: float = 1.0) -> None:
        self.weight, self.projections, self.prior_scale = weight, projections, prior_scale

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar training loss for {'block': (B, 1, *block)}."""
        core = model.module if hasattr(model, "module") else model
        latent = core.encode(batch["block"])
        reconstruction = core.decode(latent)
        prior = (torch.rand_like(latent) * 2 - 1) * self.prior_scale
        swd = sliced_wasserstein(latent, prior, self.projections)
        return (reconstruction - batch["block"]).abs().mean() + self.weight * swd

    @torch.inference_mode()
    def validate(self, model: nn.Module, batch: dict[str, torch.Tensor], chunk: int = 256) -> dict[str, float]:
        """{'psnr', 'baseline_psnr'}; baseline = block averaged down to as many numbers as the latent and
        upsampled (bi/trilinear), the same side-information budget."""
        blocks = batch["block"]
        prediction = torch.cat([model(blocks[i:i + chunk]) for i in range(0, len(blocks), chunk)])
        core = model.module if hasattr(model, "module") else model
        dims = blocks.dim() - 2
        side = max(1, round(core.latent_dim ** (1 / dims)))
        coarse = F.adaptive_avg_pool2d(blocks, side) if dims == 2 else F.adaptive_avg_pool3d(blocks, side)
        baseline = F.interpolate(coarse, size=blocks.shape[2:], mode="bilinear" if dims == 2 else "trilinear",
                                 align_corners=False)
        return {"psnr": psnr(prediction, blocks), "baseline_psnr": psnr(baseline, blocks)}
