"""Relativistic average GAN, RaSGAN (Jolicoeur-Martineau 2018, equations 15-16).

D judges whether a real sample is *more realistic than the average fake* and vice versa.
With C the raw score and sigma the logistic function:

- D loss: ``-E_x[log sigma(C(x) - E_z C(G(z)))] - E_z[log(1 - sigma(C(G(z)) - E_x C(x)))]``;
- G loss: ``-E_z[log sigma(C(G(z)) - E_x C(x))] - E_x[log(1 - sigma(C(x) - E_z C(G(z))))]``.

G's loss needs D's scores on real data (``Objective.g_needs_real``): G can lower it by
making real data look *less* real relative to its fakes, a gradient a standard GAN's G
never receives. ``log(1 - sigma(t)) = logsigmoid(-t)`` keeps it stable.
The paper's optimiser (Adam, lr 2e-4, beta1 0.5) is the common default.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

import ganlab
from ganlab.interfaces import Objective, VariantSpec


def relativistic_average_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    real_rel = real_scores - fake_scores.mean()
    fake_rel = fake_scores - real_scores.mean()
    return -(F.logsigmoid(real_rel).mean() + F.logsigmoid(-fake_rel).mean())


def relativistic_average_generator_loss(fake_scores: Tensor, real_scores: Tensor) -> Tensor:
    # The same formula with the roles of real and fake swapped.
    return relativistic_average_discriminator_loss(fake_scores, real_scores)


class RelativisticAverageObjective(Objective):
    g_needs_real = True

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return relativistic_average_discriminator_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        assert real_scores is not None, "g_needs_real is set, so the loop passes real scores"
        return relativistic_average_generator_loss(fake_scores, real_scores)


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="ragan",
        objective=RelativisticAverageObjective,
        description="relativistic average GAN: D scores real vs. the average fake (and back)",
        citation="Jolicoeur-Martineau 2018, The relativistic discriminator: a key element missing "
                 "from standard GAN (ICLR 2019)",
        hparams={"n_critic": 1},
    ))
