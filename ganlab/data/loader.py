"""Image folders decoded by DataLoader worker processes, batch by batch (``--workers N``).

The in-memory ``folder`` dataset decodes every file once, up front. With ``--workers N``
the files are instead decoded while training runs, by N worker processes, into pinned
(page-locked) memory when training on CUDA, and copied to the device without blocking;
uint8 pixels travel and are scaled to [-1, 1] on the device.

The sample stream is the in-memory one, exactly: the main process draws each batch's
indices with the run's data generator (``torch.randint`` with replacement, as
:class:`~ganlab.data.base.TensorImages` does), so checkpoints and resume work unchanged
and ``--workers`` changes speed, never results. To decode ahead, the batch sampler
predicts the coming batches from a *copy* of that generator; each prefetched batch
carries its indices and the main process checks them against its own draw. When they
differ (a resume reset the generator, the batch size changed) the prefetched batches are
dropped and decoding restarts from the current state.

Under torchrun each rank draws the global batch's indices and decodes only its own rows
(:meth:`FolderStream.select_shard`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ganlab.data.base import GanDataset, uint8_to_unit
from ganlab.data.images import IMAGE_SUFFIXES
from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec

#: Batches each worker decodes ahead of the training step.
PREFETCH_PER_WORKER = 2


def list_folder(root: Path, max_images: int) -> tuple[list[Path], list[int] | None, int]:
    """Image files under ``root`` (sorted, at most ``max_images``), their class labels and
    the class count: sub-folders are classes when every image sits one level down in two
    or more of them (the rule of the in-memory ``folder`` dataset)."""
    if not root.is_dir():
        raise GanlabError(f"folder: {root} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise GanlabError(f"folder: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    files = files[:max_images]
    parts = [p.relative_to(root).parts for p in files]
    classes = sorted({pp[0] for pp in parts if len(pp) == 2})
    labelled = len(classes) >= 2 and all(len(pp) == 2 for pp in parts)
    labels = [classes.index(pp[0]) for pp in parts] if labelled else None
    return files, labels, len(classes) if labelled else 0


def decode_image(path: Path, size: int, channels: int) -> Tensor:
    """One file as uint8 C x size x size: centre square crop, bicubic resize."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            side = min(im.size)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
            arr = np.asarray(im, dtype=np.uint8).reshape(size, size, channels)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise GanlabError(f"folder: {path} is not a readable image ({type(exc).__name__})") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


class _DecodedFiles(Dataset):
    """Index -> (uint8 image, label or -1, index); runs inside the worker processes."""

    def __init__(self, files: list[Path], labels: list[int] | None, size: int, channels: int):
        self.files, self.labels, self.size, self.channels = files, labels, size, channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        label = self.labels[i] if self.labels is not None else -1
        return decode_image(self.files[i], self.size, self.channels), label, i


def draw_indices(rng: torch.Generator, n_items: int, n: int, rank: int = 0, world: int = 1) -> Tensor:
    """This rank's rows of the global batch's indices (uniform, with replacement)."""
    indices = torch.randint(n_items, (n * world,), generator=rng, device=rng.device)
    return indices[rank * n:(rank + 1) * n].cpu()


class _PredictedBatches:
    """A batch sampler yielding the index lists the main process will draw next.

    It replays the main process's draws on a copy of its generator, taken when the
    stream (re)starts, so decoding runs ahead of training.
    """

    def __init__(self, n_items: int):
        self.n_items = n_items
        self.start_state: Tensor | None = None
        self.batch = 0
        self.rank, self.world = 0, 1

    def __iter__(self):
        rng = torch.Generator().set_state(self.start_state)
        while True:
            yield draw_indices(rng, self.n_items, self.batch, self.rank, self.world).tolist()


class FolderStream(GanDataset):
    """An image folder read by ``workers`` DataLoader processes while training runs."""

    def __init__(self, root: Path, image_size: int, channels: int, max_images: int, workers: int):
        if channels not in (1, 3):
            raise GanlabError(f"folder: channels must be 1 or 3, got {channels}")
        if workers < 1:
            raise GanlabError(f"--workers must be at least 1 for the streaming folder loader, got {workers}")
        files, labels, num_classes = list_folder(root, max_images)
        self.files, self.labels = files, labels
        self.workers = workers
        self.spec = DataSpec(name="folder", kind="image", shape=(channels, image_size, image_size),
                             num_classes=num_classes, suggested_hparams={"batch_size": 64})
        self.device = torch.device("cpu")
        self._sampler = _PredictedBatches(len(files))
        self._decoded = _DecodedFiles(files, labels, image_size, channels)
        self._loader: DataLoader | None = None
        self._iterator = None

    def __len__(self) -> int:
        return len(self.files)

    def to(self, device: torch.device | str) -> FolderStream:
        device = torch.device(device)
        if device != self.device:
            self.close()  # pinning depends on the device: rebuild the loader lazily
            self.device = device
        return self

    def select_shard(self, rank: int, world: int) -> None:
        """Draw the global batch's indices, decode only rows ``[rank*n, (rank+1)*n)``."""
        self._sampler.rank, self._sampler.world = rank, world
        self._iterator = None

    def batch(self, n: int, rng: torch.Generator) -> tuple[Tensor, Tensor | None]:
        state = rng.get_state()
        wanted = draw_indices(rng, len(self.files), n, self._sampler.rank, self._sampler.world)
        images, labels, got = self._next(n, state)
        if not torch.equal(got, wanted):  # the generator moved under us: decode from here on
            images, labels, got = self._next(n, state, restart=True)
        images = uint8_to_unit(images.to(self.device, non_blocking=True))
        if self.labels is None:
            return images, None
        return images, labels.to(self.device, non_blocking=True)

    def _next(self, n: int, state: Tensor, restart: bool = False):
        if restart or self._iterator is None or self._sampler.batch != n:
            self._sampler.start_state, self._sampler.batch = state, n
            if self._loader is None:
                self._loader = DataLoader(
                    self._decoded, batch_sampler=self._sampler, num_workers=self.workers,
                    pin_memory=self.device.type == "cuda", persistent_workers=True,
                    prefetch_factor=PREFETCH_PER_WORKER)
            self._iterator = iter(self._loader)
        try:
            return next(self._iterator)
        except GanlabError as exc:  # re-raised from a worker with its traceback folded in
            lines = [line for line in str(exc).splitlines() if "folder: " in line]
            message = lines[-1].split("GanlabError: ", 1)[-1] if lines else str(exc).splitlines()[0]
            raise GanlabError(message.strip()) from None

    def close(self) -> None:
        """Stop the worker processes (they also stop when the process exits)."""
        iterator = self._iterator
        self._iterator, self._loader = None, None
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if callable(shutdown):
            shutdown()


def folder_stream(data_dir: str = "", image_size: int = 32, channels: int = 3, max_images: int = 50000,
                  *, workers: int) -> FolderStream:
    """The ``folder`` dataset's options, decoded by ``workers`` processes."""
    if not data_dir:
        raise GanlabError("folder: give the folder with --data-opt data_dir=PATH")
    return FolderStream(Path(data_dir), image_size, channels, max_images, workers)


#: Datasets that can be decoded by workers while training, by registered name.
STREAMING = {"folder": folder_stream}


def streaming_factory(dataset: str, workers: int):
    """The factory to call instead of ``dataset``'s in-memory one when ``--workers`` > 0."""
    if dataset not in STREAMING:
        raise GanlabError(f"--workers applies to image folders decoded from disk (dataset "
                          f"{', '.join(sorted(STREAMING))}); {dataset} is held in memory, so leave --workers at 0")

    def build(**options):
        return STREAMING[dataset](**options, workers=workers)

    return build
