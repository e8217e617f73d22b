"""Wasserstein GAN with weight clipping (Arjovsky, Chintala & Bottou 2017, Algorithm 1).

The critic f (D's raw score, no sigmoid) estimates the Wasserstein-1 distance
``W = max_{||f||_L <= K} E_x[f(x)] - E_z[f(G(z))]``:

- critic loss (minimised): ``E_z[f(G(z))] - E_x[f(x)]``;
- generator loss: ``-E_z[f(G(z))]``;
- after every critic update each critic weight is clipped to ``[-c, c]``, a crude way to
  keep f K-Lipschitz.

Paper defaults (Algorithm 1): ``c = 0.01``, ``n_critic = 5``, RMSprop with lr 5e-5 for
both networks (momentum-based optimisers made training unstable with clipping).
"""

from __future__ import annotations

import torch
from torch import Tensor

import ganlab
from ganlab.errors import GanlabError
from ganlab.interfaces import Objective, VariantSpec


def wasserstein_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """``E[f(G(z))] - E[f(x)]``: the negated Wasserstein estimate, minimised by the critic."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: Tensor) -> Tensor:
    """``-E[f(G(z))]``: G raises the critic's score of its samples."""
    return -fake_scores.mean()


class WassersteinObjective(Objective):
    """The Wasserstein losses; logged game stats are the critic's, not sigmoid readings."""

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return wasserstein_critic_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return wasserstein_generator_loss(fake_scores)

    @staticmethod
    def game_stats(real_scores: Tensor, fake_scores: Tensor) -> dict[str, Tensor]:
        # Critic values are not logits, so D(x) = sigmoid(score) would mean nothing here.
        return {"wasserstein_estimate": real_scores.mean() - fake_scores.mean(),
                "critic_real": real_scores.mean(), "critic_fake": fake_scores.mean()}


class WeightClippedObjective(WassersteinObjective):
    def __init__(self, generator, discriminator, hparams, data):
        super().__init__(generator, discriminator, hparams, data)
        self.clip = float(self.hp["clip"])
        if not self.clip > 0:
            raise GanlabError(f"wgan: clip must be positive, got {self.clip}")

    @torch.no_grad()
    def after_discriminator_step(self) -> None:
        for p in self.D.parameters():
            p.clamp_(-self.clip, self.clip)


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="wgan",
        objective=WeightClippedObjective,
        description="Wasserstein GAN: critic estimates W-1 distance, weights clipped to [-c, c]",
        citation="Arjovsky, Chintala & Bottou 2017, Wasserstein GAN (ICML)",
        hparams={"clip": 0.01, "n_critic": 5, "optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5},
    ))
