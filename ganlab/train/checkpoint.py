"""Checkpoints: written atomically, read without running any code.

Writing goes to a temporary file in the same folder, is flushed to disk, then renamed
over the old file, so a crash mid-write leaves the previous checkpoint intact.
Reading uses ``torch.load(weights_only=True)``: tensors and plain containers only, so a
file carrying a pickled object that would run code is refused.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from ganlab.errors import GanlabError

FORMAT_VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT_VERSION, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise GanlabError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses arbitrary objects; the first line of torch's message names it.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe content"
        if "weights_only" in str(exc) or "Unsupported" in str(exc) or "global" in str(exc).lower():
            raise GanlabError(f"checkpoint {path} holds objects other than tensors and plain data; "
                              f"refused to load it (it could run code)") from None
        raise GanlabError(f"checkpoint {path} is corrupt: {reason}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanlabError(f"checkpoint {path} is truncated or corrupt ({reason[:120]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise GanlabError(f"checkpoint {path} is not a ganlab checkpoint (format {FORMAT_VERSION})")
    return state
