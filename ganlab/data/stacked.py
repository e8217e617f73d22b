"""Stacked MNIST: three MNIST digits as the R, G and B channels of one image.

The standard mode-collapse test on images (VEEGAN 2017, PacGAN 2018): every combination
of three digits is a mode, 1,000 in all, near-uniformly likely. Samples are stacked on the
fly from the digits in memory, so the dataset is unbounded (like the 2-D mixtures) and
costs no more memory than MNIST itself; its stream is fully determined by the caller's
random generator. Mode metrics classify each channel with the MNIST domain classifier
(``classifier_source``) and read the mode as ``100 * R + 10 * G + B``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganlab.data.base import GanDataset
from ganlab.data.images import mnist
from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec

NUM_DIGITS = 3  # channels, each an independent digit: 10 ** 3 modes


class StackedMNIST(GanDataset):
    def __init__(self, digits: Tensor, digit_labels: Tensor, source_options: dict):
        if digits.ndim != 4 or digits.shape[1] != 1:
            raise GanlabError("stacked-mnist needs single-channel digit images")
        self.digits, self.digit_labels = digits.float(), digit_labels.long()
        size = tuple(digits.shape[-2:])
        self.spec = DataSpec(name="stacked-mnist", kind="image", shape=(NUM_DIGITS, *size),
                             suggested_hparams={"batch_size": 64})
        #: Where the per-channel classifier for the mode metrics is trained (see ganlab.metrics).
        self.classifier_source = ("mnist", dict(source_options))
        self.num_modes = 10 ** NUM_DIGITS

    def to(self, device) -> StackedMNIST:
        self.digits, self.digit_labels = self.digits.to(device), self.digit_labels.to(device)
        return self

    def batch(self, n: int, rng: torch.Generator) -> tuple[Tensor, None]:
        idx = torch.randint(len(self.digit_labels), (n, NUM_DIGITS), generator=rng, device=rng.device)
        idx = idx.to(self.digits.device)
        return self.digits[idx].flatten(1, 2), None  # n x 3 x 1 x H x W -> n x 3 x H x W

    def mode_of(self, idx: Tensor) -> Tensor:
        """The true mode (0..999) of stacked images drawn with digit indices ``idx`` (n x 3)."""
        labels = self.digit_labels[idx]
        return labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]


def stacked_mnist(data_dir: str = "", split: str = "any", image_size: int = 28) -> StackedMNIST:
    """Stacked MNIST from the MNIST IDX files in ``data_dir`` (any split that is present)."""
    source = mnist(data_dir=data_dir, split=split, image_size=image_size)
    return StackedMNIST(source.images, source.labels,
                        {"data_dir": data_dir, "split": split, "image_size": image_size})
