"""GPU fast-path flags on a CPU machine: each one works here or is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data.images import image_folder
from ganlab.data.loader import FolderStream, folder_stream
from ganlab.errors import GanlabError
from ganlab.plugins import get_registry
from ganlab.train import fastpath
from ganlab.train.api import TrainRequest, train

QUICK = ["--steps", "4", "--log-every", "2", "--sample-every", "0", "--ckpt-every", "0", "-q"]


def refused(result, fragment: str) -> None:
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def config_of(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


# ---- --device ----------------------------------------------------------------------------------
def test_missing_or_unknown_device_is_refused_in_one_line(cli, tmp_path):
    missing = "cuda:99" if torch.cuda.is_available() else "cuda"
    refused(cli("train", "vanilla", "--device", missing, "--out", str(tmp_path / "a"), *QUICK),
            f"--device {missing}:")
    refused(cli("train", "vanilla", "--device", "gpu0", "--out", str(tmp_path / "b"), *QUICK),
            "--device 'gpu0' is not a torch device")
    refused(cli("train", "vanilla", "--device", "meta", "--out", str(tmp_path / "c"), *QUICK),
            "ganlab trains on cpu, cuda or mps, not meta")
    assert not any(tmp_path.iterdir())  # refused before anything was written


# ---- --precision -------------------------------------------------------------------------------
def test_fp16_is_refused_and_bf16_trains_on_cpu(cli, tmp_path):
    refused(cli("train", "vanilla", "--precision", "fp16", "--out", str(tmp_path / "a"), *QUICK),
            "--precision must be one of fp32, bf16, got 'fp16'")
    result = cli("train", "vanilla", "--dataset", "digits", "--precision", "bf16",
                 "--out", str(tmp_path / "b"), *QUICK)
    assert result.exit_code == 0, result.stderr
    assert config_of(tmp_path / "b")["precision"] == "bf16"


def test_bf16_runs_the_networks_in_bfloat16_and_hands_back_float32(tmp_path):
    trainer, _ = train(get_registry(), TrainRequest(
        variant="vanilla", dataset="digits", steps=1, out=tmp_path, precision="bf16", sample_every=0))
    objective = trainer.objective
    assert isinstance(objective.D, fastpath.TrainingNet)
    seen = []
    first_conv = next(m for m in objective.D.net.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    real, labels = trainer.dataset.batch(8, torch.Generator().manual_seed(0))
    scores = objective.score(real, None)
    assert seen == [torch.bfloat16] and scores.dtype == torch.float32
    assert next(objective.D.parameters()).dtype == torch.float32  # the weights stay float32
    fake = objective.generate(4)
    assert fake.dtype == torch.float32 and fake.shape == (4, 1, 8, 8)


# ---- --channels-last ---------------------------------------------------------------------------
def test_channels_last_trains_conv_nets_and_is_refused_for_points(cli, tmp_path):
    refused(cli("train", "vanilla", "--dataset", "ring8", "--channels-last", "--out", str(tmp_path / "a"),
                *QUICK), "--channels-last is a memory layout for conv nets on images; ring8 holds points")
    result = cli("train", "vanilla", "--dataset", "digits", "--channels-last", "--out", str(tmp_path / "b"),
                 *QUICK)
    assert result.exit_code == 0, result.stderr
    assert config_of(tmp_path / "b")["channels_last"] is True


def test_channels_last_converts_weights_and_inputs(tmp_path):
    trainer, _ = train(get_registry(), TrainRequest(
        variant="vanilla", dataset="digits", steps=1, out=tmp_path, channels_last=True, sample_every=0))
    conv = next(m for m in trainer.objective.D.net.modules() if isinstance(m, torch.nn.Conv2d)
                and m.weight.shape[-1] > 1 and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    inputs = []
    trainer.objective.D.net.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    trainer.objective.score(torch.zeros(2, 1, 8, 8), None)
    assert inputs[0].is_contiguous(memory_format=torch.channels_last)


# ---- --compile ---------------------------------------------------------------------------------
def test_compile_wraps_each_trained_network_and_checkpoints_stay_plain(tmp_path, monkeypatch):
    compiled = []

    def fake_compile(module, **kwargs):  # real compilation takes ~20 s a net here: see the slow test
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    trainer, _ = train(get_registry(), TrainRequest(
        variant="vanilla", dataset="ring8", steps=2, out=tmp_path, compile=True, sample_every=0))
    raw = {name: m.net for name, m in trainer.objective.modules().items()}
    assert compiled == [raw["G"], raw["D"]]
    assert trainer.objective.G.latent_dim == raw["G"].latent_dim  # attributes reach the network
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert list(state["modules"]["D"]) == list(raw["D"].state_dict())
    assert config_of(tmp_path)["compile"] is True


@pytest.mark.slow
def test_compile_really_trains_on_cpu_and_refuses_double_backward(cli, tmp_path):
    result = cli("train", "vanilla", "--dataset", "ring8", "--compile", "--set", "hidden=16",
                 "--out", str(tmp_path / "a"), *QUICK)
    assert result.exit_code == 0, result.stderr
    refused(cli("train", "r1", "--dataset", "ring8", "--compile", "--set", "hidden=16",
                "--out", str(tmp_path / "b"), *QUICK),
            "--compile: this variant differentiates a gradient (double backward")


# ---- resume keeps the flags ----------------------------------------------------------------------
def test_resume_trains_with_the_saved_fast_path_settings(cli, tmp_path):
    run = tmp_path / "run"
    first = cli("train", "vanilla", "--dataset", "digits", "--precision", "bf16", "--channels-last",
                "--out", str(run), *QUICK)
    assert first.exit_code == 0, first.stderr
    args = [a if a != "4" else "6" for a in QUICK]
    trainer_configs = []
    from ganlab.train import loop

    original = loop.Trainer.__init__

    def spy(self, registry, config, *rest, **kwargs):
        trainer_configs.append(config)
        original(self, registry, config, *rest, **kwargs)

    loop.Trainer.__init__ = spy
    try:
        again = cli("train", "vanilla", "--resume", "--out", str(run), *args)
    finally:
        loop.Trainer.__init__ = original
    assert again.exit_code == 0, again.stderr
    assert trainer_configs[0].precision == "bf16" and trainer_configs[0].channels_last is True
    assert config_of(run)["precision"] == "bf16"
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 6


# ---- --workers: the image-folder stream ---------------------------------------------------------
@pytest.fixture
def image_tree(tmp_path) -> Path:
    """14 small images of two sizes in two class folders (non-square: the crop matters)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for i in range(14):
        folder = root / ("cats" if i % 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        shape = (20, 14, 3) if i % 3 else (9, 11, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return root


def test_worker_stream_gives_exactly_the_in_memory_samples(image_tree):
    memory = image_folder(str(image_tree), image_size=8)
    stream = folder_stream(str(image_tree), image_size=8, workers=2)
    assert stream.spec == memory.spec and len(stream) == 14
    rng_a, rng_b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    try:
        for _ in range(4):
            x_mem, y_mem = memory.batch(6, rng_a)
            x_str, y_str = stream.batch(6, rng_b)
            assert torch.equal(x_mem, x_str) and torch.equal(y_mem, y_str)
        # Resume resets the generator: the stream drops what it decoded ahead and follows.
        rng_a.manual_seed(9)
        rng_b.manual_seed(9)
        for _ in range(2):
            assert torch.equal(memory.batch(6, rng_a)[0], stream.batch(6, rng_b)[0])
        assert torch.equal(memory.batch(3, rng_a)[0], stream.batch(3, rng_b)[0])  # another size
    finally:
        stream.close()


def test_worker_stream_decodes_only_its_rank_rows(image_tree):
    memory = image_folder(str(image_tree), image_size=8)
    stream = folder_stream(str(image_tree), image_size=8, workers=1)
    stream.select_shard(1, 2)
    try:
        whole, _ = memory.batch(8, torch.Generator().manual_seed(2))
        mine, _ = stream.batch(4, torch.Generator().manual_seed(2))
        assert torch.equal(mine, whole[4:])
    finally:
        stream.close()


def test_workers_train_an_image_folder_and_are_refused_for_in_memory_data(cli, image_tree, tmp_path):
    refused(cli("train", "vanilla", "--dataset", "digits", "--workers", "2", "--out", str(tmp_path / "a"),
                *QUICK), "--workers applies to image folders decoded from disk")
    result = cli("train", "vanilla", "--dataset", "folder", "--data-opt", f"data_dir={image_tree}",
                 "--data-opt", "image_size=8", "--workers", "2", "--set", "batch_size=4",
                 "--out", str(tmp_path / "b"), *QUICK)
    assert result.exit_code == 0, result.stderr
    assert config_of(tmp_path / "b")["workers"] == 2


def test_a_broken_file_in_the_stream_is_one_line(image_tree):
    (image_tree / "cats" / "99.png").write_bytes(b"not a png")
    stream = folder_stream(str(image_tree), image_size=8, workers=1)
    try:
        with pytest.raises(GanlabError) as caught:
            for seed in range(20):  # some batch draws the broken file
                stream.batch(14, torch.Generator().manual_seed(seed))
        message = str(caught.value)
        assert "\n" not in message and message.startswith("folder: ") and "99.png is not a readable image" in message
    finally:
        stream.close()
    with pytest.raises(GanlabError, match="must be at least 1"):
        FolderStream(image_tree, 8, 3, 100, workers=0)
