"""Checkpoints: written atomically, read without running any code, checked for corruption.

Writing goes through :func:`ganlab.train.atomic.atomic_write` (temp file, fsync, rename),
so a crash or kill mid-write leaves the previous checkpoint intact.
Reading uses ``torch.load(weights_only=True)``: tensors and plain containers only, so a
file carrying a pickled object that would run code is refused before anything runs.
A CRC-32 over every tensor's bytes and every plain value is stored in the file, because
damage inside a tensor's data still unzips and unpickles cleanly.
"""

from __future__ import annotations

import os
import pickle
import re
import zlib
from pathlib import Path
from typing import Any

import torch

from ganlab.errors import GanlabError
from ganlab.train.atomic import atomic_write

FORMAT_VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    with atomic_write(path) as fh:
        torch.save({"format": FORMAT_VERSION, "checksum": state_checksum(state), **state}, fh)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The state saved by :func:`save_checkpoint`; any problem is one :class:`GanlabError` line."""
    path = Path(path)
    if not path.is_file():
        raise GanlabError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if refused or "not in the allowlist" in str(exc):
            what = f" ({refused.group(1)})" if refused else ""
            raise GanlabError(f"checkpoint {path} holds a Python object{what} that would run code "
                              f"when loaded; refused (only tensors and plain data are loaded)") from None
        raise GanlabError(f"checkpoint {path} is corrupt (not a readable torch file)") from None
    except Exception as exc:  # torch reports damage as RuntimeError, OSError, EOFError, KeyError...
        raise GanlabError(f"checkpoint {path} is truncated or corrupt ({_first_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise GanlabError(f"checkpoint {path} is not a ganlab checkpoint (format {FORMAT_VERSION})")
    stored = state.pop("checksum", None)
    state.pop("format")
    if stored is not None and stored != state_checksum(state):
        raise GanlabError(f"checkpoint {path} is corrupt (checksum mismatch: its data was damaged)")
    return state


def state_checksum(state: Any) -> int:
    """CRC-32 over a nested state: tensors by dtype, shape and bytes; plain values by repr."""
    crc = 0
    for chunk in _chunks(state):
        crc = zlib.crc32(chunk, crc)
    return crc


def _chunks(value: Any):
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        yield f"T{value.dtype}{tuple(value.shape)}".encode()
        yield flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
    elif isinstance(value, dict):
        yield f"D{len(value)}".encode()
        for key in sorted(value, key=repr):
            yield repr(key).encode()
            yield from _chunks(value[key])
    elif isinstance(value, (list, tuple)):
        yield f"L{len(value)}".encode()
        for item in value:
            yield from _chunks(item)
    else:
        yield f"{type(value).__name__}:{value!r}".encode()


def describe_mismatch(exc: BaseException, limit: int = 240) -> str:
    """torch's multi-line ``load_state_dict`` error as one line: the first concrete problem.

    Its first line only says "Error(s) in loading state_dict for X:"; the next names the
    tensor and both shapes, which is what the user needs.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = [lines[0].rstrip(":").replace("Error(s) in loading state_dict for ", "") + ": " + lines[1]]
    text = " ".join(lines[0].split())
    return text if len(text) <= limit else text[:limit] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:120] if text else type(exc).__name__)
