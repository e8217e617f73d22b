"""Image datasets, all read from local files (nothing is downloaded at run time).

Each loader returns a :class:`TensorImages` held in memory, values in [-1, 1].
Missing files raise a :class:`GanlabError` whose one line says where to put them.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.data.base import TensorImages, uint8_to_unit
from ganlab.errors import GanlabError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
DATA_ENV = "GANLAB_DATA_DIR"


def _resize(images: Tensor, size: int) -> Tensor:
    if size <= 0 or images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)


def _split(n: int, split: str, name: str) -> slice | Tensor:
    """A fixed 80/20 train/test split (seed 0), so every tool sees the same held-out set."""
    if split == "all":
        return slice(None)
    if split not in ("train", "test"):
        raise GanlabError(f"{name}: split must be train, test or all, got {split!r}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * n)
    return perm[:cut] if split == "train" else perm[cut:]


def digits(image_size: int = 8, split: str = "all") -> TensorImages:
    """scikit-learn's 1,797 handwritten 8x8 digits (ships with the package)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().unsqueeze(1) / 16.0 * 2 - 1  # 0..16 -> [-1,1]
    labels = torch.from_numpy(bunch.target).long()
    idx = _split(len(labels), split, "digits")
    images = _resize(images[idx], image_size).clamp(-1, 1)
    return TensorImages("digits", images, labels[idx], num_classes=10)


# ---- MNIST ----------------------------------------------------------------------------------
_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): MNIST's own format, big-endian header."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype_code != 0x08:
            raise ValueError("not an unsigned-byte IDX file")
        dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return data.reshape(dims)
    except (OSError, ValueError, struct.error, EOFError) as exc:
        raise GanlabError(f"cannot read IDX file {path}: {exc}") from None


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def default_data_dir(name: str) -> Path:
    return Path(os.environ.get(DATA_ENV, "data")) / name


def mnist(data_dir: str = "", split: str = "any", image_size: int = 28) -> TensorImages:
    """MNIST from IDX files (gzipped or not); uses whichever splits are present.

    ``split``: ``train``, ``test``, ``all`` (both, required) or ``any`` (what is there).
    """
    folder = Path(data_dir) if data_dir else default_data_dir("mnist")
    wanted = {"any": ["train", "test"], "all": ["train", "test"]}.get(split, [split])
    if split not in ("any", "all", "train", "test"):
        raise GanlabError(f"mnist: split must be train, test, all or any, got {split!r}")
    images, labels = [], []
    for part in wanted:
        img_path, lbl_path = (_find(folder, stem) for stem in _MNIST_FILES[part])
        if img_path is None or lbl_path is None:
            if split == "any":
                continue
            raise GanlabError(f"mnist: {part} split not found in {folder}: put "
                              f"{_MNIST_FILES[part][0]}.gz and {_MNIST_FILES[part][1]}.gz there")
        images.append(read_idx(img_path))
        labels.append(read_idx(lbl_path))
    if not images:
        raise GanlabError(
            f"mnist: no IDX files in {folder}: put t10k-images-idx3-ubyte.gz and "
            f"t10k-labels-idx1-ubyte.gz (and/or the train-* pair) there, or pass --data-opt data_dir=PATH")
    x = torch.from_numpy(np.concatenate(images)).unsqueeze(1)
    y = torch.from_numpy(np.concatenate(labels).astype(np.int64))
    if x.shape[0] != y.shape[0]:
        raise GanlabError(f"mnist: image and label counts differ in {folder}")
    return TensorImages("mnist", _resize(uint8_to_unit(x), image_size).clamp(-1, 1), y, num_classes=10)


# ---- CIFAR-10 ----------------------------------------------------------------------------------
class _ArraysOnlyUnpickler(pickle.Unpickler):
    """CIFAR-10's batches are pickles; allow only numpy arrays and plain data in them,
    so a tampered file cannot run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def cifar10(data_dir: str = "", split: str = "train", image_size: int = 32) -> TensorImages:
    """CIFAR-10 from its python batches (``cifar-10-batches-py``)."""
    folder = Path(data_dir) if data_dir else default_data_dir("cifar10")
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    files = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    if split not in ("train", "test", "all"):
        raise GanlabError(f"cifar10: split must be train, test or all, got {split!r}")
    names = files["train"] + files["test"] if split == "all" else files[split]
    images, labels = [], []
    for fname in names:
        path = folder / fname
        if not path.is_file():
            raise GanlabError(f"cifar10: {fname} not found in {folder}: extract cifar-10-python.tar.gz "
                              f"there (https://www.cs.toronto.edu/~kriz/cifar.html)")
        try:
            with open(path, "rb") as fh:
                entry = _ArraysOnlyUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
            images.append(np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(entry[b"labels"], dtype=np.int64))
        except Exception as exc:
            raise GanlabError(f"cifar10: cannot read {path}: {exc}") from None
    x = uint8_to_unit(torch.from_numpy(np.concatenate(images)))
    y = torch.from_numpy(np.concatenate(labels))
    return TensorImages("cifar10", _resize(x, image_size).clamp(-1, 1), y, num_classes=10)


# ---- any folder of images ----------------------------------------------------------------------
def image_folder(data_dir: str = "", image_size: int = 32, channels: int = 3,
                 max_images: int = 50000) -> TensorImages:
    """Every image under a folder, centre-cropped and resized; sub-folders become class labels
    when the images sit one level down in two or more folders."""
    from PIL import Image, UnidentifiedImageError

    if not data_dir:
        raise GanlabError("folder: give the folder with --data-opt data_dir=PATH")
    root = Path(data_dir)
    if not root.is_dir():
        raise GanlabError(f"folder: {root} is not a directory")
    if channels not in (1, 3):
        raise GanlabError(f"folder: channels must be 1 or 3, got {channels}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise GanlabError(f"folder: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    files = files[:max_images]
    classes = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) == 2})
    labelled = len(classes) >= 2 and all(len(p.relative_to(root).parts) == 2 for p in files)
    mode = "L" if channels == 1 else "RGB"
    tensors = []
    for path in files:
        try:
            with Image.open(path) as im:
                im = im.convert(mode)
                side = min(im.size)
                left, top = (im.width - side) // 2, (im.height - side) // 2
                im = im.crop((left, top, left + side, top + side)).resize(
                    (image_size, image_size), Image.Resampling.BICUBIC)
                arr = np.asarray(im, dtype=np.uint8).reshape(image_size, image_size, channels)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise GanlabError(f"folder: {path} is not a readable image ({type(exc).__name__})") from None
        tensors.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
    x = uint8_to_unit(torch.stack(tensors))
    y = torch.tensor([classes.index(p.relative_to(root).parts[0]) for p in files]) if labelled else None
    return TensorImages("folder", x, y, num_classes=len(classes) if labelled else 0)
