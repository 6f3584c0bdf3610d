"""Convolutional block autoencoder with GDN (AE-SZ), for 2D and 3D blocks.

Encoder: strided convs each followed by GDN (Balle et al. 2016) halving the block until it is 2 wide, then a linear
map to a small latent. Decoder mirrors it with transposed convs and inverse GDN. Trained as a sliced-Wasserstein
autoencoder (training/objectives.py). Blocks are normalised to [0, 1] with the field's global range.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from srnsz.networks.registry import register_model


class GDN(nn.Module):
    """Generalized divisive normalisation y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2), any spatial rank.

    (B, C, *spatial) -> same shape. `inverse=True` multiplies instead (IGDN). Parameters are stored as square
    roots and squared in the forward pass so beta and gamma stay non-negative.
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse, self.beta_min = inverse, beta_min
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + 1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.beta_root.pow(2) + self.beta_min
        gamma = self.gamma_root.pow(2)
        norm = torch.einsum("ij,bj...->bi...", gamma, x * x) + beta.view(1, -1, *([1] * (x.dim() - 2)))
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


class BlockAutoencoder(nn.Module):
    """(B, 1, *block) -> (B, 1, *block) through a latent of `latent_dim` numbers per block.

    `spatial_dims` is 2 or 3; `block_size` a power of two >= 4 (32 for 2D and 8 for 3D in AE-SZ).
    """

    def __init__(self, spatial_dims: int = 2, block_size: int = 32, channels: int = 32, latent_dim: int = 16) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if block_size < 4 or block_size & (block_size - 1):
            raise ValueError(f"block_size must be a power of two >= 4, got {block_size}")
        self.spatial_dims, self.block_size, self.latent_dim = spatial_dims, block_size, latent_dim
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        deconv = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
        stages = int(math.log2(block_size)) - 1
        encoder: list[nn.Module] = []
        decoder: list[nn.Module] = []
        in_ch = 1
        for _ in range(stages):
            encoder += [conv(in_ch, channels, 3, stride=2, padding=1), GDN(channels)]
            in_ch = channels
        for i in range(stages):
            out_ch = 1 if i == stages - 1 else channels
            decoder += [GDN(channels, inverse=True), deconv(channels, out_ch, 4, stride=2, padding=1)]
        self.encoder_convs = nn.Sequential(*encoder)
        self.decoder_convs = nn.Sequential(*decoder)
        self.flat = channels * 2**spatial_dims
        self.to_latent = nn.Linear(self.flat, latent_dim)
        self.from_latent = nn.Linear(latent_dim, self.flat)
        self.channels = channels

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, *block) -> (B, latent_dim)."""
        return self.to_latent(self.encoder_convs(x).flatten(1))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, 1, *block)."""
        x = self.from_latent(latent).view(-1, self.channels, *([2] * self.spatial_dims))
        return self.decoder_convs(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (1, *([self.block_size] * self.spatial_dims))
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected blocks of shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        return self.decode(self.encode(x))


def _autoencoder(**kwargs: int) -> BlockAutoencoder:
    return BlockAutoencoder(**kwargs)


register_model("ae_2d", "autoencoder", _autoencoder, spatial_dims=2, block_size=32, channels=32, latent_dim=16)
register_model("ae_3d", "autoencoder", _autoencoder, spatial_dims=3, block_size=8, channels=32, latent_dim=8)

__all__ = ["GDN", "BlockAutoencoder"]
