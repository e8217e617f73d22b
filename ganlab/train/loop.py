"""The generic training loop: it schedules phases and never knows which variant runs.

Per step: ``objective.n_critic`` D updates (one real batch each), then one G update.
Values to log stay on the device as tensors; the loop reads them (one host sync) only
every ``log_every`` steps, where it also checks every step's losses for NaN/inf.
Only the main process (rank 0) writes files.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from ganlab.data.base import GanDataset
from ganlab.errors import DivergenceError, GanlabError
from ganlab.registry import Registry
from ganlab.train import distributed, fastpath
from ganlab.train.checkpoint import describe_mismatch, load_checkpoint, save_checkpoint
from ganlab.train.ema import EMA
from ganlab.train.rundir import RunDir
from ganlab.train.setup import RunConfig, build_objective
from ganlab.train.visuals import save_samples

SAMPLE_COUNT = {"points": 2500, "image": 64}


class Callback(Protocol):
    """Training events. ``on_log`` may add fields to the record before it is written."""

    def on_log(self, trainer: Trainer, step: int, record: dict[str, Any]) -> None: ...


class Interrupted(GanlabError):
    """SIGINT/SIGTERM: the run saved a checkpoint and stopped; ``--resume`` continues it.

    The exit code is 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), the
    shell's convention for "stopped by that signal": a script or scheduler can tell an
    interrupted run (to resume) from a finished one (0) and from bad input (2).
    """

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message, exit_code=128 + int(signum))
        self.signum = int(signum)


class Trainer:
    def __init__(self, registry: Registry, config: RunConfig, dataset: GanDataset, run: RunDir,
                 callbacks: list[Callback] | None = None, progress: Callable | None = None,
                 rank: int = 0):
        self.registry, self.config, self.run, self.rank = registry, config, run, rank
        fastpath.check_options(config)
        # Under torchrun: join the process group; batch_size is the global batch and every
        # rank keeps its slice of the shared data and latent streams (see distributed.py).
        self.dist = distributed.join(config.device)
        if self.dist.active:
            self.rank = self.dist.rank
        config.world_size = self.dist.world_size
        self.local_batch = distributed.local_batch(int(config.hparams["batch_size"]), self.dist)
        self.device = distributed.local_device(config.device, self.dist)
        self.dataset = distributed.shard_dataset(dataset, self.dist).to(self.device)
        built = build_objective(registry, config, self.device)
        self.variant, self.data_spec, self.objective = built.variant, built.data_spec, built.objective
        self.G = self.objective.G
        ema_decay = float(config.hparams.get("ema", 0.0))
        self.ema = EMA(self.G, ema_decay) if ema_decay > 0 else None
        # DDP / autocast / channels_last / compile wrappers (nothing when all are off).
        fastpath.wrap_objective(self.objective, config, self.dist, self.device)
        self._stop_vote = distributed.StopVote(self.dist)
        self.callbacks = list(callbacks or [])
        self.progress = progress
        # Independent streams: data, latents; sampling for pictures uses a fixed z. The same
        # seeds on every rank: each rank keeps its slice of every draw (distributed.py).
        self.data_rng = torch.Generator(device="cpu").manual_seed(config.seed * 2 + 1)
        self.latent_rng = torch.Generator(device=self.device).manual_seed(config.seed * 2 + 2)
        self.objective.rng = self.latent_rng
        self.step = 0
        self._stop_signal: int | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sampling_generator(self) -> torch.nn.Module:
        """The network to sample from: the EMA copy when EMA is on."""
        return self.ema.shadow if self.ema is not None else self.G

    # ---- checkpoint state ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "config": self.config.to_dict(),
            "modules": {k: m.state_dict() for k, m in self.objective.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.objective.optimizers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "objective": self.objective.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "data": self.data_rng.get_state(),
                    "latent": self.latent_rng.get_state()},
        }

    def load_state_dict(self, state: dict[str, Any], source: Path) -> None:
        saved = state.get("config", {})
        for key in ("variant", "dataset"):
            if saved.get(key) != getattr(self.config, key):
                raise GanlabError(f"checkpoint {source} is for {key} {saved.get(key)!r}, "
                                  f"not {getattr(self.config, key)!r}")
        try:
            for name, module in self.objective.modules().items():
                module.load_state_dict(state["modules"][name])
            for name, opt in self.objective.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"])
            self.objective.load_state_dict(state.get("objective", {}))
            torch.set_rng_state(state["rng"]["torch"])
            self.data_rng.set_state(state["rng"]["data"])
            self.latent_rng.set_state(state["rng"]["latent"])
            self.step = int(state["step"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            first = describe_mismatch(exc)
            raise GanlabError(f"checkpoint {source} does not match this run's networks: {first}") from None

    def resume(self) -> None:
        path = self.run.checkpoint_path
        self.load_state_dict(load_checkpoint(path, map_location=self.device), path)

    def save_checkpoint(self) -> None:
        if self.is_main:
            save_checkpoint(self.state_dict(), self.run.checkpoint_path)

    # ---- the loop ------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        cfg, objective = self.config, self.objective
        batch_size = self.local_batch  # this process's share of the global batch_size
        log_every = cfg.log_every or cfg.steps
        fixed_z = torch.Generator(device=self.device).manual_seed(cfg.seed + 12345)
        pending_losses: list[Tensor] = []
        last_record: dict[str, Any] = {}
        t_last, step_last = time.perf_counter(), self.step
        previous_handlers = self._install_signal_handlers()
        try:
            for module in objective.modules().values():
                module.train()
            while self.step < cfg.steps:
                if self._stop_requested():
                    self._check_finite(pending_losses, self.step - len(pending_losses) + 1)
                    self.save_checkpoint()
                    raise Interrupted(f"stopped by {signal.Signals(self._stop_signal).name} at step "
                                      f"{self.step}; checkpoint saved, continue with --resume",
                                      self._stop_signal)
                done = self.step + 1
                eval_now = bool(cfg.eval_every) and done % cfg.eval_every == 0 or done == cfg.steps
                log_now = done % log_every == 0 or eval_now
                objective.record_stats = log_now
                for _ in range(objective.n_critic):
                    real, labels = self.dataset.batch(batch_size, self.data_rng)
                    with fastpath.phase(objective, "D"):
                        d_stats = objective.discriminator_step(real, labels)
                objective.remember_real(real, labels)
                with fastpath.phase(objective, "G"):
                    g_stats = objective.generator_step(batch_size)
                if self.ema is not None:
                    self.ema.update(self.G)
                pending_losses.append(torch.stack([d_stats["d_loss"], g_stats["g_loss"]]))
                self.step = done
                if self.progress is not None:
                    self.progress(self.step)
                if log_now:
                    self._check_finite(pending_losses, done - len(pending_losses) + 1)
                    pending_losses.clear()
                    now = time.perf_counter()
                    record = {"step": done, "steps_per_s": (done - step_last) / max(now - t_last, 1e-9)}
                    logged = distributed.mean_over_ranks({**d_stats, **g_stats}, self.dist)
                    record.update({k: float(v) for k, v in logged.items()})
                    t_last, step_last = now, done
                    if eval_now:
                        for callback in self.callbacks:
                            callback.on_log(self, done, record)
                    if self.is_main:
                        self.run.append_metrics(record)
                    last_record = record
                if self.is_main and (cfg.sample_every and done % cfg.sample_every == 0 or done == cfg.steps):
                    self.save_pictures(fixed_z, final=done == cfg.steps)
                if cfg.ckpt_every and done % cfg.ckpt_every == 0 or done == cfg.steps:
                    # A checkpoint is written only after its steps' losses were checked,
                    # so a diverged run always keeps its last good one.
                    self._check_finite(pending_losses, done - len(pending_losses) + 1)
                    pending_losses.clear()
                    self.save_checkpoint()
        finally:
            self._stop_vote.close()
            self._restore_signal_handlers(previous_handlers)
        return last_record

    def _stop_requested(self) -> bool:
        """A pending SIGINT/SIGTERM; under torchrun, on any rank, agreed by all at the same step."""
        agreed = self._stop_vote(self._stop_signal)
        if agreed is not None:
            self._stop_signal = agreed  # ranks the signal did not reach report the same one
        return agreed is not None

    def _check_finite(self, losses: list[Tensor], first_step: int) -> None:
        """Stop on NaN/inf, naming the first bad step; weights are checked too (one host sync)."""
        if not losses:
            return
        finite = torch.isfinite(torch.stack(losses)).all(dim=1)
        weights_finite = torch.stack([torch.isfinite(p).all() for m in self.objective.modules().values()
                                      for p in m.parameters()] or [torch.tensor(True)]).all()
        losses_ok, weights_ok = bool(finite.all()), bool(weights_finite)
        if losses_ok and weights_ok:
            return
        # Weights are only seen now, so a weights-only failure is dated by this check.
        bad_step = first_step + (int((~finite).nonzero()[0, 0]) if not losses_ok else len(losses) - 1)
        what = "loss" if not losses_ok else "weights"
        if self.run.checkpoint_path.is_file():
            kept = f"last good checkpoint kept at {self.run.checkpoint_path}"
        else:
            kept = "no checkpoint had been written yet"
        message = f"training diverged: non-finite {what} at step {bad_step}; {kept}"
        if self.is_main:
            self.run.write_status("diverged", bad_step, message)
        raise DivergenceError(message)

    @torch.no_grad()
    def sample(self, n: int, rng: torch.Generator | None = None) -> Tensor:
        generator = self.sampling_generator()
        was_training = generator.training
        generator.eval()
        z = torch.randn(n, generator.latent_dim, generator=rng, device=self.device)
        labels = None
        if generator.num_classes:
            labels = torch.arange(n, device=self.device) % generator.num_classes
        out = generator(z, labels)
        generator.train(was_training)
        return out

    def save_pictures(self, fixed_z: torch.Generator, final: bool = False) -> None:
        state = fixed_z.get_state()
        samples = self.sample(SAMPLE_COUNT[self.data_spec.kind], fixed_z)
        fixed_z.set_state(state)  # the same z at every snapshot: pictures are comparable
        title = f"{self.config.variant} on {self.config.dataset}, step {self.step}"
        save_samples(samples, self.data_spec, self.run.sample_path(self.step), title)
        if final:
            save_samples(samples, self.data_spec, self.run.final_sample_path, title)

    # ---- signals -------------------------------------------------------------------------
    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread (e.g. a test runner thread): leave signals alone
            pass
        return previous

    def _on_signal(self, signum, frame) -> None:
        if self._stop_signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._stop_signal = signum

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
