"""The contract every variant's test class inherits (diffusers-style shared tests).

A subclass sets ``variant`` (and, if its G phase also trains other networks, such as
VEEGAN's reconstructor, ``trained_in_g_phase``). Each test runs on 2-D points (ring8) and
on images (digits) with small nets, through the same builder the trainer uses
(``ganlab.train.setup.build_objective``), so what is checked is what ``ganlab train`` runs:

- shapes: G's samples have the data's shape; D's scores are one number per D input;
- finite losses: one D update and one G update return finite ``d_loss``/``g_loss``;
- the right network learns in each phase: a D update changes D's weights and no other
  network's, a G update changes the networks in ``trained_in_g_phase`` and leaves D's alone;
- determinism: the same seed gives bit-identical weights after two training steps, a
  different seed does not.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from ganlab.config import resolve_hparams
from ganlab.plugins import get_registry
from ganlab.train.setup import RunConfig, build_objective, load_dataset, spec_to_dict

# Small nets so that every contract test takes milliseconds.
SMALL = {"hidden": 16, "latent_dim": 8, "base_channels": 4, "batch_size": 8}


@functools.lru_cache(maxsize=None)
def cached_dataset(name: str):
    dataset, _ = load_dataset(get_registry(), name, {})
    return dataset


def build(variant: str, dataset: str, seed: int = 0, **overrides):
    """A ready objective (optimisers built, rng seeded as the loop seeds it) and its dataset."""
    registry = get_registry()
    data = cached_dataset(dataset)
    hparams = resolve_hparams(registry.variant(variant), data.spec, {**SMALL, **overrides})
    config = RunConfig(variant=variant, dataset=dataset, steps=1, seed=seed, hparams=hparams,
                       data_spec=spec_to_dict(data.spec))
    objective = build_objective(registry, config).objective
    objective.rng = torch.Generator().manual_seed(seed * 2 + 2)
    return objective, data


def snapshot(objective) -> dict[str, list[torch.Tensor]]:
    return {name: [p.detach().clone() for p in module.parameters()]
            for name, module in objective.modules().items()}


def changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(b, p.detach()) for b, p in zip(before, module.parameters()))


def one_training_step(objective, data, data_seed: int) -> dict[str, torch.Tensor]:
    """What the loop does per step: n_critic D updates, remember the last batch, one G update."""
    rng = torch.Generator().manual_seed(data_seed)
    batch = int(objective.hp["batch_size"])
    for _ in range(objective.n_critic):
        real, labels = data.batch(batch, rng)
        d_stats = objective.discriminator_step(real, labels)
    objective.remember_real(real, labels)
    return {**d_stats, **objective.generator_step(batch)}


class VariantContract:
    variant: str = ""
    #: Networks a G update trains (by ``Objective.modules()`` name).
    trained_in_g_phase: tuple[str, ...] = ("G",)
    #: Extra ``--set`` values the variant's tests need.
    overrides: dict = {}

    @pytest.fixture(params=["ring8", "digits"])
    def dataset(self, request) -> str:
        return request.param

    def make(self, dataset: str, seed: int = 0, **extra):
        return build(self.variant, dataset, seed, **{**self.overrides, **extra})

    def test_registered_with_description_and_citation(self, registry):
        spec = registry.variant(self.variant)
        assert spec.description.strip() and spec.citation.strip()
        assert any(ch.isdigit() for ch in spec.citation), "a citation names its year"

    def test_shapes(self, dataset):
        objective, data = self.make(dataset)
        samples = objective.generate(8)
        assert samples.shape == (8, *data.spec.shape)
        if data.spec.kind == "image":
            assert samples.min() >= -1 and samples.max() <= 1
        real, _ = data.batch(8, torch.Generator().manual_seed(0))
        scores = self.scores(objective, real)
        assert scores.ndim == 1 and scores.shape[0] == 8 // int(objective.hp.get("pack", 1))

    def scores(self, objective, real):
        """D's scores on a real batch (overridden by variants whose D scores other inputs)."""
        return objective.score(real)

    def test_losses_are_finite(self, dataset):
        objective, data = self.make(dataset)
        stats = one_training_step(objective, data, 1)
        for key, value in stats.items():
            assert value.ndim == 0 and math.isfinite(float(value)), f"{key} = {value}"
            assert not value.requires_grad, f"{key} must be detached"
        assert {"d_loss", "g_loss"} <= set(stats), "the loop logs these two"

    def test_discriminator_step_trains_only_d(self, dataset):
        objective, data = self.make(dataset)
        before = snapshot(objective)
        real, labels = data.batch(int(objective.hp["batch_size"]), torch.Generator().manual_seed(1))
        objective.discriminator_step(real, labels)
        for name, module in objective.modules().items():
            assert changed(before[name], module) == (name == "D"), f"{name} after a D step"

    def test_generator_step_trains_only_its_networks(self, dataset):
        objective, data = self.make(dataset)
        real, labels = data.batch(int(objective.hp["batch_size"]), torch.Generator().manual_seed(1))
        objective.discriminator_step(real, labels)  # optimiser states exist, as in the loop
        objective.remember_real(real, labels)
        before = snapshot(objective)
        objective.generator_step(int(objective.hp["batch_size"]))
        for name, module in objective.modules().items():
            expected = name in self.trained_in_g_phase
            assert changed(before[name], module) == expected, f"{name} after a G step"
            if name not in self.trained_in_g_phase:
                assert all(p.grad is None for p in module.parameters()), f"{name} keeps G-phase grads"

    def test_same_seed_same_weights(self, dataset):
        runs = []
        for seed in (3, 3, 4):
            objective, data = self.make(dataset, seed=seed)
            torch.manual_seed(seed)  # the trainer's global stream (DiffAugment, dropout) is seeded too
            for data_seed in (10, 11):
                one_training_step(objective, data, data_seed)
            runs.append(snapshot(objective))
        same = all(torch.equal(a, b) for name in runs[0] for a, b in zip(runs[0][name], runs[1][name]))
        other = all(torch.equal(a, b) for name in runs[0] for a, b in zip(runs[0][name], runs[2][name]))
        assert same, "the same seed must give identical weights"
        assert not other, "a different seed should give different weights"

    def test_every_module_has_an_optimiser(self, dataset):
        objective, _ = self.make(dataset)
        assert set(objective.modules()) == set(objective.optimizers)
