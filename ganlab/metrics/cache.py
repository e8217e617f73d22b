"""The on-disk cache of evaluation artefacts: trained domain classifiers, real-data features.

Everything lives under ``$GANLAB_CACHE_DIR`` (default ``~/.cache/ganlab``). Entries are
named by a hash of everything that determines their content, so a stale entry can never
be returned for different data, sizes, extractors or weights. Files hold tensors and
plain data only and are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CACHE_ENV = "GANLAB_CACHE_DIR"


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "ganlab"


def key_hash(payload: Any, length: int = 16) -> str:
    """A short stable hash of a JSON-able description."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_atomic(payload: Any, path: Path) -> None:
    """torch.save through a temp file + rename: concurrent evals never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_entry(path: Path) -> Any | None:
    """A cached entry, or None when absent or unreadable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a corrupt or foreign file is treated as a miss, never trusted
        return None
