"""Ctrl-C and SIGTERM: the run saves a checkpoint, exits cleanly, and --resume finishes it
exactly as an uninterrupted run would have.

The exit code is 128 + the signal number (130 for SIGINT, 143 for SIGTERM), the shell's
convention for "stopped by that signal": scripts can tell an interrupted run from a
finished one (0) and from bad input (2).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ganlab.train.checkpoint import load_checkpoint
from tests.fixtures.runs import QUICK, assert_same_weights, network_weights


def _start_training(run, steps: int) -> subprocess.Popen:
    # Same thread count as this process, so the two halves of the run compute identically.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.Popen([sys.executable, "-m", "ganlab", "train", "vanilla", "--steps", str(steps),
                             "--out", str(run), *QUICK], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _wait_until_training(proc: subprocess.Popen, metrics, timeout: float = 120) -> None:
    """Until the first metrics record is written: the signal handlers are installed by then."""
    deadline = time.monotonic() + timeout
    while not (metrics.is_file() and metrics.stat().st_size > 0):
        if proc.poll() is not None:
            pytest.fail(f"training ended before it could be interrupted: {proc.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail("training did not start in time")
        time.sleep(0.02)


def _metrics_without_timing(run) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "steps_per_s"} for line in lines]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run(sig, tmp_path, cli):
    run = tmp_path / "interrupted"
    proc = _start_training(run, steps=1_000_000)  # far more than it will get to
    try:
        _wait_until_training(proc, run / "metrics.jsonl")
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 128 + sig
    status = json.loads((run / "status.json").read_text())
    stopped_at = status["step"]
    assert status["state"] == "interrupted" and stopped_at >= 5
    assert stderr.strip().splitlines() == [
        f"ganlab: error: stopped by {sig.name} at step {stopped_at}; checkpoint saved, continue with --resume"]
    assert load_checkpoint(run / "checkpoint.pt")["step"] == stopped_at

    # Resume a few steps further; an uninterrupted run to the same step must agree exactly.
    target = stopped_at + 7
    resumed = cli("train", "vanilla", "--out", str(run), "--resume", "--steps", str(target), "-q")
    assert resumed.exit_code == 0, resumed.stderr
    reference = tmp_path / "uninterrupted"
    straight = cli("train", "vanilla", "--steps", str(target), "--out", str(reference), *QUICK)
    assert straight.exit_code == 0, straight.stderr

    assert_same_weights(network_weights(run), network_weights(reference))
    assert json.loads((run / "status.json").read_text()) == {"state": "finished", "step": target, "message": ""}
    # The log has no duplicate or missing records across the interruption.
    assert _metrics_without_timing(run) == _metrics_without_timing(reference)
