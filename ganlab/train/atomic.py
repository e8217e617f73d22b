"""Atomic file replacement: a reader (or a crash) never sees half a file.

The new content goes to a temporary file in the same folder (same file system, so the
rename is atomic), is flushed to disk, and is renamed over the target. A process killed
mid-write leaves the old file untouched and a stray ``.NAME.*.tmp`` beside it, which
:func:`remove_stale_temp_files` clears on the next run.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _default_file_mode() -> int:
    # mkstemp creates files 0600; a run's files should have the usual 0644-style mode
    # (checkpoints travel between people). Reading the umask means setting it back.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """``with atomic_write(p) as fh: fh.write(...)`` replaces ``p`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _default_file_mode())
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files a killed writer left in ``folder``; returns what was removed."""
    removed = []
    for stray in Path(folder).glob(".*.tmp"):
        if stray.is_file():
            stray.unlink(missing_ok=True)
            removed.append(stray)
    return removed
