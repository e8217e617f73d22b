"""From a run's config to live objects: dataset, networks, objective.

``train``, ``sample`` and ``eval`` all build through here, so a run directory is always
rebuilt exactly as it was trained.
"""

from __future__ import annotations

import dataclasses
import platform
import sys
from dataclasses import dataclass, field
from typing import Any

import torch

from ganlab import __version__
from ganlab.config import resolve_data_options, resolve_hparams
from ganlab.data.base import GanDataset
from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec, Objective, VariantSpec
from ganlab.registry import Registry


@dataclass
class RunConfig:
    """Everything that defines a run; saved as ``config.json`` and in every checkpoint."""

    variant: str
    dataset: str
    steps: int
    seed: int = 0
    hparams: dict[str, Any] = field(default_factory=dict)  # resolved
    data_options: dict[str, Any] = field(default_factory=dict)  # resolved
    log_every: int = 100
    sample_every: int = 500
    ckpt_every: int = 1000
    eval_every: int = 0
    device: str = "cpu"
    # Fast paths (see ganlab.train.fastpath), kept here so --resume trains the same way.
    precision: str = "fp32"  # fp32, or bf16 autocast of G and D forwards
    channels_last: bool = False  # NHWC layout for conv nets
    compile: bool = False  # torch.compile of the trained networks
    workers: int = 0  # DataLoader processes decoding an image folder (0: held in memory)
    world_size: int = 1  # processes that trained it last (batch_size is the global batch)
    data_spec: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def library_versions() -> dict[str, str]:
    from importlib.metadata import version  # not `import torchvision`: that costs seconds at start-up

    # str(): torch's version is a str subclass that weights_only checkpoint loading refuses.
    return {"ganlab": __version__, "torch": str(torch.__version__), "torchvision": version("torchvision"),
            "python": sys.version.split()[0], "platform": platform.platform()}


def spec_to_dict(spec: DataSpec) -> dict[str, Any]:
    raw = dataclasses.asdict(spec)
    raw["suggested_hparams"] = dict(spec.suggested_hparams)
    return raw


def spec_from_dict(raw: dict[str, Any]) -> DataSpec:
    def tuples(value):
        return tuple(tuples(v) for v in value) if isinstance(value, list) else value

    return DataSpec(**{k: tuples(v) if k != "suggested_hparams" else v for k, v in raw.items()})


def load_dataset(registry: Registry, name: str, options: dict[str, str | Any],
                 workers: int = 0) -> tuple[GanDataset, dict]:
    """Load a registered dataset with typed, validated options.

    ``workers`` > 0 streams it through DataLoader worker processes instead of loading it
    into memory (image folders only; see :mod:`ganlab.data.loader`).
    """
    spec = registry.dataset(name)
    text_opts = {k: v for k, v in options.items() if isinstance(v, str)}
    resolved = resolve_data_options(spec.options, text_opts, name)
    resolved.update({k: v for k, v in options.items() if not isinstance(v, str)})
    factory = spec.factory
    if workers:
        from ganlab.data.loader import streaming_factory

        factory = streaming_factory(name, workers)
    try:
        dataset = factory(**resolved)
    except GanlabError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise GanlabError(f"dataset {name}: {exc}") from None
    return dataset, resolved


def new_config(registry: Registry, variant: str, dataset: str, steps: int, seed: int,
               overrides: dict[str, str], data_options: dict[str, str], **intervals: Any
               ) -> tuple[RunConfig, GanDataset]:
    """Validate names and options, load the data, resolve hyperparameters."""
    spec = registry.variant(variant)  # unknown names fail before any data is read
    registry.dataset(dataset)
    if steps <= 0:
        raise GanlabError(f"--steps must be positive, got {steps}")
    for key, value in intervals.items():
        if isinstance(value, int) and value < 0:
            raise GanlabError(f"--{key.replace('_', '-')} must not be negative, got {value}")
    from ganlab.train.fastpath import check_device

    check_device(intervals.get("device", "cpu"))  # a missing GPU fails before data is read
    data, resolved_opts = load_dataset(registry, dataset, data_options, workers=intervals.get("workers", 0))
    hparams = resolve_hparams(spec, data.spec, overrides)
    config = RunConfig(variant=variant, dataset=dataset, steps=steps, seed=seed, hparams=hparams,
                       data_options=resolved_opts, data_spec=spec_to_dict(data.spec),
                       versions=library_versions(), **intervals)
    return config, data


@dataclass
class Built:
    variant: VariantSpec
    data_spec: DataSpec
    objective: Objective


def build_objective(registry: Registry, config: RunConfig, device: str | torch.device = "cpu") -> Built:
    """Networks and objective for a config (weights freshly initialised from the seed)."""
    variant = registry.variant(config.variant)
    data_spec = spec_from_dict(config.data_spec)
    if data_spec.kind != "image" and config.hparams.get("diffaugment"):
        raise GanlabError("diffaugment applies to images only")
    if config.hparams.get("conditional") and not data_spec.num_classes:
        raise GanlabError(f"conditional=true needs a labelled dataset; {config.dataset} has no labels")
    torch.manual_seed(config.seed)
    factory = registry.nets_for(variant, data_spec.kind)
    generator, discriminator = factory(data_spec, config.hparams)
    objective = variant.objective(generator.to(device), discriminator.to(device), config.hparams, data_spec)
    for name, module in objective.modules().items():
        module.to(device)
    objective.optimizers = objective.build_optimizers()
    if config.hparams.get("diffaugment"):
        from ganlab.augment import DiffAugment

        objective.augment = DiffAugment(config.hparams["diffaugment"])
    return Built(variant, data_spec, objective)
