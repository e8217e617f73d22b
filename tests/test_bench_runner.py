"""Running suites: resume without loss or repeats, divergence, shards, parallel jobs.

Cells are tiny (16-unit MLPs, 40 steps) and most tests use a stand-in evaluator that
scores the trained generator with the mixture mode statistics, so they stay fast and do
not depend on the feature-space metrics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ganlab.bench import runner
from ganlab.bench.leaderboard import write_leaderboard
from ganlab.bench.runner import run_bench
from ganlab.bench.store import load_results, read_file
from ganlab.bench.suite import suite_from_dict
from ganlab.errors import DivergenceError
from ganlab.metrics.modes import mixture_mode_stats
from ganlab.train.api import generate, load_generator

TINY = {"name": "tiny", "variants": ["vanilla"], "datasets": ["ring8", "grid25"], "seeds": [0, 1],
        "steps": 40, "log_every": 10, "eval_every": 20,
        "set": {"hidden": 16, "latent_dim": 8, "batch_size": 64},
        "sweep": [{"g_loss": "saturating"}, {"g_loss": "non_saturating"}]}


def mode_evaluator(registry, cell, run_path, device):
    """Stand-in for evaluate_run: the mode statistics of 500 seeded samples."""
    run = load_generator(registry, run_path)
    samples, _ = generate(run.generator, 500, cell.eval_seed)
    stats = mixture_mode_stats(samples, run.data_spec)
    protocol = {"num_generated": 500, "threshold_std": 3, "seed": cell.eval_seed}
    return {"checkpoint_step": run.step,
            "results": [{"metric": m, "value": stats[m], "protocol": protocol}
                        for m in ("modes_covered", "high_quality", "reverse_kl")]}


def bench(registry, folder, suite=TINY, **kwargs):
    return run_bench(registry, suite_from_dict(suite), folder, evaluate=mode_evaluator, **kwargs)


def test_a_bench_writes_one_record_per_cell_with_curves(registry, tmp_path):
    summary = bench(registry, tmp_path)
    assert (summary.total, summary.ran, summary.skipped) == (8, 8, 0)
    records, bad = read_file(tmp_path / "results.jsonl")
    assert bad == 0 and len(records) == 8 and {r["status"] for r in records} == {"ok"}
    record = records[0]
    assert record["checkpoint_step"] == 40
    assert record["hparams"]["hidden"] == 16 and record["hparams"]["g_loss"] == "saturating"
    assert record["curve"]["step"] == [10, 20, 30, 40]
    assert record["curve"]["modes_covered"][0] is None and record["curve"]["modes_covered"][1] is not None
    assert len(record["curve"]["mode_counts"][1]) == 8  # ring8: one count per mode
    assert (tmp_path / record["run"] / "samples.png").is_file()


def test_stopping_half_way_and_restarting_loses_nothing_and_repeats_nothing(registry, tmp_path):
    class Stop(Exception):
        pass

    def stop_after_three(record, done, total):
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        bench(registry, tmp_path, on_record=stop_after_three)
    path = tmp_path / "results.jsonl"
    before = path.read_bytes()
    assert len(read_file(path)[0]) == 3
    summary = bench(registry, tmp_path)
    assert (summary.skipped, summary.ran) == (3, 5)
    after = path.read_bytes()
    assert after.startswith(before)  # finished records are never rewritten
    keys = [r["key"] for r in read_file(path)[0]]
    assert len(keys) == 8 and len(set(keys)) == 8
    assert bench(registry, tmp_path).ran == 0  # a finished bench runs nothing


def test_a_diverged_cell_is_recorded_and_the_bench_goes_on(registry, tmp_path, monkeypatch):
    real_train = runner.train

    def train(registry, request, callbacks=None):
        if "grid25-s1" in str(request.out):
            raise DivergenceError("training diverged: non-finite loss at step 7")
        return real_train(registry, request, callbacks=callbacks)

    monkeypatch.setattr(runner, "train", train)
    summary = bench(registry, tmp_path)
    assert (summary.ran, summary.diverged) == (8, 2)
    diverged = [r for r in read_file(tmp_path / "results.jsonl")[0] if r["status"] == "diverged"]
    assert {r["dataset"] for r in diverged} == {"grid25"} and "step 7" in diverged[0]["message"]
    monkeypatch.undo()
    assert bench(registry, tmp_path).ran == 0  # diverged is a finished result, not retried


def test_a_failed_cell_is_recorded_and_retried_by_the_next_run(registry, tmp_path, monkeypatch):
    def broken(registry, cell, run_path, device):
        if cell.seed == 1:
            raise RuntimeError("metric exploded")
        return mode_evaluator(registry, cell, run_path, device)

    summary = run_bench(registry, suite_from_dict(TINY), tmp_path, evaluate=broken)
    assert summary.failed == 4
    assert "RuntimeError: metric exploded" in summary.records[1]["message"]
    again = bench(registry, tmp_path)
    assert (again.ran, again.failed) == (4, 0)  # trained already: only evaluated again
    assert load_results([tmp_path]).finished_keys() == {c.key for c in suite_from_dict(TINY).cells}


def test_a_cell_cut_off_mid_training_resumes_from_its_checkpoint(registry, tmp_path):
    """A cell whose run folder holds an interrupted run continues it and ends where an
    uninterrupted run ends."""
    import torch

    from ganlab.train.api import TrainRequest, train

    suite = suite_from_dict({**TINY, "datasets": ["ring8"], "seeds": [0], "sweep": [{}],
                             "ckpt_every": 20})
    cell = suite.cells[0]
    run_path = tmp_path / "cut" / "runs" / cell.cell_id
    train(registry, TrainRequest(cell.variant, cell.dataset, 20, run_path, seed=0,
                                 overrides=cell.override_text(), log_every=10, eval_every=20,
                                 ckpt_every=20, sample_every=0))
    (run_path / "status.json").write_text(json.dumps({"state": "interrupted", "step": 20}))
    run_bench(registry, suite, tmp_path / "cut", evaluate=mode_evaluator)
    run_bench(registry, suite, tmp_path / "whole", evaluate=mode_evaluator)
    cut = torch.load(run_path / "checkpoint.pt", weights_only=True)["modules"]["G"]
    whole = torch.load(tmp_path / "whole" / "runs" / cell.cell_id / "checkpoint.pt",
                       weights_only=True)["modules"]["G"]
    assert all(torch.equal(cut[k], whole[k]) for k in whole)
    curve = read_file(tmp_path / "cut" / "results.jsonl")[0][0]["curve"]
    assert curve["step"] == [10, 20, 30, 40]  # metrics.jsonl continued, not duplicated


def test_two_shards_merged_give_the_same_leaderboard_as_one_run(registry, tmp_path):
    bench(registry, tmp_path / "one")
    bench(registry, tmp_path / "s1", shard=(1, 2))
    bench(registry, tmp_path / "s2", shard=(2, 2))
    assert len(read_file(tmp_path / "s1" / "results-shard1of2.jsonl")[0]) == 4
    write_leaderboard(load_results([tmp_path / "one"]), tmp_path / "lb-one")
    write_leaderboard(load_results([tmp_path / "s1", tmp_path / "s2"]), tmp_path / "lb-shards")
    for name in ("leaderboard.md", "leaderboard.json", "leaderboard.html"):
        assert (tmp_path / "lb-one" / name).read_text() == (tmp_path / "lb-shards" / name).read_text()
    board = json.loads((tmp_path / "lb-one" / "leaderboard.json").read_text())
    assert [t["dataset"] for t in board["tables"]] == ["grid25", "ring8"]
    assert all(row["seeds"] == [0, 1] for t in board["tables"] for row in t["rows"])


def test_cli_bench_parallel_jobs_then_leaderboard(cli, tmp_path):
    """--jobs 2: two worker processes, one cell each; only the parent writes results."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(_toml({**TINY, "datasets": ["ring8"], "sweep": [{}], "metrics": ["modes"],
                            "num_samples": 500}))
    result = cli("bench", str(suite), "--results", str(tmp_path / "r"), "--jobs", "2", "-q")
    assert result.exit_code == 0, result.stderr
    assert "2 cells run, 0 already done" in result.stdout
    records, bad = read_file(tmp_path / "r" / "results.jsonl")
    assert bad == 0 and len({r["key"] for r in records}) == 2 and {r["status"] for r in records} == {"ok"}
    assert {r["metric"] for r in records[0]["results"]} == {"modes_covered", "high_quality", "reverse_kl"}
    assert (tmp_path / "r" / "leaderboard.html").is_file()
    result = cli("leaderboard", str(tmp_path / "r"), "--out", str(tmp_path / "lb"))
    assert result.exit_code == 0 and "2 cells from 1 file(s)" in result.stdout


def test_cli_bench_errors_are_one_line(cli, tmp_path):
    result = cli("bench", "no-such-suite")
    assert result.exit_code == 2 and "unknown suite" in result.stderr
    result = cli("bench", "modes", "--shard", "3/2", "--results", str(tmp_path))
    assert result.exit_code == 2 and "--shard" in result.stderr
    result = cli("leaderboard", str(tmp_path / "empty"))
    assert result.exit_code == 2 and "not found" in result.stderr


def test_cli_dry_run_lists_the_shard(cli, tmp_path):
    result = cli("bench", "modes", "--dry-run", "--shard", "1/4", "--results", str(tmp_path))
    assert result.exit_code == 0
    assert "cells in this shard, 0 done" in result.stdout and "todo" in result.stdout
    default = cli("bench", "--dry-run", "--results", str(tmp_path))  # the default suite: modes
    assert default.exit_code == 0 and "vanilla-ring8-s0-" in default.stdout


@pytest.mark.slow
def test_killing_a_bench_process_and_rerunning_it(tmp_path):
    """SIGKILL at a random point of a real `ganlab bench` process, then run it again."""
    pytest.importorskip("ganlab.metrics.evaluate")
    suite = tmp_path / "tiny.toml"
    suite.write_text(_toml({**TINY, "steps": 300, "ckpt_every": 100}))
    results = tmp_path / "r"
    command = [sys.executable, "-m", "ganlab", "bench", str(suite), "--results", str(results), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    path = results / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not path.is_file() or len(read_file(path)[0]) < 2):
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = read_file(path)[0]
    assert 2 <= len(before) < 8
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    after = read_file(path)[0]
    assert [r["key"] for r in after[:len(before)]] == [r["key"] for r in before]
    assert len(after) == 8 and len({r["key"] for r in after}) == 8


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_a_bench_cleanly_and_the_rerun_completes_it(tmp_path, jobs):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: the bench exits 130 with
    a one-line message, running cells keep a checkpoint, and the same command finishes."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(_toml({**TINY, "steps": 2000, "ckpt_every": 500, "metrics": ["modes"],
                            "num_samples": 500}))
    results = tmp_path / "r"
    command = [sys.executable, "-m", "ganlab", "bench", str(suite), "--results", str(results), "-q",
               "--jobs", jobs]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny nets: a second thread only slows them
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env=env)
    deadline = time.time() + 240
    while time.time() < deadline and not list(results.glob("runs/*/checkpoint.pt")):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=240)
    assert process.returncode == 130, err
    assert "run the same command again to continue" in err and "Traceback" not in err
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr
    records = read_file(results / "results.jsonl")[0]
    assert len(records) == 8 and len({r["key"] for r in records}) == 8


def _toml(table: dict) -> str:
    """A small TOML writer for the suite tables used here."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines, tables = [], []
    for key, v in table.items():
        if isinstance(v, dict):
            tables.append(f"[{key}]\n" + "".join(f"{k} = {value(x)}\n" for k, x in v.items()))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            tables += [f"[[{key}]]\n" + "".join(f"{k} = {value(x)}\n" for k, x in item.items())
                       for item in v]
        else:
            lines.append(f"{key} = {value(v)}")
    return "\n".join(lines) + "\n" + "\n".join(tables)


def test_toml_helper_round_trips():
    import tomllib

    assert tomllib.loads(_toml(TINY)) == TINY
