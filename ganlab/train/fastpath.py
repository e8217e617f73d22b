"""Fast paths behind flags (all off by default) and the wrapper that applies them to G and D.

- ``--device``: cpu, cuda, cuda:N, mps; refused in one line where the device is missing.
- ``--precision bf16``: G and D forwards run under ``torch.autocast`` in bfloat16 and
  hand back float32, so losses, penalties and optimiser steps stay float32. bfloat16 has
  float32's exponent range, so no loss scaling is needed (fp16 would need a GradScaler
  per optimiser; it is not offered).
- ``--channels-last``: NHWC memory layout for conv nets (faster convolutions on tensor
  cores); images only.
- ``--compile``: ``torch.compile`` of every trained network. The first steps are slow
  (compilation); a variant that differentiates a gradient (WGAN-GP, R1, DRAGAN penalties,
  unrolling) is refused at its first step, because compiled graphs have no double backward.
- DistributedDataParallel under torchrun (see :mod:`ganlab.train.distributed`).

The objective keeps calling ``self.G(...)``, ``self.G.latent_dim``, ``self.G.sample_latent``:
each trained network is replaced on the objective by a :class:`TrainingNet` that runs the
forward through autocast / compile / DDP, forwards every other attribute to the original
network, and saves and loads the original's state dict (no ``module.`` or ``_orig_mod.``
prefix in checkpoints). With every flag off and one process nothing is wrapped at all.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ganlab.errors import GanlabError
from ganlab.train.distributed import DistContext, shard_label_draws, shard_slice

#: --precision values and the autocast dtype they mean (None: no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


def check_device(name: str) -> torch.device:
    """A usable torch device for ``--device``, or one clear line saying why not."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise GanlabError(f"--device {name!r} is not a torch device; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA"
            raise GanlabError(f"--device {name}: no CUDA device is available here "
                              f"(torch {torch.__version__} built with {built}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GanlabError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise GanlabError(f"--device {name}: Apple MPS is not available here; use --device cpu")
    elif device.type != "cpu":
        raise GanlabError(f"--device {name}: ganlab trains on cpu, cuda or mps, not {device.type}")
    return device


def check_options(config) -> None:
    """Refuse, in one line each, fast-path settings this machine or this data cannot use."""
    device = check_device(config.device)
    precision = getattr(config, "precision", "fp32")
    if precision not in PRECISIONS:
        raise GanlabError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r} "
                          f"(fp16 would need loss scaling; bf16 does not)")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GanlabError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support")
    kind = (config.data_spec or {}).get("kind")
    if getattr(config, "channels_last", False) and kind != "image":
        raise GanlabError(f"--channels-last is a memory layout for conv nets on images; "
                          f"{config.dataset} holds {kind or 'non-image'} data")
    workers = int(getattr(config, "workers", 0) or 0)
    if workers < 0:
        raise GanlabError(f"--workers must not be negative, got {workers}")


def is_wrapping_needed(config, ctx: DistContext) -> bool:
    return (ctx.active or getattr(config, "precision", "fp32") != "fp32"
            or bool(getattr(config, "channels_last", False)) or bool(getattr(config, "compile", False)))


class TrainingNet(nn.Module):
    """A trained network as the objective sees it during training.

    ``net`` is the original module: its parameters (the ones the optimiser holds), its
    buffers, attributes and state dict. ``runner`` is what a forward call goes through:
    ``net`` itself, DDP(net), torch.compile(...) of either.
    """

    def __init__(self, net: nn.Module, runner: Any, *, ddp: nn.Module | None = None,
                 autocast_dtype: torch.dtype | None = None, device_type: str = "cpu",
                 channels_last: bool = False, shard: DistContext | None = None):
        super().__init__()
        self.net = net
        # Not registered as submodules: parameters, state dicts and .train() go through net.
        self.__dict__["runner"] = runner
        self.__dict__["ddp"] = ddp
        self.autocast_dtype, self.device_type = autocast_dtype, device_type
        self.channels_last = channels_last
        self.shard = shard if shard is not None and shard.world_size > 1 else None

    def forward(self, *args, **kwargs):
        if self.channels_last:
            args = tuple(_to_channels_last(a) for a in args)
        if self.autocast_dtype is None:
            return self.runner(*args, **kwargs)
        with torch.autocast(self.device_type, dtype=self.autocast_dtype):
            out = self.runner(*args, **kwargs)
        # Losses, penalties and the next network's input stay float32.
        return out.float() if torch.is_tensor(out) and out.is_floating_point() else out

    def sample_latent(self, n: int, rng: torch.Generator | None = None):
        """Latents from the global stream, this rank's rows only (see distributed.py)."""
        if self.shard is None:
            return self.net.sample_latent(n, rng)
        return self.net.sample_latent(n * self.shard.world_size, rng)[shard_slice(n, self.shard)]

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Skip DDP's gradient all-reduce (for a network the current phase does not update)."""
        if self.ddp is None:
            yield
        else:
            with self.ddp.no_sync():
                yield

    # The checkpoint holds the original network's keys, with no wrapper prefix.
    def state_dict(self, *args, **kwargs):
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.net.load_state_dict(state_dict, strict=strict, assign=assign)

    def train(self, mode: bool = True):
        super().train(mode)
        if isinstance(self.runner, nn.Module) and self.runner is not self.net:
            self.runner.train(mode)
        return self

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "net":
                raise
            return getattr(self.net, name)  # latent_dim, num_classes, a variant's own helpers

    def __deepcopy__(self, memo):
        # A copy (unrolling, a frozen target) is a plain network: no DDP, no compiled graph.
        return copy.deepcopy(self.net, memo)


def _to_channels_last(value):
    if torch.is_tensor(value) and value.ndim == 4 and value.is_floating_point():
        return value.contiguous(memory_format=torch.channels_last)
    return value


def _data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """DDP without buffer broadcasts in forward: BatchNorm running statistics stay per rank
    (buffers are still made equal once, at construction), and no buffer is overwritten
    between D's several forwards before its one backward."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    params = inspect.signature(DistributedDataParallel.__init__).parameters
    # torch >= 2.14 names it forward_sync_buffers; earlier versions broadcast_buffers.
    no_broadcast = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {
        "broadcast_buffers": False}
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   **no_broadcast)


def _attribute_holding(objective, module: nn.Module) -> str | None:
    for attr, value in vars(objective).items():
        if value is module:
            return attr
    return None


def wrap_objective(objective, config, ctx: DistContext, device: torch.device) -> None:
    """Replace each trained network on ``objective`` by its :class:`TrainingNet`.

    Call once, after the optimisers exist (they keep the original parameters, which the
    wrapper shares) and after any EMA copy was taken.
    """
    if not is_wrapping_needed(config, ctx):
        return
    dtype = PRECISIONS[getattr(config, "precision", "fp32")]
    channels_last = bool(getattr(config, "channels_last", False))
    compile_ = bool(getattr(config, "compile", False))
    for name, module in objective.modules().items():
        attr = _attribute_holding(objective, module)
        if attr is None:
            if ctx.active:  # its gradients would never be averaged: the ranks would drift apart
                raise GanlabError(f"variant {config.variant}: network {name!r} is not an attribute of the "
                                  f"objective, so it cannot be wrapped for DistributedDataParallel")
            continue
        if channels_last:
            module.to(memory_format=torch.channels_last)  # in place: the optimiser's tensors stay
        runner, ddp = module, None
        if ctx.active and any(p.requires_grad for p in module.parameters()):
            ddp = _data_parallel(module, device)
            runner = ddp
        if compile_:
            runner = torch.compile(runner)
        setattr(objective, attr, TrainingNet(module, runner, ddp=ddp, autocast_dtype=dtype,
                                             device_type=device.type, channels_last=channels_last,
                                             shard=ctx))
    shard_label_draws(objective, ctx)


_DOUBLE_BACKWARD_HINTS = ("double backward", "donated buffers")


@contextlib.contextmanager
def phase(objective, updated: str) -> Iterator[None]:
    """One training phase: the other of G/D skips DDP's all-reduce; compile errors made plain.

    ``updated`` is ``"D"`` or ``"G"``. Only G and D are put under ``no_sync``: extra
    networks (an encoder, a reconstructor) may be updated in either phase, so their
    gradients are always averaged.
    """
    other = {"D": "G", "G": "D"}[updated]
    module = objective.modules().get(other)
    guard = module.no_sync() if isinstance(module, TrainingNet) else contextlib.nullcontext()
    try:
        with guard:
            yield
    except RuntimeError as exc:
        if any(hint in str(exc) for hint in _DOUBLE_BACKWARD_HINTS):
            raise GanlabError("--compile: this variant differentiates a gradient (double backward: a "
                              "gradient penalty or unrolling), which torch.compile does not support; "
                              "train it without --compile") from None
        raise
