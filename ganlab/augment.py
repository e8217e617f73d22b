"""DiffAugment: differentiable augmentation of D's inputs (Zhao et al. 2020).

"Differentiable Augmentation for Data-Efficient GAN Training" (NeurIPS 2020) applies the
same random transforms to real and generated images before D, in both phases, and keeps
them differentiable so G's gradient passes through. Three families, each drawn afresh
per image:

- ``color``: brightness ``x + (u - 0.5)``; saturation ``(x - mean_c) * 2u + mean_c``
  (``mean_c`` the per-pixel mean over channels); contrast ``(x - mean) * (u + 0.5) + mean``
  (``mean`` over the whole image), each with its own ``u ~ U[0, 1)``;
- ``translation``: shift by whole pixels in ``[-s, s]`` per axis, ``s = round(size / 8)``,
  filling the uncovered border with zeros;
- ``cutout``: zero one square of side ``round(size / 2)`` centred anywhere in the image
  (clipped at the borders).

A policy is a comma list of those names, applied in the order given, e.g.
``"color,translation,cutout"`` (the paper's choice for small data).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.errors import GanlabError

TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def _uniform(x: Tensor, rng: torch.Generator | None) -> Tensor:
    """One U[0, 1) per image, shaped to broadcast over (C, H, W)."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=rng, device=x.device, dtype=x.dtype)


def brightness(x: Tensor, rng: torch.Generator | None = None) -> Tensor:
    return x + (_uniform(x, rng) - 0.5)


def saturation(x: Tensor, rng: torch.Generator | None = None) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, rng) * 2) + mean


def contrast(x: Tensor, rng: torch.Generator | None = None) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, rng) + 0.5) + mean


def color(x: Tensor, rng: torch.Generator | None = None) -> Tensor:
    return contrast(saturation(brightness(x, rng), rng), rng)


def translation(x: Tensor, rng: torch.Generator | None = None, ratio: float = TRANSLATION_RATIO) -> Tensor:
    """Shift each image by (dy, dx) whole pixels with zero fill, as one gather (differentiable)."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sy == 0 and sx == 0:
        return x
    dy = torch.randint(-sy, sy + 1, (n, 1), generator=rng, device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1), generator=rng, device=x.device)
    padded = F.pad(x, [sx, sx, sy, sy])
    # Output pixel (i, j) reads padded pixel (i + sy - dy, j + sx - dx): content moves by +dy, +dx.
    rows = torch.arange(h, device=x.device).unsqueeze(0) + sy - dy  # (n, h)
    cols = torch.arange(w, device=x.device).unsqueeze(0) + sx - dx  # (n, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    gathered = padded.permute(0, 2, 3, 1)[batch, rows.unsqueeze(2), cols.unsqueeze(1)]  # (n, h, w, c)
    return gathered.permute(0, 3, 1, 2)


def cutout(x: Tensor, rng: torch.Generator | None = None, ratio: float = CUTOUT_RATIO) -> Tensor:
    """Zero one square of side ``round(ratio * size)`` per image, centred uniformly at random."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h, (n, 1), generator=rng, device=x.device)
    cx = torch.randint(0, w, (n, 1), generator=rng, device=x.device)
    ys = torch.arange(h, device=x.device).unsqueeze(0)
    xs = torch.arange(w, device=x.device).unsqueeze(0)
    in_rows = (ys >= cy - ch // 2) & (ys < cy - ch // 2 + ch)  # (n, h)
    in_cols = (xs >= cx - cw // 2) & (xs < cx - cw // 2 + cw)  # (n, w)
    keep = ~(in_rows.unsqueeze(2) & in_cols.unsqueeze(1))  # (n, h, w)
    return x * keep.unsqueeze(1).to(x.dtype)


AUGMENTATIONS = {"color": color, "translation": translation, "cutout": cutout}


class DiffAugment:
    """A callable ``images (N, C, H, W) -> augmented images`` for one policy string.

    Randomness comes from ``rng`` when given, else from torch's global generator (which
    the trainer seeds), so a run stays reproducible under its seed.
    """

    def __init__(self, policy: str, rng: torch.Generator | None = None):
        names = [p.strip() for p in str(policy).split(",") if p.strip()]
        unknown = [p for p in names if p not in AUGMENTATIONS]
        if unknown or not names:
            raise GanlabError(f"diffaugment policy {policy!r}: use a comma list of "
                              f"{', '.join(AUGMENTATIONS)} (unknown: {', '.join(unknown) or 'empty policy'})")
        self.policy = names
        self.rng = rng

    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise GanlabError(f"diffaugment works on image batches (N, C, H, W), got shape {tuple(x.shape)}")
        for name in self.policy:
            x = AUGMENTATIONS[name](x, self.rng)
        return x

    def __repr__(self) -> str:
        return f"DiffAugment({','.join(self.policy)!r})"
