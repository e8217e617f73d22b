"""The whole contract between the ganlab core and a variant plugin.

A variant is a :class:`VariantSpec`: a name, an :class:`Objective` subclass, net
factories per data kind, default hyperparameters, a description and a citation.

The training loop is generic: per step it calls ``objective.discriminator_step`` for
each real batch it hands over (``objective.n_critic`` of them) and then
``objective.generator_step`` once. Everything that makes a variant a variant lives in
the objective: loss formulas, penalties, extra networks, weight clipping, unrolling.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

DataKind = Literal["points", "image"]


@dataclass(frozen=True)
class DataSpec:
    """What a dataset looks like, as networks and metrics need to know it.

    ``shape`` is one sample's shape: ``(2,)`` for points, ``(C, H, W)`` for images
    (values in [-1, 1]). ``modes``/``mode_std``/``mode_weights`` describe a Gaussian
    mixture's ground truth (points only), used by the mode-collapse metrics and plots.
    ``suggested_hparams`` are defaults that suit this data (batch size, learning rates)
    and sit below a variant's own defaults.
    """

    name: str
    kind: DataKind
    shape: tuple[int, ...]
    num_classes: int = 0
    modes: tuple[tuple[float, ...], ...] | None = None
    mode_std: float | None = None
    mode_weights: tuple[float, ...] | None = None
    suggested_hparams: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return math.prod(self.shape)


class Generator(nn.Module, ABC):
    """Maps latent noise (and optionally class labels) to samples.

    Images come out in [-1, 1]; points are unbounded.
    """

    latent_dim: int
    num_classes: int = 0

    @abstractmethod
    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor: ...

    def sample_latent(self, n: int, rng: torch.Generator | None = None) -> Tensor:
        device = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=rng, device=device)


class Discriminator(nn.Module, ABC):
    """Maps samples (and optionally labels) to one raw score per sample, shape (N,).

    For probabilistic losses the score is a logit (D(x) = sigmoid(score)); for
    Wasserstein-type losses it is the critic value.
    """

    num_classes: int = 0

    @abstractmethod
    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor: ...


# Builds (G, D) for one data kind from the data's spec and the resolved hyperparameters.
NetFactory = Callable[[DataSpec, Mapping[str, Any]], tuple[Generator, Discriminator]]


class Objective(ABC):
    """Owns G, D and every rule of one GAN variant.

    Subclasses usually override only the two loss formulas (and maybe
    :meth:`penalty` or :meth:`after_discriminator_step`); variants that change the
    schedule itself (unrolling, extra networks) override the step methods.

    The step methods return detached scalar tensors to log. They must not call
    ``.item()`` (a host sync): the loop reads them only at its logging interval.
    """

    #: D updates per G update; the loop hands over this many real batches per step.
    n_critic: int = 1

    def __init__(self, generator: Generator, discriminator: Discriminator,
                 hparams: Mapping[str, Any], data: DataSpec):
        self.G = generator
        self.D = discriminator
        self.hp = dict(hparams)
        self.data = data
        self.n_critic = int(self.hp.get("n_critic", type(self).n_critic))
        #: Latent/label randomness; the loop replaces it with a seeded generator.
        self.rng: torch.Generator | None = None
        #: Applied to real and fake samples before D (DiffAugment); identity by default.
        self.augment: Callable[[Tensor], Tensor] = lambda x: x
        #: Set by the loop on logging steps only, so gradient norms and game statistics cost
        #: nothing otherwise.
        self.record_stats = False
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # ---- networks and optimisers ----------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """Every network the objective trains, by name (checkpointed, moved, wrapped)."""
        return {"G": self.G, "D": self.D}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per trained network, keyed like :meth:`modules`."""
        return {
            "G": make_optimizer(self.G.parameters(), self.hp, "g"),
            "D": make_optimizer(self.D.parameters(), self.hp, "d"),
        }

    # ---- the variant's formulas --------------------------------------------------------
    @abstractmethod
    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        """Loss D minimises, from D's scores on real and on generated samples."""

    @abstractmethod
    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        """Loss G minimises. ``real_scores`` is given only if :attr:`g_needs_real` is set."""

    #: Relativistic losses compare with real scores in the G phase too.
    g_needs_real: bool = False

    def penalty(self, real: Tensor, fake: Tensor, real_labels: Tensor | None,
                fake_labels: Tensor | None) -> Tensor | None:
        """An extra D-phase term (gradient penalty, R1, DRAGAN); None for none."""
        return None

    def after_discriminator_step(self) -> None:
        """Runs after each D update (weight clipping)."""

    # ---- sampling and scoring ---------------------------------------------------------
    def sample_labels(self, n: int) -> Tensor | None:
        if not self.G.num_classes:
            return None
        device = next(self.G.parameters()).device
        return torch.randint(self.G.num_classes, (n,), generator=self.rng, device=device)

    def generate(self, n: int, labels: Tensor | None = None) -> Tensor:
        return self.G(self.G.sample_latent(n, self.rng), labels)

    def score(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """D's scores on samples; the one place augmentation (and packing) applies."""
        return self.D(self.augment(x), labels)

    # ---- the two phases ----------------------------------------------------------------
    def discriminator_step(self, real: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """One D update on one real batch."""
        fake_n = real.shape[0] * int(self.hp.get("fake_per_real", 1))
        fake_labels = self.sample_labels(fake_n) if labels is not None else None
        with torch.no_grad():
            fake = self.generate(fake_n, fake_labels)
        real_scores = self.score(real, labels)
        fake_scores = self.score(fake, fake_labels)
        loss = self.discriminator_loss(real_scores, fake_scores)
        stats = {"d_loss": loss.detach()}
        extra = self.penalty(real, fake, labels, fake_labels)
        if extra is not None:
            stats["penalty"] = extra.detach()
            loss = loss + extra
        self._update("D", loss, stats)
        self.after_discriminator_step()
        if self.record_stats:  # read only at logging steps; every step they cost ~3% of a 2-D step
            stats.update(self.game_stats(real_scores.detach(), fake_scores.detach()))
        return stats

    def generator_step(self, batch_size: int) -> dict[str, Tensor]:
        """One G update; D is not updated (its gradients are discarded)."""
        labels = self.sample_labels(batch_size)
        fake = self.generate(batch_size, labels)
        fake_scores = self.score(fake, labels)
        real_scores = None
        if self.g_needs_real:
            real_scores = self.score(self._last_real, self._last_real_labels).detach()
        loss = self.generator_loss(fake_scores, real_scores)
        stats = {"g_loss": loss.detach()}
        self._update("G", loss, stats)
        return stats

    # ---- helpers shared by all variants -----------------------------------------------
    def remember_real(self, real: Tensor, labels: Tensor | None) -> None:
        """The loop passes the last real batch here, for losses that need it in the G phase."""
        self._last_real, self._last_real_labels = real, labels

    def _update(self, name: str, loss: Tensor, stats: dict[str, Tensor]) -> None:
        """Backward and step for one network, leaving the others' gradients cleared."""
        module, optimizer = self.modules()[name], self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.record_stats:
            stats[f"grad_norm_{name}"] = grad_norm(module)
        optimizer.step()
        for other in self.modules().values():
            if other is not module:
                other.zero_grad(set_to_none=True)

    @staticmethod
    def game_stats(real_scores: Tensor, fake_scores: Tensor) -> dict[str, Tensor]:
        """The min-max game's quantities, read as if scores were logits.

        V(D,G) = E[log D(x)] + E[log(1 - D(G(z)))]; at the theoretical equilibrium
        D = 1/2 everywhere and V = -log 4.
        """
        value = torch.nn.functional.logsigmoid(real_scores).mean() + \
            torch.nn.functional.logsigmoid(-fake_scores).mean()
        d_real = torch.sigmoid(real_scores).mean()
        d_fake = torch.sigmoid(fake_scores).mean()
        return {
            "value": value,
            "d_real": d_real,
            "d_fake": d_fake,
            "equilibrium_gap": (value + math.log(4.0)).abs(),
        }

    # ---- checkpointing ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Extra objective state beyond modules and optimisers (none by default)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


def grad_norm(module: nn.Module) -> Tensor:
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.cat(grads))


def make_optimizer(params, hp: Mapping[str, Any], which: Literal["g", "d"]) -> torch.optim.Optimizer:
    """The optimiser named by ``hp['optimizer']`` with that network's learning rate."""
    lr = float(hp[f"lr_{which}"])
    name = hp.get("optimizer", "adam")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(float(hp["beta1"]), float(hp["beta2"])))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    from ganlab.errors import GanlabError

    raise GanlabError(f"unknown optimizer {name!r}; choose adam, rmsprop or sgd")


@dataclass(frozen=True)
class VariantSpec:
    """Everything the core needs to train one GAN variant.

    ``hparams`` declares the variant's own options and overrides common defaults
    (see :data:`ganlab.config.COMMON_HPARAMS`); ``--set`` may change any of them.
    ``nets`` maps a data kind to a factory; kinds not given use the core's default nets.
    """

    name: str
    objective: type[Objective]
    description: str
    citation: str
    hparams: Mapping[str, Any] = field(default_factory=dict)
    nets: Mapping[str, NetFactory] = field(default_factory=dict)
    #: Set by the registry: the plugin (and distribution) that registered this variant.
    plugin: str = ""
