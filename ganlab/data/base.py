"""What every dataset offers the loop and the metrics: seeded batches and a spec."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from ganlab.interfaces import DataSpec


class GanDataset(ABC):
    """A source of real samples.

    ``batch`` draws with a caller-owned ``torch.Generator``, so a checkpoint that stores
    the generator's state resumes the exact same data stream.
    """

    spec: DataSpec

    @abstractmethod
    def batch(self, n: int, rng: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """``n`` real samples (and their labels, or None), drawn with ``rng``."""

    def __len__(self) -> int:  # finite datasets override; mixtures are unbounded
        return 0

    def to(self, device: torch.device | str) -> GanDataset:
        return self


class TensorImages(GanDataset):
    """An in-memory image set, values in [-1, 1], sampled uniformly with replacement.

    Sampling with replacement (rather than epochs) keeps the whole data stream's state
    in one random generator, which makes resume exact.
    """

    def __init__(self, name: str, images: Tensor, labels: Tensor | None, num_classes: int = 0):
        if images.ndim != 4:
            raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
        self.images = images.float()
        self.labels = labels.long() if labels is not None else None
        self.spec = DataSpec(name=name, kind="image", shape=tuple(images.shape[1:]),
                             num_classes=num_classes if labels is not None else 0,
                             suggested_hparams={"batch_size": 64})

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> TensorImages:
        self.images = self.images.to(device)
        if self.labels is not None:
            self.labels = self.labels.to(device)
        return self

    def batch(self, n: int, rng: torch.Generator) -> tuple[Tensor, Tensor | None]:
        idx = torch.randint(len(self), (n,), generator=rng, device=rng.device)
        idx = idx.to(self.images.device)
        labels = self.labels[idx] if self.labels is not None else None
        return self.images[idx], labels


def uint8_to_unit(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def unit_to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] -> uint8 [0, 255] (what image files and Inception want)."""
    return images.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
