"""The results store: append-only JSONL that survives a crash mid-write, merged reads."""

from __future__ import annotations

import json

import pytest

from ganlab.bench.store import ResultWriter, load_results, read_file
from ganlab.errors import GanlabError


def rec(key: str, status: str = "ok", **extra):
    return {"key": key, "cell": key, "status": status, "variant": "v", "dataset": "d", "seed": 0,
            "finished_at": extra.pop("finished_at", "2026-01-01T00:00:00"), **extra}


def test_records_round_trip(tmp_path):
    with ResultWriter(tmp_path) as writer:
        writer.append(rec("a", value=1.5))
        writer.append(rec("b", status="diverged"))
    records, bad = read_file(tmp_path / "results.jsonl")
    assert bad == 0
    assert [(r["key"], r["status"]) for r in records] == [("a", "ok"), ("b", "diverged")]
    assert records[0]["value"] == 1.5 and records[0]["schema"] == "ganlab.bench/1"


def test_a_record_cut_by_a_crash_is_ignored_and_never_glues_onto_the_next(tmp_path):
    with ResultWriter(tmp_path) as writer:
        writer.append(rec("a"))
    path = tmp_path / "results.jsonl"
    with open(path, "ab") as fh:  # a crash in the middle of a write
        fh.write(json.dumps(rec("half"))[:25].encode())
    records, _ = read_file(path)
    assert [r["key"] for r in records] == ["a"]  # the fragment has no newline: still being written
    with ResultWriter(tmp_path) as writer:
        writer.append(rec("b"))
    records, bad = read_file(path)
    assert [r["key"] for r in records] == ["a", "b"]
    assert bad == 1  # the fragment, now closed on its own line, is skipped


def test_shards_write_separate_files(tmp_path):
    with ResultWriter(tmp_path, (2, 3)) as writer:
        writer.append(rec("x"))
    assert (tmp_path / "results-shard2of3.jsonl").is_file()


def test_a_second_writer_of_the_same_shard_is_refused(tmp_path):
    with ResultWriter(tmp_path):
        with pytest.raises(GanlabError, match="another bench is already writing"):
            ResultWriter(tmp_path)
    ResultWriter(tmp_path).close()  # free again once the first closed


def test_merging_folders_and_files_keeps_one_record_per_cell(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    with ResultWriter(a) as writer:
        writer.append(rec("k1", status="failed", finished_at="2026-01-01"))
        writer.append(rec("k2", finished_at="2026-01-03"))
    with ResultWriter(b, (1, 2)) as writer:
        writer.append(rec("k1", finished_at="2026-01-02"))  # a retry that succeeded
        writer.append(rec("k2", finished_at="2026-01-01"))  # the same cell run twice
    merged = load_results([a, b / "results-shard1of2.jsonl"])
    assert merged.duplicates == 2
    by_key = {r["key"]: r for r in merged.records}
    assert by_key["k1"]["status"] == "ok"  # ok beats failed
    assert by_key["k2"]["finished_at"] == "2026-01-01"  # the earliest of equal statuses
    assert merged.finished_keys() == {"k1", "k2"}
    assert merged.origin["k1"] == b


def test_failed_cells_are_not_finished(tmp_path):
    with ResultWriter(tmp_path) as writer:
        writer.append(rec("f", status="failed"))
        writer.append(rec("d", status="diverged"))
    assert load_results([tmp_path]).finished_keys() == {"d"}


def test_missing_or_empty_results_are_clear_errors(tmp_path):
    with pytest.raises(GanlabError, match="not found"):
        load_results([tmp_path / "nope"])
    with pytest.raises(GanlabError, match="no bench results"):
        load_results([tmp_path])
    assert load_results([tmp_path], allow_empty=True).records == []
