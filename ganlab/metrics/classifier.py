"""The domain feature extractor: a small CNN classifier that ganlab trains on labelled real data.

Inception-v3 is slow on a CPU and was trained on photographs; for digits or MNIST a
classifier trained on the data itself gives a feature space in which FID, KID,
precision/recall and density/coverage run in seconds, and its predictions give the
class-histogram mode metrics.

The classifier trains on the dataset's own ``train`` split and reports its accuracy on
the ``test`` split when the dataset has one; otherwise on 80% of the data with the other
20% held out. It is cached on disk by dataset, options and seed, and registered in
torch-fidelity's feature-extractor registry as ``ganlab-domain``: torch-fidelity builds it
from the cached file given as ``feature_extractor_weights_path``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_fidelity import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from ganlab.errors import GanlabError
from ganlab.metrics.cache import cache_dir, file_sha256, key_hash, load_entry, save_atomic

EXTRACTOR_NAME = "ganlab-domain"
#: Bump when the architecture or the training recipe changes: old cache entries then miss.
RECIPE_VERSION = 3


class ClassifierNet(nn.Module):
    """Three 3x3 conv layers (two of stride 2), pooling to a 2x2 map, one hidden layer.

    The hidden layer's ``4 * width`` numbers are the feature space. Pooling to 2x2 rather
    than 1x1 keeps coarse layout (where the strokes are), which digits need; works from 8x8 up.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(16 * width, 4 * width), nn.ReLU())
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body(x)
        return features, self.head(features)


@dataclass
class TrainedClassifier:
    """A cached classifier: the file (what torch-fidelity loads), its hash, and its record."""

    path: Path
    sha256: str
    meta: dict[str, Any]
    net: ClassifierNet

    @property
    def accuracy(self) -> float:
        return float(self.meta["accuracy"])

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 500) -> Tensor:
        """Class indices for images in [-1, 1]; N x (k*C) x H x W gives N x k (one per channel group)."""
        return prepare_and_run(self.net, self.meta, images, batch_size)[1].argmax(dim=-1)

    def describe(self) -> dict[str, Any]:
        keys = ("dataset", "seed", "accuracy", "held_out", "n_train", "n_test", "train_seconds")
        return {**{k: self.meta[k] for k in keys}, "sha256": self.sha256, "path": str(self.path)}


def _split_groups(images: Tensor, in_channels: int) -> list[Tensor]:
    channels = images.shape[1]
    if channels == in_channels:
        return [images]
    if channels % in_channels:
        raise GanlabError(f"the domain classifier takes {in_channels}-channel images, got {channels} channels")
    # Stacked MNIST: each colour channel is a separate digit, classified on its own.
    return list(images.split(in_channels, dim=1))


@torch.no_grad()
def prepare_and_run(net: ClassifierNet, meta: dict[str, Any], images: Tensor,
                    batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """Features (N x k*F) and logits (N x k x K) of images in [-1, 1], resized to the
    classifier's size; ``k`` channel groups (1 unless channels are stacked digits)."""
    device = next(net.parameters()).device
    feats, logits = [], []
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].to(device, torch.float32)
        size = int(meta["image_size"])
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        outs = [net(group) for group in _split_groups(x, int(meta["in_channels"]))]
        feats.append(torch.cat([f for f, _ in outs], dim=1).cpu())
        logits.append(torch.stack([lg for _, lg in outs], dim=1).cpu())
    return torch.cat(feats), torch.cat(logits)


# ---- training data ---------------------------------------------------------------------------
def _tensors(dataset: Any, name: str) -> tuple[Tensor, Tensor]:
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if images is None or labels is None:
        raise GanlabError(f"dataset {name!r} has no class labels: the domain classifier needs a labelled "
                          f"dataset (digits, mnist, cifar10, a folder of class sub-folders)")
    return images.cpu().float(), labels.cpu().long()


def load_splits(registry, dataset: str, options: dict[str, Any], seed: int
                ) -> tuple[Tensor, Tensor, Tensor, Tensor, str]:
    """(train x, train y, held-out x, held-out y, how the held-out set was chosen)."""
    from ganlab.train.setup import load_dataset

    spec = registry.dataset(dataset)
    base = {k: v for k, v in options.items() if k != "split"}
    if "split" in spec.options:
        try:
            train, _ = load_dataset(registry, dataset, {**base, "split": "train"})
            test, _ = load_dataset(registry, dataset, {**base, "split": "test"})
            return (*_tensors(train, dataset), *_tensors(test, dataset), "the dataset's test split")
        except GanlabError:
            pass  # e.g. only MNIST's test files are on disk: hold out part of what is there
    full, _ = load_dataset(registry, dataset, options)
    x, y = _tensors(full, dataset)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(y))
    return x[perm[:cut]], y[perm[:cut]], x[perm[cut:]], y[perm[cut:]], f"20% held out (seed {seed})"


def _shift(x: Tensor, rng: torch.Generator, max_shift: int) -> Tensor:
    """Random translation by up to ``max_shift`` pixels (edge-padded): cheap augmentation
    that lifts held-out accuracy on small digit sets."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=rng)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=rng)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # n x h
    cols = (dx[:, None] + torch.arange(w)[None, :])  # n x w
    idx_n = torch.arange(n)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@torch.no_grad()
def accuracy(net: ClassifierNet, x: Tensor, y: Tensor) -> float:
    net.eval()
    correct = sum(int((net(x[i:i + 500])[1].argmax(1) == y[i:i + 500]).sum()) for i in range(0, len(y), 500))
    return correct / max(1, len(y))


def train_classifier(x: Tensor, y: Tensor, num_classes: int, seed: int, batch_size: int = 64,
                     steps: int | None = None) -> ClassifierNet:
    """Adam with a cosine schedule; about 20 epochs, between 600 and 1500 steps."""
    steps = steps or min(1500, max(600, 20 * len(y) // batch_size))
    rng = torch.Generator().manual_seed(seed)
    # fork_rng: training here (possibly mid-GAN-training, for --eval-every) must not move
    # the global torch RNG, or a resumed run would no longer match an uninterrupted one.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ClassifierNet(x.shape[1], num_classes)
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
        max_shift = max(1, x.shape[-1] // 14)  # 1 px at 8x8, 2 px at 28x28
        net.train()
        for _ in range(steps):
            idx = torch.randint(len(y), (batch_size,), generator=rng)
            logits = net(_shift(x[idx], rng, max_shift))[1]
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval().requires_grad_(False)
    return net


# ---- the cache -------------------------------------------------------------------------------
_LOADED: dict[Path, TrainedClassifier] = {}


def classifier_path(dataset: str, options: dict[str, Any], seed: int) -> Path:
    key = key_hash({"dataset": dataset, "options": {k: v for k, v in options.items() if k != "split"},
                    "seed": seed, "recipe": RECIPE_VERSION})
    return cache_dir() / "classifiers" / f"{dataset}-s{seed}-{key}.pt"


def load_classifier_file(path: Path) -> tuple[ClassifierNet, dict[str, Any]]:
    payload = load_entry(path)
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise GanlabError(f"{path} is not a ganlab domain classifier file")
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    with torch.random.fork_rng(devices=[]):  # the random init, overwritten at once, must not move the global RNG
        net = ClassifierNet(int(meta["in_channels"]), int(meta["num_classes"]), int(meta["width"]))
    net.load_state_dict(payload["state_dict"])
    net.eval().requires_grad_(False)
    return net, meta


def domain_classifier(registry, dataset: str, options: dict[str, Any], seed: int = 0,
                      log=None) -> TrainedClassifier:
    """The cached classifier for (dataset, options, seed); trained and saved on a miss."""
    path = classifier_path(dataset, options, seed)
    if path in _LOADED and path.is_file():
        return _LOADED[path]
    if load_entry(path) is None:
        x, y, x_test, y_test, held_out = load_splits(registry, dataset, options, seed)
        num_classes = int(y.max()) + 1 if len(y) else 0
        if num_classes < 2:
            raise GanlabError(f"dataset {dataset!r}: the domain classifier needs at least two classes")
        if log:
            log(f"training the domain classifier on {dataset} ({len(y)} images, cached in {path.parent})")
        start = time.perf_counter()
        net = train_classifier(x, y, num_classes, seed)
        acc = accuracy(net, x_test, y_test)
        save_atomic({"format": 1, "state_dict": net.state_dict(), "in_channels": x.shape[1],
                     "num_classes": num_classes, "width": 32, "image_size": x.shape[-1],
                     "accuracy": acc, "held_out": held_out, "dataset": dataset,
                     "options": {k: v for k, v in options.items() if k != "split"}, "seed": seed,
                     "n_train": len(y), "n_test": len(y_test), "recipe": RECIPE_VERSION,
                     "train_seconds": round(time.perf_counter() - start, 2)}, path)
    net, meta = load_classifier_file(path)
    trained = TrainedClassifier(path, file_sha256(path), meta, net)
    _LOADED[path] = trained
    return trained


# ---- torch-fidelity's view of it -----------------------------------------------------------------
class DomainFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity feature extractor over a cached ganlab classifier file.

    Input: uint8 N x C x H x W (torch-fidelity's convention). Features: ``features`` (the
    pooled CNN vector; FID, KID, precision/recall) and ``logits`` (Inception-Score style).
    """

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if not feature_extractor_weights_path:
            raise GanlabError(f"the {EXTRACTOR_NAME} feature extractor needs a trained classifier file "
                              f"as feature_extractor_weights_path")
        self.net, self.meta = load_classifier_file(Path(feature_extractor_weights_path))

    @staticmethod
    def get_provided_features_list():
        return ("features", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "logits" if metric == "isc" else "features"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 1, 8, 8, dtype=torch.uint8)

    def forward(self, x):
        if not (torch.is_tensor(x) and x.dtype == torch.uint8 and x.dim() == 4):
            raise ValueError("expected uint8 images N x C x H x W")
        feats, logits = prepare_and_run(self.net, self.meta, x.float() / 127.5 - 1.0)
        out = {"features": feats.to(x.device), "logits": logits.flatten(1).to(x.device)}
        return tuple(out[name] for name in self.features_list)


if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(EXTRACTOR_NAME, DomainFeatureExtractor)
