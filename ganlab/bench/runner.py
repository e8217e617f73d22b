"""Running a suite: each cell trains, is evaluated, and becomes one result record.

Cells already finished in the results folder (by any shard) are skipped, so an
interrupted bench continues where it stopped and repeats nothing. A cell whose training
was cut off resumes from its checkpoint. With ``jobs > 1`` cells run in separate
processes; only the parent writes the results file.
"""

from __future__ import annotations

import datetime as _dt
import os
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from ganlab.bench.curves import curve_from_metrics
from ganlab.bench.store import ResultWriter, load_results
from ganlab.bench.suite import Cell, Suite
from ganlab.errors import DivergenceError, GanlabError
from ganlab.registry import Registry
from ganlab.train.api import TrainRequest, train
from ganlab.train.loop import Interrupted
from ganlab.train.rundir import RunDir

RUNS_FOLDER = "runs"
MODE_CURVE_SAMPLES = 2500  # the VEEGAN/PacGAN protocol's sample count, also over training


@dataclass
class BenchSummary:
    total: int  # cells in this shard
    skipped: int  # already finished before this run
    ran: int = 0
    diverged: int = 0
    failed: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    results_file: Path | None = None


class ModeCurveTracker:
    """Training callback: mode statistics of fresh samples at each ``eval_every`` step,
    added to that step's metrics.jsonl record (coverage curves, mode hopping).

    The latent stream is seeded by the step, so a resumed run logs the same values; the
    global random state is left untouched, so tracking never changes the training. Unlike
    the eval package's tracker it keeps the per-mode counts (mode hopping needs them) and
    draws no plot at each evaluation (a bench's runs are plotted once, in the leaderboard).
    """

    def __init__(self, num_samples: int = MODE_CURVE_SAMPLES, seed: int = 0):
        self.num_samples, self.seed = num_samples, seed

    def on_log(self, trainer, step: int, record: dict[str, Any]) -> None:
        from ganlab.metrics.modes import mixture_mode_stats

        with torch.random.fork_rng(devices=[]):
            rng = torch.Generator(device=trainer.device).manual_seed(self.seed * 1_000_003 + step)
            samples = trainer.sample(self.num_samples, rng)
        record.update(mixture_mode_stats(samples, trainer.data_spec))


def training_callbacks(registry: Registry, cell: Cell) -> list:
    """Mode curves for 2-D mixtures; for other data the eval package's tracker, if any."""
    if not cell.eval_every:
        return []
    kind = registry.dataset(cell.dataset).kind
    if kind == "points":
        return [ModeCurveTracker(seed=cell.eval_seed)]
    try:
        from ganlab.metrics.tracking import ModeTracker
    except ImportError:
        return []
    return [ModeTracker(registry)]


def evaluate_cell(registry: Registry, cell: Cell, run_path: Path, device: str) -> dict[str, Any]:
    from ganlab.metrics.evaluate import evaluate_run

    return evaluate_run(registry, run_path, metrics=list(cell.metrics) if cell.metrics else None,
                        num_samples=cell.num_samples, seed=cell.eval_seed, device=device)


def _trained_already(run: RunDir, cell: Cell) -> bool:
    if run.read_status().get("state") != "finished" or not run.checkpoint_path.is_file():
        return False
    try:
        config = run.read_config()
    except GanlabError:
        return False
    return config.get("steps") == cell.steps and config.get("seed") == cell.seed


def _train_cell(registry: Registry, cell: Cell, run_path: Path, device: str) -> None:
    """Train, or resume a cut-off training, or do nothing if it already finished."""
    run = RunDir(run_path)
    if _trained_already(run, cell):
        return
    request = TrainRequest(
        variant=cell.variant, dataset=cell.dataset, steps=cell.steps, out=run_path, seed=cell.seed,
        overrides=cell.override_text(), data_options=cell.data_option_text(),
        log_every=cell.log_every, sample_every=cell.sample_every, ckpt_every=cell.ckpt_every,
        eval_every=cell.eval_every, device=device, overwrite=True)
    callbacks = training_callbacks(registry, cell)
    if run.checkpoint_path.is_file() and run.read_status().get("state") in ("running", "interrupted"):
        try:
            train(registry, TrainRequest(**{**request.__dict__, "resume": True, "overrides": None,
                                            "overwrite": False}), callbacks=callbacks)
            return
        except Interrupted:
            raise
        except DivergenceError:
            raise
        except GanlabError:
            pass  # an unusable checkpoint: train the cell again from scratch
    train(registry, request, callbacks=callbacks)


def run_cell(registry: Registry, cell: Cell, results_dir: str | os.PathLike, suite: str = "",
             device: str = "cpu",
             evaluate: Callable[[Registry, Cell, Path, str], dict[str, Any]] = evaluate_cell,
             ) -> dict[str, Any]:
    """Train and evaluate one cell; the result record (status ok, diverged or failed)."""
    relative = Path(RUNS_FOLDER) / cell.cell_id
    run_path = Path(results_dir) / relative
    record: dict[str, Any] = {
        "key": cell.key, "cell": cell.cell_id, "suite": suite, "group": cell.group,
        "variant": cell.variant, "dataset": cell.dataset, "seed": cell.seed, "steps": cell.steps,
        "label": cell.label, "definition": cell.definition(), "run": str(relative),
        "host": socket.gethostname(),
    }
    started = time.perf_counter()
    try:
        _train_cell(registry, cell, run_path, device)
        trained = time.perf_counter()
        evaluation = evaluate(registry, cell, run_path, device)
        record.update(status="ok", results=evaluation.get("results", []),
                      checkpoint_step=evaluation.get("checkpoint_step"),
                      versions=evaluation.get("versions", {}),
                      wall_s={"train": round(trained - started, 2),
                              "eval": round(time.perf_counter() - trained, 2)})
    except Interrupted:
        raise
    except DivergenceError as exc:
        record.update(status="diverged", message=str(exc), results=[],
                      wall_s={"train": round(time.perf_counter() - started, 2)})
    except Exception as exc:  # one broken cell must not end a long bench; retried next run
        record.update(status="failed", message=f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                      results=[])
    run = RunDir(run_path)
    if run.config_path.is_file():
        config = run.read_config()
        record["hparams"] = config.get("hparams", {})
        record["data_options_resolved"] = config.get("data_options", {})
    record["curve"] = curve_from_metrics(run.read_metrics())
    record["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return record


_STOP = None  # in a worker: the bench's stop event


def _worker_init(threads: int, stop) -> None:
    global _STOP
    _STOP = stop
    torch.set_num_threads(threads)
    # Between cells a worker ignores Ctrl-C (the parent decides what stops); while a cell
    # trains, the Trainer's own handler saves a checkpoint and stops it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_run(cell: Cell, results_dir: str, suite: str, device: str) -> dict[str, Any]:
    from ganlab.plugins import get_registry

    if _STOP is not None and _STOP.is_set():  # queued before the bench was stopped
        raise Interrupted("the bench is stopping")
    return run_cell(get_registry(), cell, results_dir, suite=suite, device=device)


def run_bench(registry: Registry, suite: Suite, results_dir: str | os.PathLike, jobs: int = 1,
              shard: tuple[int, int] = (1, 1), device: str = "cpu",
              on_start: Callable[[Cell], None] | None = None,
              on_record: Callable[[dict[str, Any], int, int], None] | None = None,
              evaluate: Callable[[Registry, Cell, Path, str], dict[str, Any]] = evaluate_cell,
              ) -> BenchSummary:
    """Run this shard's unfinished cells and append one record per cell."""
    if jobs < 1:
        raise GanlabError(f"--jobs must be at least 1, got {jobs}")
    suite.check_names(registry)
    results_dir = Path(results_dir)
    with ResultWriter(results_dir, shard) as writer:
        finished = load_results([results_dir], allow_empty=True).finished_keys()
        mine = suite.shard(*shard)
        todo = [c for c in mine if c.key not in finished]
        summary = BenchSummary(total=len(mine), skipped=len(mine) - len(todo),
                               results_file=writer.path)

        def keep(record: dict[str, Any]) -> None:
            writer.append(record)
            summary.records.append(record)
            summary.ran += 1
            summary.diverged += record["status"] == "diverged"
            summary.failed += record["status"] == "failed"
            if on_record is not None:
                on_record(record, summary.skipped + summary.ran, summary.total)

        if jobs == 1 or len(todo) <= 1:
            for cell in todo:
                if on_start is not None:
                    on_start(cell)
                keep(run_cell(registry, cell, results_dir, suite.name, device, evaluate))
        else:
            _run_parallel(todo, results_dir, suite.name, device, jobs, keep)
    return summary


def _run_parallel(cells: list[Cell], results_dir: Path, suite: str, device: str, jobs: int,
                  keep: Callable[[dict[str, Any]], None]) -> None:
    # spawn, not fork: forking a process that has started torch's thread pools can hang.
    context = get_context("spawn")
    stop = context.Event()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init,
                               initargs=(threads, stop))
    pending = {pool.submit(_worker_run, cell, str(results_dir), suite, device) for cell in cells}
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            _keep_done(done, keep)
    except BaseException:
        # Start no new cell; cells that are training stop by the signal that reached them
        # (a terminal's Ctrl-C, a scheduler's SIGTERM, both sent to every process) or else
        # run to the end. Keep every cell that still finishes.
        stop.set()
        for future in pending:
            future.cancel()
        _keep_done(wait(pending).done, keep, swallow=True)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    pool.shutdown(wait=True)


def _keep_done(done, keep: Callable[[dict[str, Any]], None], swallow: bool = False) -> None:
    """Keep every successful result of a batch of futures before raising the first failure."""
    first_error: BaseException | None = None
    for future in done:
        if future.cancelled():
            continue
        error = future.exception()
        if error is None:
            keep(future.result())
        elif first_error is None:
            first_error = error
    if first_error is not None and not swallow:
        raise first_error


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(f"stopped by {signal.Signals(signum).name}", signum)
