"""``ganlab bench``, ``ganlab leaderboard`` and ``ganlab report``."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer

from ganlab.cli import app
from ganlab.cli.console import err_console, out_console
from ganlab.errors import GanlabError
from ganlab.train.loop import Interrupted


def _cell_summary(record: dict) -> str:
    if record["status"] != "ok":
        return f"{record['status']}: {record.get('message', '')}"
    values = {r["metric"]: r["value"] for r in record.get("results", [])}
    shown = [f"{k}={values[k]:.3g}" for k in ("modes_covered", "high_quality", "reverse_kl", "classes_covered", "fid")
             if isinstance(values.get(k), (int, float))]
    shown = shown or [f"{k}={v:.3g}" for k, v in list(values.items())[:3] if isinstance(v, (int, float))]
    wall = record.get("wall_s", {})
    return ", ".join(shown) + f" ({wall.get('train', 0) + wall.get('eval', 0):.0f} s)"


def run_suite(suite_name: str, results: Path | None, jobs: int, shard: str | None, device: str,
              quiet: bool = False):
    """Run (or continue) a suite; shared by ``bench`` and ``report``."""
    from ganlab.bench.runner import run_bench
    from ganlab.bench.suite import load_suite, parse_shard
    from ganlab.plugins import get_registry

    suite = load_suite(suite_name)
    shard_pair = parse_shard(shard)
    results = results or Path("bench-results") / suite.name
    registry = get_registry()

    def started(cell) -> None:
        if not quiet:
            err_console.print(f"  running {cell.cell_id} ...", markup=False)

    def finished(record: dict, done: int, total: int) -> None:
        if not quiet:
            err_console.print(f"[{done}/{total}] {record['variant']} on {record['dataset']} "
                              f"seed {record['seed']}{' ' + record['label'] if record['label'] else ''}: "
                              f"{_cell_summary(record)}", markup=False)

    t0 = time.perf_counter()
    try:
        summary = run_bench(registry, suite, results, jobs=jobs, shard=shard_pair, device=device,
                            on_start=started if jobs == 1 else None, on_record=finished)
    except (Interrupted, KeyboardInterrupt) as exc:
        raise Interrupted(f"bench {suite.name} stopped ({exc or 'interrupted'}); every finished cell "
                          f"is saved in {results}: run the same command again to continue",
                          getattr(exc, "signum", signal.SIGINT)) from None
    return suite, summary, results, time.perf_counter() - t0


@app.command("bench")
def bench_command(
    suite: str = typer.Argument("modes", help="A built-in suite name (modes, digits, mnist, report) or a "
                                              ".toml path [default: modes, the mode-collapse suite]."),
    results: Path = typer.Option(None, "--results", "-r",
                                 help="Results folder [default: bench-results/SUITE]."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Cells run in parallel processes."),
    shard: str = typer.Option(None, "--shard", help="Run only shard i of n (1-based), e.g. 2/4."),
    device: str = typer.Option("cpu", "--device", help="Torch device for every cell."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the cells this shard would run, run nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-cell progress lines."),
) -> None:
    """Train and evaluate every cell of a suite; results are appended to RESULTS and an
    interrupted bench continues where it stopped."""
    from ganlab.bench.leaderboard import write_leaderboard
    from ganlab.bench.store import load_results
    from ganlab.bench.suite import load_suite, parse_shard

    if dry_run:
        loaded = load_suite(suite)
        cells = loaded.shard(*parse_shard(shard))
        folder = results or Path("bench-results") / loaded.name
        finished = load_results([folder], allow_empty=True).finished_keys() if folder.is_dir() else set()
        for cell in cells:
            mark = "done" if cell.key in finished else "todo"
            out_console.print(f"{mark}  {cell.cell_id}  steps={cell.steps} {cell.label}", markup=False)
        out_console.print(f"{len(cells)} cells in this shard, {sum(c.key in finished for c in cells)} done",
                          markup=False)
        return
    loaded, summary, folder, wall = run_suite(suite, results, jobs, shard, device, quiet)
    out_console.print(f"bench {loaded.name}: {summary.ran} cells run, {summary.skipped} already done, "
                      f"{summary.diverged} diverged, {summary.failed} failed, {wall:.0f} s; "
                      f"results in {summary.results_file}", markup=False)
    if shard is None:
        written = write_leaderboard(load_results([folder]), folder)
        out_console.print(f"leaderboard: {written[0]}", markup=False)
    else:
        out_console.print(f"merge the shards with: ganlab leaderboard {folder} [OTHER_RESULTS...]",
                          markup=False)
    if summary.failed:
        raise GanlabError(f"{summary.failed} cell(s) failed (see the results file); run the bench "
                          f"again to retry them", exit_code=1)


@app.command("leaderboard")
def leaderboard_command(
    results: list[Path] = typer.Argument(..., help="Results files or folders (shards are merged)."),
    out: Path = typer.Option(None, "--out", "-o",
                             help="Output folder [default: the first results folder]."),
) -> None:
    """Write leaderboard.md, leaderboard.json and a self-contained leaderboard.html."""
    from ganlab.bench.leaderboard import write_leaderboard
    from ganlab.bench.store import load_results

    merged = load_results(results)
    out = out or (results[0] if results[0].is_dir() else results[0].parent)
    written = write_leaderboard(merged, out)
    note = f" ({merged.duplicates} duplicate records dropped)" if merged.duplicates else ""
    out_console.print(f"{len(merged.records)} cells from {len(merged.files)} file(s){note}", markup=False)
    for path in written:
        out_console.print(str(path), markup=False)


@app.command("report")
def report_command(
    out: Path = typer.Option(Path("report"), "--out", "-o", help="Folder for report.md, report.html and plots."),
    results: Path = typer.Option(None, "--results", "-r",
                                 help="Results folder of the report suite [default: bench-results/report]."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Cells run in parallel processes."),
    suite: str = typer.Option("report", "--suite", help="The suite to run (groups coverage, saturation, sensitivity)."),
    device: str = typer.Option("cpu", "--device", help="Torch device for every cell."),
    no_run: bool = typer.Option(False, "--no-run", help="Only render from the results already there."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-cell progress lines."),
) -> None:
    """The vanilla GAN limitations report in one command: runs the report suite (resuming
    where it stopped) and writes report.md and report.html with plots."""
    from ganlab.bench.report import write_report
    from ganlab.bench.store import load_results
    from ganlab.bench.suite import load_suite
    from ganlab.plugins import get_registry

    folder = results or Path("bench-results") / load_suite(suite).name
    if not no_run:
        _, summary, folder, wall = run_suite(suite, folder, jobs, None, device, quiet)
        out_console.print(f"report suite: {summary.ran} cells run, {summary.skipped} already done, "
                          f"{summary.failed} failed, {wall:.0f} s", markup=False)
    written = write_report(get_registry(), load_results([folder]), out)
    for path in written:
        out_console.print(str(path), markup=False)
