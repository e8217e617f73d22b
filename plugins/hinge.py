"""Hinge-loss GAN (Lim & Ye 2017; popularised by Miyato et al. 2018, equation 17).

- D loss: ``E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))]`` (a margin on each side);
- G loss: ``-E_z[D(G(z))]``.

D's raw score is a margin, not a logit. Miyato et al. use this loss with spectral
normalisation (variant ``sngan``); this variant is the loss alone, with the core's nets
and the common Adam settings (lr 2e-4, beta1 0.5, beta2 0.999, one D step: the paper's
setting "C").
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

import ganlab
from ganlab.interfaces import Objective, VariantSpec


def hinge_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def hinge_generator_loss(fake_scores: Tensor) -> Tensor:
    return -fake_scores.mean()


class HingeObjective(Objective):
    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return hinge_discriminator_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return hinge_generator_loss(fake_scores)


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="hinge",
        objective=HingeObjective,
        description="hinge loss: D keeps a unit margin on real and fake, G raises D's score",
        citation="Lim & Ye 2017, Geometric GAN (arXiv:1705.02894); Miyato et al. 2018 (ICLR), eq. 17",
        hparams={"n_critic": 1},
    ))
