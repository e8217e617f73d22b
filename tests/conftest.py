"""Shared fixtures: an in-process CLI runner and the loaded registry."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

# Session fixture ``installed_plugins``: the fixture plugin packages, pip-installed once.
from tests.fixtures.install import installed_plugins  # noqa: F401

REPO = Path(__file__).resolve().parent.parent

# One thread: the test nets are tiny, and on 2 shared cores a second intra-op thread made
# training ~3x slower (measured: 60 vs 159 steps/s on the ring MLP).
torch.set_num_threads(1)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> CliResult:
    """Run ``ganlab ARGS`` in this process (fast: torch is already imported)."""
    from ganlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


def train_run(out: Path, *args: str) -> Path:
    """``ganlab train ARGS --out OUT`` in this process; fails the test unless it succeeds."""
    result = run_cli("train", *args, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    return out


def run_cli_subprocess(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
                       cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m ganlab ARGS`` in a fresh process (exit codes, signals, plugins)."""
    full_env = {"OMP_NUM_THREADS": "1", **os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "ganlab", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cwd)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def registry():
    from ganlab.plugins import get_registry

    return get_registry()


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory):
    """A private cache (classifiers, real features, torch hub) and no network, per test module."""
    root = tmp_path_factory.mktemp("offline_env")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANLAB_CACHE_DIR", str(root / "cache"))
        mp.setenv("GANLAB_OFFLINE", "1")
        mp.setenv("TORCH_HOME", str(root / "torch_home"))
        yield root
