"""The core's default networks: MLPs for 2-D points, DCGAN-style CNNs for images.

Any variant may use them (most do) or bring its own through ``VariantSpec.nets``.
Options read from the hyperparameters:

- ``latent_dim``, ``hidden`` and ``depth`` (MLP width and hidden layers),
  ``base_channels`` (CNN width);
- ``conditional``: feed class labels to G (embedding) and D (projection, Miyato &
  Koyama 2018) on labelled data;
- ``d_norm``: ``batch`` (DCGAN), ``layer`` or ``none`` (needed by gradient penalties);
- ``spectral_norm``: spectral normalisation of every D layer (Miyato et al. 2018);
- ``pack``: D sees ``pack`` samples at once (PacGAN), concatenated on features/channels;
- ``mbstd_group``: append a minibatch standard-deviation feature to D's last block
  (Karras et al. 2018); 0 turns it off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec, Discriminator, Generator


def _sn(layer: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if on else layer


class MinibatchStd(nn.Module):
    """Appends the mean over features of the per-group std across the batch (ProGAN).

    A collapsed generator produces low-variance batches; this feature lets D see that.
    """

    def __init__(self, group_size: int):
        super().__init__()
        self.group_size = group_size

    def forward(self, h: Tensor) -> Tensor:
        n = h.shape[0]
        g = min(self.group_size, n)
        while n % g:  # fall back to a group size that divides the batch
            g -= 1
        grouped = h.reshape(g, n // g, *h.shape[1:])
        std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt()
        feature = std.flatten(1).mean(dim=1)  # one number per group member
        feature = feature.repeat(g)  # back to batch order: index i -> group member i % (n//g)
        shape = (n, 1, *h.shape[2:])
        return torch.cat([h, feature.view(n, *([1] * (h.ndim - 1))).expand(shape)], dim=1)


class _LabelEmbedding(nn.Module):
    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, dim)

    def forward(self, labels: Tensor) -> Tensor:
        return self.embed(labels)


# ---- points ------------------------------------------------------------------------------------
class MLPGenerator(Generator):
    def __init__(self, latent_dim: int, out_dim: int, hidden: int, depth: int, num_classes: int = 0):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.label_embed = _LabelEmbedding(num_classes, latent_dim) if num_classes else None
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.label_embed is not None and labels is not None:
            z = z * self.label_embed(labels)
        return self.net(z)


class MLPDiscriminator(Discriminator):
    def __init__(self, in_dim: int, hidden: int, depth: int, num_classes: int = 0,
                 spectral_norm: bool = False, mbstd_group: int = 0):
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(depth):
            layers += [_sn(nn.Linear(width, hidden), spectral_norm), nn.LeakyReLU(0.2)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group else None
        self.head = _sn(nn.Linear(width + (1 if mbstd_group else 0), 1), spectral_norm)
        self.projection = _sn(nn.Embedding(num_classes, width + (1 if mbstd_group else 0)),
                              spectral_norm) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.body(x.flatten(1))
        if self.mbstd is not None:
            h = self.mbstd(h)
        score = self.head(h).squeeze(1)
        if self.projection is not None and labels is not None:
            score = score + (self.projection(labels) * h).sum(dim=1)
        return score


# ---- images ------------------------------------------------------------------------------------
def conv_plan(size: int) -> tuple[int, int]:
    """(start resolution, number of 2x up/down-samplings) for a square image side."""
    if not 8 <= size <= 64:
        raise GanlabError(f"the DCGAN nets take images of 8 to 64 px, got {size}")
    start, steps = size, 0
    while start % 2 == 0 and start > 4:
        start //= 2
        steps += 1
    return start, steps


def _d_norm(kind: str, channels: int, hw: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # LayerNorm over C,H,W, safe for gradient penalties
    if kind == "none":
        return nn.Identity()
    raise GanlabError(f"d_norm must be batch, layer or none, got {kind!r}")


class DCGANGenerator(Generator):
    """Linear -> (C0, s, s), then transposed convs doubling the side, then tanh."""

    def __init__(self, latent_dim: int, shape: tuple[int, int, int], base_channels: int,
                 num_classes: int = 0):
        super().__init__()
        channels, height, width = shape
        if height != width:
            raise GanlabError(f"the DCGAN nets take square images, got {height}x{width}")
        self.latent_dim, self.num_classes = latent_dim, num_classes
        start, steps = conv_plan(height)
        c0 = base_channels * 2 ** steps
        self.label_embed = _LabelEmbedding(num_classes, latent_dim) if num_classes else None
        self.stem = nn.Sequential(nn.Linear(latent_dim, c0 * start * start, bias=False),
                                  nn.Unflatten(1, (c0, start, start)), nn.BatchNorm2d(c0), nn.ReLU())
        blocks: list[nn.Module] = []
        c = c0
        for _ in range(steps):
            blocks += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        blocks += [nn.Conv2d(c, channels, 3, 1, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.label_embed is not None and labels is not None:
            z = z * self.label_embed(labels)
        return self.blocks(self.stem(z))


class DCGANDiscriminator(Discriminator):
    """Strided convs halving the side (LeakyReLU 0.2), then a linear score."""

    def __init__(self, shape: tuple[int, int, int], base_channels: int, num_classes: int = 0,
                 norm: str = "batch", spectral_norm: bool = False, pack: int = 1, mbstd_group: int = 0):
        super().__init__()
        channels, height, _ = shape
        self.num_classes = num_classes
        start, steps = conv_plan(height)
        layers: list[nn.Module] = [_sn(nn.Conv2d(channels * pack, base_channels, 3, 1, 1), spectral_norm),
                                   nn.LeakyReLU(0.2)]
        c, side = base_channels, height
        for _ in range(steps):
            side //= 2
            layers += [_sn(nn.Conv2d(c, c * 2, 4, 2, 1), spectral_norm), _d_norm(norm, c * 2, side),
                       nn.LeakyReLU(0.2)]
            c *= 2
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group else None
        features = (c + (1 if mbstd_group else 0)) * start * start
        self.head = _sn(nn.Linear(features, 1), spectral_norm)
        self.projection = _sn(nn.Embedding(num_classes, features), spectral_norm) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.body(x)
        if self.mbstd is not None:
            h = self.mbstd(h)
        h = h.flatten(1)
        score = self.head(h).squeeze(1)
        if self.projection is not None and labels is not None:
            score = score + (self.projection(labels) * h).sum(dim=1)
        return score


def default_nets(data: DataSpec, hp: Mapping[str, Any]) -> tuple[Generator, Discriminator]:
    """MLPs for points, DCGAN CNNs for images, shaped by the hyperparameters."""
    num_classes = data.num_classes if hp.get("conditional") else 0
    pack, sn, mbstd = int(hp.get("pack", 1)), bool(hp.get("spectral_norm")), int(hp.get("mbstd_group", 0))
    if data.kind == "points":
        g = MLPGenerator(int(hp["latent_dim"]), data.dim, int(hp["hidden"]), int(hp["depth"]), num_classes)
        d = MLPDiscriminator(data.dim * pack, int(hp["hidden"]), int(hp["depth"]), num_classes, sn, mbstd)
        return g, d
    if len(data.shape) != 3 or data.shape[0] not in (1, 3):
        raise GanlabError(f"the DCGAN nets take 1- or 3-channel images, got shape {data.shape}")
    g = DCGANGenerator(int(hp["latent_dim"]), data.shape, int(hp["base_channels"]), num_classes)
    d = DCGANDiscriminator(data.shape, int(hp["base_channels"]), num_classes, str(hp.get("d_norm", "batch")),
                           sn, pack, mbstd)
    return g, d
