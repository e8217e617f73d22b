"""Bench results: append-only JSONL, one file per shard, safe against crashes.

Each finished cell is one line, written with a single ``write`` on a file opened in
append mode and then fsynced. A crash can at worst leave a last line without its
newline; readers ignore such a fragment, and the next writer starts on a fresh line so
the fragment never glues onto a good record. Records are never rewritten.

Reading merges any number of files and folders; the same cell found twice (a shard run
twice, or copied results) is kept once.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganlab.errors import GanlabError

SCHEMA = "ganlab.bench/1"
#: Cells with these statuses are finished; a "failed" cell is retried by the next run.
FINISHED = ("ok", "diverged")
_STATUS_RANK = {"ok": 0, "diverged": 1, "failed": 2}


def results_file_name(shard: tuple[int, int]) -> str:
    index, count = shard
    return "results.jsonl" if count == 1 else f"results-shard{index}of{count}.jsonl"


class ResultWriter:
    """Appends records to one shard's file; holds a lock so two processes never write
    the same shard file at once."""

    def __init__(self, results_dir: str | os.PathLike, shard: tuple[int, int] = (1, 1)):
        self.dir = Path(results_dir)
        if self.dir.exists() and not self.dir.is_dir():
            raise GanlabError(f"--results {self.dir} exists and is not a directory")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / results_file_name(shard)
        self._lock_fh = open(self.dir / f".{self.path.name}.lock", "w")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise GanlabError(f"another bench is already writing {self.path}; wait for it or "
                              f"use another --results folder") from None

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps({"schema": SCHEMA, **record}, sort_keys=True, allow_nan=True) + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if _ends_without_newline(fd):
                line = b"\n" + line  # close a fragment left by a crash, on its own line
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        if not self._lock_fh.closed:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _ends_without_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def read_file(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The complete records of one file and how many lines were unreadable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GanlabError(f"cannot read results file {path}: {exc.strerror}") from None
    lines = data.split(b"\n")
    if lines and lines[-1]:
        lines = lines[:-1]  # no newline yet: a record still being written or cut by a crash
    records, bad = [], 0
    for raw in lines:
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            bad += 1
            continue
        if not isinstance(record, dict) or record.get("schema") != SCHEMA or "key" not in record:
            bad += 1
            continue
        records.append(record)
    return records, bad


def result_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders to the results*.jsonl files directly inside them."""
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(path.glob("results*.jsonl")))
        elif path.is_file():
            files.append(path)
        else:
            raise GanlabError(f"results {path} not found")
    return files


@dataclass
class ResultSet:
    """Merged records, one per cell, with where each came from."""

    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    duplicates: int = 0
    unreadable: int = 0
    #: Folder of the file each record came from (run folders are relative to it).
    origin: dict[str, Path] = field(default_factory=dict)

    def finished_keys(self) -> set[str]:
        return {r["key"] for r in self.records if r.get("status") in FINISHED}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def run_path(self, record: dict[str, Any]) -> Path | None:
        if not record.get("run"):
            return None
        return self.origin[record["key"]] / record["run"]


def load_results(paths: Iterable[str | os.PathLike], allow_empty: bool = False) -> ResultSet:
    """Read and merge results; for a cell seen more than once keep the best status
    (ok > diverged > failed), then the earliest finished."""
    files = result_files(paths)
    best: dict[str, tuple[tuple, dict[str, Any], Path]] = {}
    result = ResultSet(files=files)
    for order, path in enumerate(files):
        records, bad = read_file(path)
        result.unreadable += bad
        for line_no, record in enumerate(records):
            rank = (_STATUS_RANK.get(record.get("status"), 3), str(record.get("finished_at", "")),
                    order, line_no)
            key = record["key"]
            if key in best:
                result.duplicates += 1
                if rank >= best[key][0]:
                    continue
            best[key] = (rank, record, path.parent)
    if not best and not allow_empty:
        where = ", ".join(str(p) for p in files) or "the given paths"
        raise GanlabError(f"no bench results found in {where}")
    # A stable order independent of which file a record came from.
    for key in sorted(best, key=lambda k: _record_order(best[k][1])):
        _, record, folder = best[key]
        result.records.append(record)
        result.origin[key] = folder
    return result


def _record_order(record: dict[str, Any]) -> tuple:
    return (record.get("suite", ""), record.get("dataset", ""), record.get("variant", ""),
            record.get("label", ""), record.get("steps", 0), record.get("seed", 0), record["key"])
