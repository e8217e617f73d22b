"""2-D Gaussian mixtures, the standard test bed for mode collapse.

Geometry follows VEEGAN (2017) and PacGAN (2018): the ring has 8 modes at angles
2*pi*k/8 on a circle of radius 1 with std 0.01 (not ``linspace(0, 2*pi, 8)``, whose
ends coincide and leave 7 modes); the grid has 25 modes at (2i-4, 2j-4), std 0.05.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ganlab.data.base import GanDataset
from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec

# Unrolled-GAN demo settings for the 2-D problems (batch 512, Adam beta1 0.5,
# lr_D 1e-4, lr_G 1e-3, z 256, hidden 128); variants' own defaults override them.
POINTS_HPARAMS = {"batch_size": 512, "lr_d": 1e-4, "lr_g": 1e-3, "latent_dim": 256}


class GaussianMixture(GanDataset):
    """Isotropic Gaussian mixture in 2-D with known centres, std and weights."""

    def __init__(self, name: str, centres: Sequence[Sequence[float]], std: float,
                 weights: Sequence[float] | None = None):
        centres_t = torch.as_tensor(centres, dtype=torch.float32)
        if centres_t.ndim != 2 or centres_t.shape[0] < 1 or centres_t.shape[1] != 2:
            raise GanlabError(f"dataset {name}: centres must be a non-empty list of [x, y] pairs")
        if not std > 0:
            raise GanlabError(f"dataset {name}: std must be positive, got {std}")
        k = centres_t.shape[0]
        weights_t = torch.full((k,), 1.0 / k) if weights is None else \
            torch.as_tensor(weights, dtype=torch.float64)
        if weights_t.shape != (k,) or (weights_t < 0).any() or weights_t.sum() <= 0:
            raise GanlabError(f"dataset {name}: weights must be {k} non-negative numbers")
        weights_t = (weights_t / weights_t.sum()).float()
        self.centres, self.std, self.weights = centres_t, float(std), weights_t
        self.spec = DataSpec(
            name=name, kind="points", shape=(2,),
            modes=tuple(tuple(map(float, c)) for c in centres_t.tolist()),
            mode_std=float(std), mode_weights=tuple(weights_t.tolist()),
            suggested_hparams=POINTS_HPARAMS)

    def to(self, device):
        self.centres, self.weights = self.centres.to(device), self.weights.to(device)
        return self

    def batch(self, n: int, rng: torch.Generator) -> tuple[Tensor, None]:
        comp = torch.multinomial(self.weights.to(rng.device), n, replacement=True, generator=rng)
        noise = torch.randn(n, 2, generator=rng, device=rng.device)
        comp, noise = comp.to(self.centres.device), noise.to(self.centres.device)
        return self.centres[comp] + self.std * noise, None


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
    if n_modes < 1:
        raise GanlabError("ring: n_modes must be at least 1")
    angles = [2 * math.pi * k / n_modes for k in range(n_modes)]
    centres = [[radius * math.cos(a), radius * math.sin(a)] for a in angles]
    name = "ring8" if (n_modes, radius, std) == (8, 1.0, 0.01) else f"ring{n_modes}"
    return GaussianMixture(name, centres, std)


def grid(size: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    if size < 1:
        raise GanlabError("grid: size must be at least 1")
    offset = spacing * (size - 1) / 2
    centres = [[spacing * i - offset, spacing * j - offset] for i in range(size) for j in range(size)]
    name = "grid25" if (size, spacing, std) == (5, 2.0, 0.05) else f"grid{size * size}"
    return GaussianMixture(name, centres, std)


def custom_mixture(centres: str = "[[1,0],[-1,0]]", std: float = 0.05, weights: str = "") -> GaussianMixture:
    """A mixture given on the command line: ``--data-opt centres='[[0,0],[1,1]]'``."""
    try:
        centres_v = json.loads(centres)
        weights_v = json.loads(weights) if weights else None
    except json.JSONDecodeError as exc:
        raise GanlabError(f"mixture: centres/weights must be JSON lists ({exc.msg})") from None
    return GaussianMixture("mixture", centres_v, std, weights_v)
