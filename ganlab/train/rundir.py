"""A run on disk: ``runs/<name>/`` with config, metrics, checkpoint, pictures, status.

    config.json       the resolved RunConfig (variant, data, hyperparameters, seed, versions)
    metrics.jsonl     one JSON record per logged step
    checkpoint.pt     full training state, replaced atomically
    samples/          step_000500.png ... (scatter plots for points, grids for images)
    samples.png       the final picture
    status.json       running / finished / interrupted / diverged, with the step
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ganlab.errors import GanlabError
from ganlab.train.atomic import atomic_write, remove_stale_temp_files

REQUIRED_CONFIG_KEYS = ("variant", "dataset", "steps", "hparams", "data_spec")
RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.pt", "samples", "samples.png",
             "status.json", "eval.json", "modes.png")


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON via a temp file + rename, so a reader never sees half a file."""
    with atomic_write(path, "w") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True, allow_nan=True)
        fh.write("\n")


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    checkpoint_path = property(lambda self: self.path / "checkpoint.pt")
    status_path = property(lambda self: self.path / "status.json")
    eval_path = property(lambda self: self.path / "eval.json")
    final_sample_path = property(lambda self: self.path / "samples.png")

    def sample_path(self, step: int) -> Path:
        return self.path / "samples" / f"step_{step:07d}.png"

    def is_run(self) -> bool:
        return self.config_path.is_file()

    # ---- lifecycle -------------------------------------------------------------------------
    def check_new(self, overwrite: bool) -> None:
        """Refuse to mix two runs in one folder unless asked to replace the old one."""
        if self.path.exists() and not self.path.is_dir():
            raise GanlabError(f"--out {self.path} exists and is not a directory")
        if self.holds_run() and not overwrite:
            raise GanlabError(f"{self.path} already holds a run: pass --resume to continue it "
                              f"or --overwrite to replace it")

    def holds_run(self) -> bool:
        return self.is_run() or self.checkpoint_path.exists()

    def prepare_new(self, overwrite: bool) -> None:
        """Make the folder ready for a new run, replacing an old one only with ``overwrite``."""
        self.check_new(overwrite)
        if self.holds_run():
            for name in RUN_FILES:
                target = self.path / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        self.path.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.path)

    def prepare_resume(self) -> None:
        """Before continuing a run: clear what a killed writer left behind."""
        remove_stale_temp_files(self.path)

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise GanlabError(f"{self.path} is not a ganlab run (no config.json)")
        try:
            config = json.loads(self.config_path.read_text())
        except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
            raise GanlabError(f"{self.config_path} is not valid JSON ({exc})") from None
        missing = [k for k in REQUIRED_CONFIG_KEYS if not isinstance(config, dict) or k not in config]
        if missing:
            raise GanlabError(f"{self.config_path} is not a ganlab run config (missing {', '.join(missing)})")
        return config

    def write_config(self, config: dict[str, Any]) -> None:
        write_json_atomic(self.config_path, config)

    def write_status(self, state: str, step: int, message: str = "") -> None:
        write_json_atomic(self.status_path, {"state": state, "step": step, "message": message})

    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    # ---- metrics ---------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as fh:
            fh.write(json.dumps(record, allow_nan=True) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if isinstance(record, dict):
                records.append(record)
        return records

    def truncate_metrics_after(self, step: int) -> None:
        """On resume, drop records logged after the checkpoint (they will be logged again)."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        with atomic_write(self.metrics_path, "w") as fh:
            fh.write("".join(json.dumps(r, allow_nan=True) + "\n" for r in kept))
