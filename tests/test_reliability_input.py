"""Bad input is one line and exit code 2, with nothing on disk changed; an existing run is
never mixed with a new one; a diverging run stops, says where, and keeps its last good
checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ganlab.errors import DivergenceError
from ganlab.interfaces import VariantSpec
from ganlab.plugins import build_plugin_set
from ganlab.train.api import TrainRequest, train
from ganlab.train.checkpoint import load_checkpoint
from ganlab_plugins.vanilla import VanillaObjective
from tests.fixtures.runs import QUICK, snapshot


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory) -> Path:
    """A finished 5-step run that every bad command below points --out at."""
    from tests.conftest import train_run

    return train_run(tmp_path_factory.mktemp("existing") / "run", "vanilla", "--steps", "5", *QUICK)


@pytest.fixture(scope="module")
def data_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("folders")
    (root / "empty").mkdir()
    (root / "not-images").mkdir()
    (root / "not-images" / "cat.png").write_text("this is text, not a PNG")
    (root / "no-image-files").mkdir()
    (root / "no-image-files" / "notes.txt").write_text("hello")
    return {"missing": root / "missing", "empty": root / "empty", "not-images": root / "not-images",
            "no-image-files": root / "no-image-files"}


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganlab: error: "), result.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


# Each: extra `ganlab train` arguments -> a fragment the one-line error must contain.
BAD_TRAIN_ARGS = {
    "unknown variant": (["nosuchvariant"], "unknown variant 'nosuchvariant'; known variants: "),
    "unknown dataset": (["vanilla", "--dataset", "nosuch"], "unknown dataset 'nosuch'"),
    "unknown --set key": (["vanilla", "--set", "lr_dd=1e-4"], "unknown hyperparameter 'lr_dd'"),
    "--set without =": (["vanilla", "--set", "lr_d"], "--set 'lr_d': expected key=value"),
    "float not a number": (["vanilla", "--set", "lr_d=fast"], "--set lr_d='fast': expected float"),
    "int given a fraction": (["vanilla", "--set", "batch_size=1.5"], "--set batch_size='1.5': expected int"),
    "bool not a bool": (["vanilla", "--set", "spectral_norm=maybe"], "expected true/false"),
    "nan learning rate": (["vanilla", "--set", "lr_g=nan"], "expected float"),
    "inf learning rate": (["vanilla", "--set", "lr_g=inf"], "expected float"),
    "zero steps": (["vanilla", "--steps", "0"], "--steps must be positive, got 0"),
    "negative steps": (["vanilla", "--steps", "-3"], "--steps must be positive, got -3"),
    "steps not an int": (["vanilla", "--steps", "many"], "Invalid value for '--steps'"),
    "zero batch size": (["vanilla", "--set", "batch_size=0"], "batch_size must be positive, got 0"),
    "negative batch size": (["vanilla", "--set", "batch_size=-8"], "batch_size must be positive, got -8"),
    "huge batch size": (["vanilla", "--set", "batch_size=1e20"], "batch_size=100000000000000000000 is too large"),
    "zero learning rate": (["vanilla", "--set", "lr_d=0"], "lr_d must be positive, got 0.0"),
    "negative learning rate": (["vanilla", "--set", "lr_g=-2e-4"], "lr_g must be positive, got -0.0002"),
    "batch not a multiple of pack": (["pacgan", "--set", "pack=3"], "batch_size (512) must be a multiple of pack (3)"),
    "pack on a variant that does not pack": (["vanilla", "--set", "pack=2"], "unknown hyperparameter 'pack'"),
    "unknown optimizer": (["vanilla", "--set", "optimizer=adamw"], "unknown optimizer 'adamw'"),
    "negative interval": (["vanilla", "--log-every", "-1"], "--log-every must not be negative"),
    "unknown data option": (["vanilla", "--data-opt", "radius2=3"], "unknown option of dataset ring8 'radius2'"),
    "unknown option": (["vanilla", "--no-such-flag"], "No such option: --no-such-flag"),
}


@pytest.mark.parametrize("case", list(BAD_TRAIN_ARGS), ids=list(BAD_TRAIN_ARGS))
def test_bad_train_input_is_one_line_and_changes_nothing(case, existing_run, cli):
    args, fragment = BAD_TRAIN_ARGS[case]
    before = snapshot(existing_run)
    # --overwrite: even a run the user agreed to replace survives input that was never valid.
    assert_one_line_error(cli("train", *args, "--steps", "3", "--out", str(existing_run), "--overwrite")
                          if "--steps" not in args else
                          cli("train", *args, "--out", str(existing_run), "--overwrite"), fragment)
    assert snapshot(existing_run) == before


@pytest.mark.parametrize("folder,fragment", [
    ("missing", "is not a directory"),
    ("empty", "no image files"),
    ("no-image-files", "no image files"),
    ("not-images", "cat.png is not a readable image"),
])
def test_bad_data_folder_is_one_line_and_changes_nothing(folder, fragment, data_folders, existing_run, cli):
    before = snapshot(existing_run)
    result = cli("train", "vanilla", "--dataset", "folder", "--data-opt", f"data_dir={data_folders[folder]}",
                 "--steps", "3", "--out", str(existing_run), "--overwrite")
    assert_one_line_error(result, fragment)
    assert snapshot(existing_run) == before


@pytest.mark.parametrize("args,fragment", [
    (["eval", "{run}", "--metrics", "nosuch"], "unknown metric 'nosuch'"),
    (["sample", "{run}", "-n", "0"], "-n must be positive, got 0"),
    (["sample", "{run}", "-o", "{run}/pictures.jpg"], "the output must be a .png file"),
    (["sample", "{run}/nowhere"], "is not a ganlab run"),
])
def test_bad_input_to_other_commands(args, fragment, existing_run, cli):
    before = snapshot(existing_run)
    assert_one_line_error(cli(*[a.format(run=existing_run) for a in args]), fragment)
    assert snapshot(existing_run) == before


# ---- output directories -------------------------------------------------------------------------
def test_training_into_an_existing_run_refuses_without_resume_or_overwrite(existing_run, cli):
    before = snapshot(existing_run)
    assert_one_line_error(cli("train", "vanilla", "--steps", "3", "--out", str(existing_run)),
                          "already holds a run: pass --resume to continue it or --overwrite to replace it")
    assert snapshot(existing_run) == before


def test_overwrite_replaces_the_old_run_entirely(existing_run, tmp_path, cli):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(existing_run, run)
    (run / ".checkpoint.pt.abc123.tmp").write_bytes(b"left by a killed writer")
    result = cli("train", "vanilla", "--steps", "3", "--seed", "1", "--out", str(run), "--overwrite", *QUICK)
    assert result.exit_code == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["seed"] == 1
    assert [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())] == [3]
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3
    assert not list(run.glob(".*.tmp"))


def test_out_that_is_a_file_is_refused(tmp_path, cli):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert_one_line_error(cli("train", "vanilla", "--steps", "2", "--out", str(target)), "is not a directory")
    assert target.read_text() == "keep me"


def test_resume_beyond_the_requested_steps_is_refused(existing_run, cli):
    before = snapshot(existing_run)
    assert_one_line_error(cli("train", "vanilla", "--out", str(existing_run), "--resume", "--steps", "2"),
                          "the checkpoint is at step 5, beyond --steps 2")
    assert_one_line_error(cli("train", "vanilla", "--out", str(existing_run), "--resume", "--steps", "9",
                              "--set", "lr_d=1"), "--set is not allowed")
    assert snapshot(existing_run) == before


# ---- divergence ---------------------------------------------------------------------------------
class _PoisonedObjective(VanillaObjective):
    """Vanilla, except that at generator step ``poison_at`` it injects a non-finite value:
    into the loss (``poison=loss``) or, after the update, into G's weights (``poison=weights``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.generator_steps = 0

    def generator_loss(self, fake_scores, real_scores=None):
        loss = super().generator_loss(fake_scores, real_scores)
        if self.hp["poison"] == "loss" and self.generator_steps + 1 == self.hp["poison_at"]:
            return loss * math.nan
        return loss

    def generator_step(self, batch_size):
        stats = super().generator_step(batch_size)
        self.generator_steps += 1
        if self.hp["poison"] == "weights" and self.generator_steps == self.hp["poison_at"]:
            with torch.no_grad():
                next(self.G.parameters()).view(-1)[0] = math.inf
        return stats


@pytest.fixture(scope="module")
def poison_registry():
    registry = build_plugin_set().registry
    registry.current_plugin = "tests"
    registry.add_variant(VariantSpec(
        name="poisoned", objective=_PoisonedObjective, description="vanilla with an injected NaN/inf",
        citation="test fixture", hparams={"g_loss": "non_saturating", "poison": "loss", "poison_at": 0}))
    return registry


@pytest.mark.parametrize("poison,at,ckpt_every,log_every,kept_step", [
    ("loss", 7, 5, 100, 5),    # found at the step-10 checkpoint, which must not be written
    ("weights", 4, 2, 4, 2),   # losses finite; the weights check at the step-4 log finds it
])
def test_divergence_stops_names_the_step_and_keeps_the_last_good_checkpoint(
        poison, at, ckpt_every, log_every, kept_step, poison_registry, tmp_path):
    run = tmp_path / "run"
    request = TrainRequest("poisoned", "ring8", steps=20, out=run, ckpt_every=ckpt_every, log_every=log_every,
                           sample_every=0, overrides={"poison": poison, "poison_at": str(at)})
    with pytest.raises(DivergenceError) as caught:
        train(poison_registry, request)
    message = f"training diverged: non-finite {poison} at step {at}; last good checkpoint kept at {run / 'checkpoint.pt'}"
    assert str(caught.value) == message and caught.value.exit_code == 1
    assert json.loads((run / "status.json").read_text()) == {"state": "diverged", "step": at, "message": message}
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == kept_step
    assert all(torch.isfinite(t).all() for net in state["modules"].values() for t in net.values())


def test_divergence_from_the_command_line(tmp_path, cli):
    run = tmp_path / "run"
    result = cli("train", "vanilla", "--steps", "50", "--set", "lr_d=1e30", "--set", "lr_g=1e30",
                 "--out", str(run), *QUICK)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganlab: error: training diverged: non-finite loss at step ")
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "diverged" and f"at step {status['step']};" in lines[0]
    assert "no checkpoint had been written yet" in lines[0] and not (run / "checkpoint.pt").exists()


# ---- the command line's own error paths -------------------------------------------------------
def test_out_of_memory_is_one_line_exit_1(monkeypatch, cli, tmp_path):
    def allocation_fails(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 2048000000000 bytes.\nmore detail")

    monkeypatch.setattr("ganlab.cli.train.train", allocation_fails)
    result = cli("train", "vanilla", "--steps", "2", "--out", str(tmp_path / "run"))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganlab: error: out of memory: [enforce fail")
    assert lines[0].endswith("(try a smaller batch_size or network)")


def test_a_bug_keeps_its_traceback(monkeypatch, cli, tmp_path):
    def bug(*args, **kwargs):
        raise RuntimeError("an internal bug")

    monkeypatch.setattr("ganlab.cli.train.train", bug)
    # Not turned into a tidy one-liner: a maintainer needs the traceback.
    with pytest.raises(RuntimeError, match="an internal bug"):
        cli("train", "vanilla", "--steps", "2", "--out", str(tmp_path / "run"))


def test_usage_errors_are_one_line_with_a_help_hint(cli):
    result = cli("trian")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "ganlab: error: No such command 'trian'. Did you mean 'train'? (see 'ganlab --help')"]
    assert cli("--version").exit_code == 0 and cli("train", "--help").exit_code == 0
