"""Datasets (all offline) and the default nets' shapes."""

from __future__ import annotations

import gzip
import math
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data import images, mixtures
from ganlab.errors import GanlabError
from ganlab.nets import default_nets
from ganlab.config import common_defaults

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def test_ring8_has_eight_distinct_modes_on_the_unit_circle():
    ring = mixtures.ring()
    centres = ring.centres
    assert centres.shape == (8, 2)
    assert torch.allclose(centres.norm(dim=1), torch.ones(8), atol=1e-6)
    angles = sorted(math.atan2(y, x) % (2 * math.pi) for x, y in centres.tolist())
    assert angles == pytest.approx([2 * math.pi * k / 8 for k in range(8)], abs=1e-6)
    assert ring.spec.mode_std == 0.01 and ring.spec.name == "ring8"


def test_grid25_means_and_sampled_spread():
    grid = mixtures.grid()
    expected = {(2.0 * i - 4, 2.0 * j - 4) for i in range(5) for j in range(5)}
    assert {tuple(c) for c in grid.centres.tolist()} == expected
    x, labels = grid.batch(20000, torch.Generator().manual_seed(0))
    assert labels is None
    nearest = torch.cdist(x, grid.centres).argmin(dim=1)
    residual = x - grid.centres[nearest]
    assert residual.std().item() == pytest.approx(0.05, rel=0.05)
    counts = torch.bincount(nearest, minlength=25).float() / len(x)
    assert torch.allclose(counts, torch.full((25,), 0.04), atol=0.01)


def test_custom_mixture_weights_and_bad_input():
    mix = mixtures.custom_mixture("[[0,0],[10,10]]", 0.1, "[3,1]")
    x, _ = mix.batch(8000, torch.Generator().manual_seed(1))
    share_first = (x.norm(dim=1) < 1).float().mean().item()
    assert share_first == pytest.approx(0.75, abs=0.02)
    with pytest.raises(GanlabError, match="JSON"):
        mixtures.custom_mixture("[[0,0],", 0.1)
    with pytest.raises(GanlabError, match="std must be positive"):
        mixtures.custom_mixture("[[0,0]]", 0.0)


def test_batches_are_reproducible_from_the_generator_state():
    ring = mixtures.ring()
    rng = torch.Generator().manual_seed(5)
    state = rng.get_state()
    a, _ = ring.batch(16, rng)
    rng.set_state(state)
    b, _ = ring.batch(16, rng)
    assert torch.equal(a, b)


def test_digits_range_labels_split_and_resize():
    full = images.digits()
    assert full.images.shape == (1797, 1, 8, 8) and full.spec.num_classes == 10
    assert full.images.min() >= -1 and full.images.max() <= 1
    train, test = images.digits(split="train"), images.digits(split="test")
    assert len(train) + len(test) == 1797 and len(test) == 360
    big = images.digits(image_size=16)
    assert big.spec.shape == (1, 16, 16)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_mnist_reads_whichever_split_is_present(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(5))
    data = images.mnist(data_dir=str(tmp_path))
    assert data.images.shape == (5, 1, 28, 28) and data.labels.tolist() == [0, 1, 2, 3, 4]
    assert torch.allclose(data.images[0, 0], torch.from_numpy(imgs[0]).float() / 127.5 - 1)
    with pytest.raises(GanlabError, match="train split not found"):
        images.mnist(data_dir=str(tmp_path), split="train")


def test_mnist_missing_folder_says_where_to_put_files(tmp_path):
    with pytest.raises(GanlabError) as info:
        images.mnist(data_dir=str(tmp_path / "nowhere"))
    message = str(info.value)
    assert "\n" not in message and "t10k-images-idx3-ubyte.gz" in message and "nowhere" in message


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="the shared MNIST test split is not on this machine")
def test_mnist_shared_test_split():
    data = images.mnist(data_dir=str(SHARED_MNIST))
    assert data.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.labels).tolist()[:2] == [980, 1135]


def test_cifar10_batches_and_refusal_of_code_in_the_pickle(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {b"data": rng.integers(0, 256, size=(4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(entry))
    data = images.cifar10(data_dir=str(tmp_path))
    assert data.images.shape == (20, 3, 32, 32) and data.spec.num_classes == 10

    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(GanlabError, match="cannot read"):
        images.cifar10(data_dir=str(tmp_path), split="test")
    assert not (tmp_path / "pwned").exists()


def test_image_folder_classes_and_errors(tmp_path):
    for cls, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 30), colour).save(tmp_path / cls / f"{i}.png")
    data = images.image_folder(data_dir=str(tmp_path), image_size=16)
    assert data.images.shape == (6, 3, 16, 16) and data.spec.num_classes == 2
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.images[0, 0].mean().item() == pytest.approx(1.0) and data.images[0, 2].mean().item() == pytest.approx(-1.0)
    (tmp_path / "dogs" / "broken.png").write_text("not an image")
    with pytest.raises(GanlabError, match="broken.png is not a readable image"):
        images.image_folder(data_dir=str(tmp_path), image_size=16)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GanlabError, match="no image files"):
        images.image_folder(data_dir=str(empty))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [8, 12, 16, 28, 32, 64])
def test_dcgan_nets_cover_8_to_64_px(size, channels):
    from ganlab.interfaces import DataSpec

    spec = DataSpec("x", "image", (channels, size, size), num_classes=10)
    hp = {**common_defaults(), "base_channels": 8, "conditional": True}
    g, d = default_nets(spec, hp)
    z = torch.randn(4, g.latent_dim)
    labels = torch.tensor([0, 1, 2, 3])
    x = g(z, labels)
    assert x.shape == (4, channels, size, size) and x.abs().max() <= 1
    assert d(x, labels).shape == (4,)


def test_dcgan_nets_reject_out_of_range_sizes():
    from ganlab.interfaces import DataSpec

    with pytest.raises(GanlabError, match="8 to 64 px"):
        default_nets(DataSpec("x", "image", (1, 128, 128)), common_defaults())


def test_minibatch_std_feature_sees_batch_variance():
    from ganlab.nets import MinibatchStd

    layer = MinibatchStd(group_size=4)
    same = torch.ones(8, 3)
    out = layer(same)
    assert out.shape == (8, 4) and torch.allclose(out[:, -1], torch.full((8,), 1e-4), atol=1e-4)
    spread = torch.arange(24.0).reshape(8, 3)
    assert (layer(spread)[:, -1] > 1).all()
