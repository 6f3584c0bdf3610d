"""Built-in example fields, reproducible from a seed: ``example_field`` for a first run without data, ``wave_field``
(plane waves plus noise) for tests and benchmarks."""

from __future__ import annotations

import numpy as np


def example_field(shape: tuple[int, ...] = (64, 96, 128), seed: int = 0) -> np.ndarray:
    """Smooth float32 field with fronts and vortex-like blobs, reproducible from ``seed``. Shape (Z, Y, X)."""
    rng = np.random.default_rng(seed)
    axes = np.meshgrid(*[np.linspace(0.0, 1.0, n) for n in shape], indexing="ij")
    field = np.zeros(shape)
    for _ in range(6):
        centre = rng.uniform(0.1, 0.9, len(shape))
        width = rng.uniform(0.05, 0.2)
        r2 = sum((a - c) ** 2 for a, c in zip(axes, centre))
        field += rng.uniform(-1, 1) * np.exp(-r2 / (2 * width**2))
    field += 0.3 * np.sin(6 * np.pi * axes[-1] + 3 * axes[0]) * np.cos(4 * np.pi * axes[len(shape) // 2])
    field += 0.5 * np.tanh((axes[0] - 0.5 + 0.1 * np.sin(8 * axes[-1])) / 0.02)  # a sharp front
    return field.astype(np.float32)


def wave_field(shape: tuple[int, ...], dtype: type = np.float32, seed: int = 0, waves: int = 4, top: float = 6.0,
               noise: float = 0.01) -> np.ndarray:
    """Sum of ``waves`` random plane waves (1 to ``top`` periods per axis) plus ``noise`` times Gaussian noise,
    reproducible from ``seed``; ``shape`` any number of axes."""
    rng = np.random.default_rng(seed)
    axes = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    out = np.zeros(shape)
    for _ in range(waves):
        phase = sum(rng.uniform(1, top) * a for a in axes)
        out += rng.uniform(-1, 1) * np.sin(2 * np.pi * phase + rng.uniform(0, 6))
    out += noise * rng.standard_normal(shape)
    return out.astype(dtype)
