"""Train a run and load a trained generator: the functions the CLI and benches call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec, Generator
from ganlab.registry import Registry
from ganlab.train.checkpoint import describe_mismatch, load_checkpoint
from ganlab.train.loop import Callback, Interrupted, Trainer
from ganlab.train.rundir import RunDir
from ganlab.train.setup import RunConfig, build_objective, load_dataset, new_config
from ganlab.errors import DivergenceError


@dataclass
class TrainRequest:
    variant: str
    dataset: str
    steps: int
    out: Path
    seed: int = 0
    overrides: dict[str, str] | None = None
    data_options: dict[str, str] | None = None
    log_every: int = 100
    sample_every: int = 500
    ckpt_every: int = 1000
    eval_every: int = 0
    device: str = "cpu"
    resume: bool = False
    overwrite: bool = False
    # Fast paths, off by default (see ganlab.train.fastpath); saved in the run's config.
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    workers: int = 0


def prepare(registry: Registry, req: TrainRequest) -> tuple[RunConfig, Any, RunDir]:
    """Validate everything and load the data before touching the disk."""
    run = RunDir(req.out)
    if req.resume:
        if not run.checkpoint_path.is_file():
            raise GanlabError(f"--resume: no checkpoint in {run.path}")
        config = RunConfig.from_dict(run.read_config())
        if req.variant != config.variant:
            raise GanlabError(f"--resume: {run.path} is a {config.variant!r} run, not {req.variant!r}")
        if req.overrides:
            raise GanlabError("--resume continues a run with its saved settings; --set is not allowed")
        if req.steps <= 0:
            raise GanlabError(f"--steps must be positive, got {req.steps}")
        config.steps = req.steps
        dataset, _ = load_dataset(registry, config.dataset, config.data_options, workers=config.workers)
        return config, dataset, run
    run.check_new(req.overwrite)  # before any data is loaded: refuse to mix two runs early
    config, dataset = new_config(
        registry, req.variant, req.dataset, req.steps, req.seed, req.overrides or {},
        req.data_options or {}, log_every=req.log_every, sample_every=req.sample_every,
        ckpt_every=req.ckpt_every, eval_every=req.eval_every, device=req.device,
        precision=req.precision, channels_last=req.channels_last, compile=req.compile, workers=req.workers)
    return config, dataset, run


def train(registry: Registry, req: TrainRequest, callbacks: list[Callback] | None = None,
          progress: Callable[[int], None] | None = None, rank: int = 0) -> tuple[Trainer, dict[str, Any]]:
    """Run (or resume) one training run; returns the trainer and the last logged record."""
    config, dataset, run = prepare(registry, req)
    trainer = Trainer(registry, config, dataset, run, callbacks=callbacks, progress=progress, rank=rank)
    if req.resume:
        trainer.resume()
        if trainer.step > config.steps:
            raise GanlabError(f"--resume: the checkpoint is at step {trainer.step}, beyond --steps {config.steps}")
    if rank == 0:
        if req.resume:
            run.prepare_resume()
            run.truncate_metrics_after(trainer.step)
        else:
            run.prepare_new(req.overwrite)
        run.write_config(config.to_dict())
        run.write_status("running", trainer.step)
    try:
        record = trainer.train()
    except Interrupted:
        if rank == 0:
            run.write_status("interrupted", trainer.step, "stopped by a signal; continue with --resume")
        raise
    except DivergenceError:
        raise  # the loop has written the status
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, without a new checkpoint
        if rank == 0:
            run.write_status("interrupted", trainer.step, "stopped at once by a second signal; "
                             "--resume continues from the last checkpoint")
        raise
    if rank == 0:
        run.write_status("finished", trainer.step)
    return trainer, record


@dataclass
class LoadedRun:
    config: RunConfig
    data_spec: DataSpec
    generator: Generator
    step: int


def load_generator(registry: Registry, run_path: str | Path, device: str = "cpu",
                   use_ema: bool = True) -> LoadedRun:
    """The trained generator of a run (its EMA copy when one was kept), in eval mode."""
    run = RunDir(run_path)
    config = RunConfig.from_dict(run.read_config())
    state = load_checkpoint(run.checkpoint_path, map_location=device)
    saved = state.get("config") if isinstance(state.get("config"), dict) else {}
    if saved.get("variant") != config.variant:
        raise GanlabError(f"checkpoint {run.checkpoint_path} is for variant {saved.get('variant')!r}, "
                          f"but the run is {config.variant!r}")
    built = build_objective(registry, config, device)
    generator = built.objective.G
    try:
        weights = state.get("ema") if use_ema and state.get("ema") is not None else state["modules"]["G"]
        generator.load_state_dict(weights)
        step = int(state["step"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = describe_mismatch(exc)
        raise GanlabError(f"checkpoint {run.checkpoint_path} does not match the run's generator: "
                          f"{first}") from None
    generator.eval().requires_grad_(False)
    return LoadedRun(config, built.data_spec, generator, step)


@torch.no_grad()
def generate(generator: Generator, n: int, seed: int, batch_size: int = 500,
             device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples from a trained generator with a seeded latent stream (labels cycle
    through the classes for a conditional generator)."""
    rng = torch.Generator(device=device).manual_seed(seed)
    samples, labels = [], []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        z = torch.randn(m, generator.latent_dim, generator=rng, device=device)
        y = (torch.arange(start, start + m, device=device) % generator.num_classes
             if generator.num_classes else None)
        samples.append(generator(z, y))
        if y is not None:
            labels.append(y)
    return torch.cat(samples), (torch.cat(labels) if labels else None)
