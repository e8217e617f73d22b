"""``ganlab train VARIANT``: one training run into a run directory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ganlab.cli import app
from ganlab.cli.console import err_console, out_console
from ganlab.config import parse_assignments
from ganlab.errors import GanlabError
from ganlab.plugins import get_registry
from ganlab.train import distributed
from ganlab.train.api import TrainRequest, train

SUMMARY_KEYS = ("d_loss", "g_loss", "value", "d_real", "d_fake", "equilibrium_gap")


class LazyProgress:
    """A progress bar on stderr that appears at the first finished step, so input errors
    (raised before training starts) print alone."""

    def __init__(self, label: str, total: int, disabled: bool):
        self.label, self.total, self.disabled = label, total, disabled
        self.bar: Progress | None = None

    def update(self, step: int) -> None:
        if self.disabled:
            return
        if self.bar is None:
            self.bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                console=err_console)
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.total, completed=step - 1, rate="")
        task = self.bar.tasks[self.task]
        speed = task.speed
        self.bar.update(self.task, completed=step, rate=f"{speed:,.0f} steps/s" if speed else "")

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command("train")
def train_command(
    variant: str = typer.Argument(..., help="Variant name (see `ganlab list`)."),
    dataset: str = typer.Option("ring8", "--dataset", "-d", help="Dataset name (see `ganlab list`)."),
    steps: int = typer.Option(2000, "--steps", help="Generator updates to train for."),
    seed: int = typer.Option(0, "--seed", help="Seed for weights, data and noise."),
    out: Path = typer.Option(None, "--out", "-o", help="Run directory [default: runs/VARIANT-DATASET-sSEED]."),
    set_: list[str] = typer.Option([], "--set", help="Override a hyperparameter: key=value (repeatable)."),
    data_opt: list[str] = typer.Option([], "--data-opt", help="Dataset option: key=value (repeatable)."),
    log_every: int = typer.Option(100, "--log-every", help="Steps between metrics.jsonl records."),
    sample_every: int = typer.Option(500, "--sample-every", help="Steps between saved pictures (0: end only)."),
    ckpt_every: int = typer.Option(1000, "--ckpt-every", help="Steps between checkpoints (0: end only)."),
    eval_every: int = typer.Option(0, "--eval-every", help="Steps between cheap mode metrics (0: off)."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:N or mps (under "
                               "torchrun, cuda means each process's own GPU)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or bf16: autocast G and D forwards "
                                  "(losses and optimisers stay float32)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="NHWC memory layout for conv nets "
                                       "(images; faster on GPUs)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile G and D (slow first steps; "
                                  "not for double-backward penalties)."),
    workers: int = typer.Option(0, "--workers", help="DataLoader processes decoding an image folder "
                                "while training, into pinned memory on CUDA (0: load it into memory)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train VARIANT on a dataset; writes config, metrics, checkpoint and pictures."""
    registry = get_registry()
    out = out or Path("runs") / f"{variant}-{dataset}-s{seed}"
    request = TrainRequest(
        variant=variant, dataset=dataset, steps=steps, out=out, seed=seed,
        overrides=parse_assignments(set_), data_options=parse_assignments(data_opt, "--data-opt"),
        log_every=log_every, sample_every=sample_every, ckpt_every=ckpt_every, eval_every=eval_every,
        device=device, resume=resume, overwrite=overwrite, precision=precision,
        channels_last=channels_last, compile=compile_, workers=workers)
    callbacks = training_callbacks(registry, eval_every)
    # Under torchrun every process runs this command; rank 0 alone talks and writes.
    launch = distributed.launch_env()
    try:
        with LazyProgress(f"{variant} on {dataset}", steps, disabled=quiet or not launch.is_main) as progress:
            trainer, record = train(registry, request, callbacks=callbacks, progress=progress.update,
                                    rank=launch.rank)
    except GanlabError as exc:
        if not launch.is_main:  # the same line comes from rank 0; say it once
            raise SystemExit(exc.exit_code) from None
        raise
    finally:
        distributed.leave()
    if not launch.is_main:
        return
    summary = ", ".join(f"{k}={record[k]:.4f}" for k in SUMMARY_KEYS if k in record)
    out_console.print(f"trained {variant} on {dataset} for {trainer.step} steps -> {out}", markup=False)
    if summary:
        out_console.print(f"last log: {summary}", markup=False)
    out_console.print(f"picture: {trainer.run.final_sample_path}", markup=False)


def training_callbacks(registry, eval_every: int) -> list:
    """Callbacks for --eval-every (cheap mode metrics during training), if any are registered."""
    if not eval_every:
        return []
    try:
        from ganlab.metrics.tracking import ModeTracker
    except ImportError:
        return []
    return [ModeTracker(registry)]
