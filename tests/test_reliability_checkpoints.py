"""Checkpoints: atomic writes survive a kill, code hidden in a file never runs, damaged or
mismatched files are one line naming the file (exit 2) and change nothing on disk."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganlab.errors import GanlabError
from ganlab.train.checkpoint import load_checkpoint, save_checkpoint
from tests.fixtures.runs import QUICK, assert_same_weights, network_weights, snapshot


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A 5-step vanilla run on ring8 (trained once; tests work on copies)."""
    from tests.conftest import train_run

    return train_run(tmp_path_factory.mktemp("base") / "run", "vanilla", "--steps", "5", *QUICK)


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganlab: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ---- atomic writes ----------------------------------------------------------------------------
# The child trains 4 steps with a checkpoint every 2. Its second checkpoint write stops half
# way (the bytes are flushed to the temporary file), drops a flag file, and sleeps: the test
# then SIGKILLs it in the middle of the write.
_SLOW_SECOND_WRITE = """
import io, os, sys, time
import torch

real_save, calls = torch.save, []

def save_half_then_hang(obj, fh, *args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
        return real_save(obj, fh, *args, **kwargs)
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    fh.flush()
    open(os.environ["WRITING_FLAG"], "w").close()
    time.sleep(600)

torch.save = save_half_then_hang
from ganlab.cli import main
main(sys.argv[1:])
"""


def test_kill_during_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, cli):
    run, flag = tmp_path / "run", tmp_path / "writing"
    env = {**os.environ, "WRITING_FLAG": str(flag), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    def args(out: Path) -> list[str]:
        return ["train", "vanilla", "--steps", "4", "--out", str(out), "--ckpt-every", "2",
                "--log-every", "1", "--sample-every", "0", "-q"]

    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SECOND_WRITE, *args(run)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child never reached its second checkpoint"
            time.sleep(0.02)
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    strays = list(run.glob(".checkpoint.pt.*.tmp"))
    assert len(strays) == 1 and strays[0].stat().st_size > 0  # it really died mid-write
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 2  # the previous one, intact

    # Nothing was lost: resuming finishes the run exactly as if it had never been killed.
    resumed = cli("train", "vanilla", "--out", str(run), "--resume", "--steps", "4", "-q")
    assert resumed.exit_code == 0, resumed.stderr
    assert not list(run.glob(".*.tmp"))  # the stray temporary file was cleared
    reference = tmp_path / "reference"
    straight = cli(*args(reference))
    assert straight.exit_code == 0, straight.stderr
    assert_same_weights(network_weights(run), network_weights(reference))


def test_failed_write_leaves_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()

    def disk_full(obj, fh, *args, **kwargs):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_checkpoint_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_checkpoint({"step": 0}, tmp_path / "c.pt")
    finally:
        os.umask(old)
    # mkstemp alone would give 0600: a checkpoint meant to be shared could not be read by others.
    assert stat.S_IMODE((tmp_path / "c.pt").stat().st_mode) == 0o644


def test_round_trip_keeps_every_value(tmp_path):
    state = {"step": 7, "modules": {"G": {"w": torch.randn(4, 3), "b": torch.zeros(3, dtype=torch.bool)}},
             "rng": {"torch": torch.get_rng_state()}, "ema": None, "names": ["a", "b"], "lr": 2e-4}
    save_checkpoint(state, tmp_path / "c.pt")
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded.keys() == state.keys()
    assert torch.equal(loaded["modules"]["G"]["w"], state["modules"]["G"]["w"])
    assert torch.equal(loaded["rng"]["torch"], state["rng"]["torch"])
    assert (loaded["step"], loaded["ema"], loaded["names"], loaded["lr"]) == (7, None, ["a", "b"], 2e-4)


# ---- weights_only: a file that would run code is refused before anything runs ------------------
class _RunsCodeWhenUnpickled:
    """Unpickling this calls exec(), which writes the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def test_checkpoint_carrying_code_is_refused_and_the_code_never_runs(run_copy, tmp_path, cli):
    marker = tmp_path / "code-ran"
    checkpoint = run_copy / "checkpoint.pt"
    state = load_checkpoint(checkpoint)
    state["objective"] = {"payload": _RunsCodeWhenUnpickled(marker)}
    torch.save({"format": 1, **state}, checkpoint)  # a well-formed ganlab checkpoint otherwise
    before = snapshot(run_copy)

    for args in (("sample", str(run_copy), "-o", str(tmp_path / "s.png")),
                 ("train", "vanilla", "--out", str(run_copy), "--resume", "--steps", "9", "-q"),
                 ("eval", str(run_copy), "--metrics", "modes", "--num-samples", "100")):
        line = assert_one_line_error(cli(*args), str(checkpoint), "exec", "would run code")
        assert not marker.exists(), f"{args[0]} ran the payload"
    assert line.endswith("refused (only tensors and plain data are loaded)")
    assert snapshot(run_copy) == before
    # Control: the payload is real, and an unsafe load would have run it.
    torch.load(checkpoint, weights_only=False)
    assert marker.read_text() == "code ran"


# ---- damaged files: one line naming the file ---------------------------------------------------
def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    damaged = {
        "empty": b"",
        "truncated-half": data[: len(data) // 2],
        "truncated-end": data[:-1],
        "random-bytes": bytes(range(256)) * 8,
        "text": b"not a checkpoint\n",
        # One byte inside tensor data: the file still unzips and unpickles; the checksum catches it.
        "flipped-byte": data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:],
    }[how]
    path.write_bytes(damaged)


@pytest.mark.parametrize("how", ["empty", "truncated-half", "truncated-end", "random-bytes", "text",
                                 "flipped-byte"])
def test_damaged_checkpoint_is_one_line_naming_the_file(how, run_copy, tmp_path, cli):
    checkpoint = run_copy / "checkpoint.pt"
    _damage(checkpoint, how)
    before = snapshot(run_copy)
    assert_one_line_error(cli("sample", str(run_copy), "-o", str(tmp_path / "s.png")), str(checkpoint))
    assert_one_line_error(cli("train", "vanilla", "--out", str(run_copy), "--resume", "--steps", "9"),
                          str(checkpoint))
    assert snapshot(run_copy) == before
    with pytest.raises(GanlabError, match="corrupt"):
        load_checkpoint(checkpoint)


def test_missing_checkpoint_and_missing_config(run_copy, tmp_path, cli):
    (run_copy / "checkpoint.pt").unlink()
    assert_one_line_error(cli("sample", str(run_copy), "-o", str(tmp_path / "s.png")), "not found")
    assert_one_line_error(cli("train", "vanilla", "--out", str(run_copy), "--resume"), "no checkpoint")
    (run_copy / "config.json").write_text('{"variant": "vanilla"}')
    assert_one_line_error(cli("sample", str(run_copy)), "config.json", "missing dataset")
    assert_one_line_error(cli("sample", str(tmp_path / "nowhere")), "is not a ganlab run")


# ---- mismatched checkpoints: one line, exit 2, nothing changed ---------------------------------
def test_checkpoint_with_other_shapes_is_refused(finished_run, tmp_path, cli):
    other = tmp_path / "narrow"
    trained = cli("train", "vanilla", "--steps", "3", "--set", "hidden=16", "--out", str(other), *QUICK)
    assert trained.exit_code == 0, trained.stderr
    shutil.copy(finished_run / "checkpoint.pt", other / "checkpoint.pt")  # hidden=128 weights
    before = snapshot(other)
    assert_one_line_error(cli("train", "vanilla", "--out", str(other), "--resume", "--steps", "9"),
                          str(other / "checkpoint.pt"), "does not match", "size mismatch")
    assert_one_line_error(cli("sample", str(other), "-o", str(tmp_path / "s.png")), "does not match")
    assert snapshot(other) == before


def test_checkpoint_of_another_variant_is_refused(run_copy, tmp_path, cli):
    checkpoint = run_copy / "checkpoint.pt"
    state = load_checkpoint(checkpoint)
    state["config"]["variant"] = "some-other-gan"
    save_checkpoint(state, checkpoint)
    before = snapshot(run_copy)
    assert_one_line_error(cli("train", "vanilla", "--out", str(run_copy), "--resume", "--steps", "9"),
                          "is for variant 'some-other-gan'")
    assert_one_line_error(cli("sample", str(run_copy), "-o", str(tmp_path / "s.png")),
                          "is for variant 'some-other-gan'")
    assert snapshot(run_copy) == before


def test_resume_with_another_variant_name_is_refused(run_copy, cli):
    before = snapshot(run_copy)
    assert_one_line_error(cli("train", "nosuchvariant", "--out", str(run_copy), "--resume"),
                          "is a 'vanilla' run, not 'nosuchvariant'")
    assert json.loads((run_copy / "status.json").read_text())["state"] == "finished"
    assert snapshot(run_copy) == before
