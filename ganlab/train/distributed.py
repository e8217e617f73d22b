"""Data-parallel training under torchrun: the process group, sharded streams, phase rules.

Launch with PyTorch's own launcher, nothing home-made::

    torchrun --nproc-per-node 4 -m ganlab train wgan-gp --dataset mnist --device cuda

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; the trainer joins
that process group (NCCL for CUDA, gloo otherwise) and each process uses ``cuda:LOCAL_RANK``.
The trained networks are wrapped in DistributedDataParallel (see :mod:`ganlab.train.fastpath`).

The rules every other part relies on:

- **Batch.** ``batch_size`` is the *global* batch (as StyleGAN2-ADA's ``--batch``): each
  of N processes takes ``batch_size / N`` samples (N must divide it). Each rank's loss is a
  mean over its share and DDP averages gradients, so one step is the single-process step
  on the whole batch, and a run's config means the same at any process count.
- **Randomness.** Every rank runs the *same* data and latent streams (same seeds) and keeps
  slice ``rank`` of each draw: rank r of N takes rows ``[r*b, (r+1)*b)`` of the ``N*b``
  rows a single process would draw. So a DDP step sees exactly the samples of the
  single-process step, and the one RNG state rank 0 checkpoints is every rank's state:
  resume is exact, even with another process count. Real batches, latents and labels are
  sharded this way; any *other* draw a variant makes from ``objective.rng`` (penalty
  interpolation weights, instance noise) is the same on every rank.
- **Batch-coupled layers.** BatchNorm and minibatch-std see the per-rank batch
  (SyncBatchNorm does not run on CPU, and its backward has no double backward for
  gradient penalties). BatchNorm running statistics stay each rank's own (they are not
  broadcast each forward) and rank 0's are saved; they only matter in eval mode.
- **Phases.** G is not updated in the D phase and D not in the G phase; the wrapper of
  the network that is not updated is put under ``no_sync``, so D's discarded gradients of
  the G phase are never all-reduced.
- **Files.** Only rank 0 writes logs, pictures and checkpoints; every rank loads the
  checkpoint on resume (on several machines the run folder must be on shared storage).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

from ganlab.data.base import GanDataset
from ganlab.errors import GanlabError

#: Seconds a collective may wait for a missing rank before the job fails.
COLLECTIVE_TIMEOUT_S = int(os.environ.get("GANLAB_DIST_TIMEOUT", "1800"))


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job. ``active``: a process group is initialised."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    active: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise GanlabError(f"environment variable {name}={raw!r} is not an integer "
                          f"(it is set by torchrun)") from None


def launch_env() -> DistContext:
    """The rank layout torchrun put in the environment (nothing is initialised here)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise GanlabError(f"torchrun environment is inconsistent: RANK={rank}, WORLD_SIZE={world}")
    return DistContext(rank=rank, world_size=world, local_rank=local, active=False)


def current() -> DistContext:
    """The initialised process group as a context, or :data:`SINGLE` when there is none."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    env = launch_env()
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=env.local_rank, active=True)


def backend_for(device: str | torch.device) -> str:
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def join(device: str) -> DistContext:
    """Join torchrun's process group when this process is one of several; idempotent.

    A process group someone else initialised (a test, a notebook) is used as it is.
    With WORLD_SIZE 1 (plain ``ganlab train`` or ``torchrun --nproc-per-node 1``)
    nothing is initialised and training is the ordinary single-process loop.
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    env = launch_env()
    if env.world_size == 1:
        return SINGLE
    if not dist.is_available():
        raise GanlabError("this torch build has no torch.distributed; run one process")
    backend = backend_for(device)
    if backend == "nccl":
        count = torch.cuda.device_count()
        if env.local_rank >= count:
            raise GanlabError(f"torchrun started process LOCAL_RANK={env.local_rank} but this machine "
                              f"has {count} CUDA device(s): use --nproc-per-node {count} or fewer")
        torch.cuda.set_device(env.local_rank)
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise GanlabError(f"could not join the torchrun process group ({backend}): {first}") from None
    return current()


def leave() -> None:
    """Destroy the process group (end of a distributed run); a no-op otherwise."""
    global _control_group
    if dist.is_available() and dist.is_initialized():
        _control_group = None
        dist.destroy_process_group()


def local_device(name: str, ctx: DistContext) -> torch.device:
    """The device of this process: ``cuda`` means ``cuda:LOCAL_RANK`` under torchrun."""
    device = torch.device(name)
    if ctx.active and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def local_batch(global_batch: int, ctx: DistContext) -> int:
    """Samples per process per step: the global ``batch_size`` split evenly over the ranks."""
    if global_batch % ctx.world_size:
        raise GanlabError(f"batch_size {global_batch} is the global batch and must divide evenly over "
                          f"{ctx.world_size} processes; use --set batch_size={global_batch // ctx.world_size * ctx.world_size or ctx.world_size}")
    return global_batch // ctx.world_size


def shard_slice(n: int, ctx: DistContext) -> slice:
    """Rows of rank ``ctx.rank`` in a draw of ``n * world_size`` rows."""
    return slice(ctx.rank * n, (ctx.rank + 1) * n)


# ---- sharded streams ---------------------------------------------------------------------
class ShardedData(GanDataset):
    """Rank r's share of the global data stream: draw ``n * N`` with the shared rng, keep slice r.

    In-memory datasets draw a few thousand indices more than they keep, which costs
    nothing next to a training step; streaming datasets (the worker loader) decode only
    their own rows instead (see :func:`shard_dataset`).
    """

    def __init__(self, inner: GanDataset, ctx: DistContext):
        self.inner, self.ctx = inner, ctx
        self.spec = inner.spec

    def __len__(self) -> int:
        return len(self.inner)

    def to(self, device: torch.device | str) -> ShardedData:
        self.inner = self.inner.to(device)
        return self

    def batch(self, n: int, rng: torch.Generator) -> tuple[Tensor, Tensor | None]:
        images, labels = self.inner.batch(n * self.ctx.world_size, rng)
        rows = shard_slice(n, self.ctx)
        return images[rows], (labels[rows] if labels is not None else None)


def shard_dataset(dataset: GanDataset, ctx: DistContext) -> GanDataset:
    """The dataset as this rank sees it (itself when running alone)."""
    if ctx.world_size == 1:
        return dataset
    select = getattr(dataset, "select_shard", None)
    if callable(select):  # it draws the global indices and loads only this rank's rows
        select(ctx.rank, ctx.world_size)
        return dataset
    return ShardedData(dataset, ctx)


def sharded_draw(draw: Callable[..., Tensor | None], ctx: DistContext) -> Callable[..., Tensor | None]:
    """Wrap ``draw(n, *args)`` so rank r gets rows ``[r*n, (r+1)*n)`` of ``draw(n * N, *args)``."""

    def rank_share(n: int, *args, **kwargs):
        full = draw(n * ctx.world_size, *args, **kwargs)
        return None if full is None else full[shard_slice(n, ctx)]

    rank_share.__wrapped__ = draw  # type: ignore[attr-defined]
    return rank_share


def shard_label_draws(objective, ctx: DistContext) -> None:
    """Labels for generated samples come from the global label stream, sliced per rank.

    The objective's own (possibly overridden) ``sample_labels`` draws the global batch;
    the instance attribute set here hands this rank its rows.
    """
    if ctx.world_size > 1:
        objective.sample_labels = sharded_draw(objective.sample_labels, ctx)


# ---- agreement between ranks ---------------------------------------------------------------
_control_group = None


def _control() -> object:
    """A gloo group for small CPU-side votes, so they never sync with the GPU stream."""
    global _control_group
    if _control_group is None:
        _control_group = (dist.group.WORLD if dist.get_backend() == "gloo"
                          else dist.new_group(backend="gloo"))
    return _control_group


class StopVote:
    """Ranks agree on when to stop after SIGINT/SIGTERM.

    A signal can reach ranks at different steps; a rank that stops alone leaves the
    others waiting in an all-reduce. Each step every rank contributes its pending signal
    number (0 for none) to an asynchronous MAX all-reduce and reads the previous step's
    result, so all ranks see the same answer at the same step, one step after the
    signal, without waiting on the network in the hot loop.
    """

    def __init__(self, ctx: DistContext):
        self.ctx = ctx
        self._pending: tuple[object, Tensor] | None = None
        if ctx.active:
            _control()  # a collective: every rank creates the group at the same point

    def __call__(self, local_signal: int | None) -> int | None:
        if not self.ctx.active:
            return local_signal
        agreed = 0
        if self._pending is not None:
            work, flag = self._pending
            work.wait()
            agreed = int(flag.item())
        flag = torch.tensor([int(local_signal or 0)], dtype=torch.int64)
        self._pending = (dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=_control(), async_op=True), flag)
        return agreed or None

    def close(self) -> None:
        """Finish the last vote so no collective is left in flight at shutdown."""
        if self._pending is not None:
            work, _ = self._pending
            self._pending = None
            try:
                work.wait(timeout=timedelta(seconds=30))
            except (RuntimeError, TypeError):  # a peer already gone: nothing left to agree on
                pass


def mean_over_ranks(stats: dict[str, Tensor], ctx: DistContext) -> dict[str, Tensor]:
    """Logged values averaged over the ranks (one all-reduce, only at logging steps)."""
    if not ctx.active or not stats:
        return stats
    keys = sorted(stats)
    # NCCL reduces CUDA tensors only; a value kept on the CPU (an empty grad norm) moves too.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    stacked = torch.stack([stats[k].detach().float().reshape(()).to(device) for k in keys])
    dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
    stacked /= ctx.world_size
    return dict(zip(keys, stacked.unbind()))
