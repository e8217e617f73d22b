"""Non-saturating GAN (Goodfellow et al. 2014, section 3): the ``-log D(G(z))`` heuristic.

D minimises the min-max loss ``-E_x[log D(x)] - E_z[log(1 - D(G(z)))]`` as in vanilla;
G minimises ``-E_z[log D(G(z))]`` instead of ``E_z[log(1 - D(G(z)))]``. Both losses have
the same fixed point, but this one keeps G's gradient strong when D rejects the fakes
early in training. ``D(x) = sigmoid(score)``; both losses are computed from logits.

Hyperparameters: the paper trains one D step per G step (k = 1). Its optimiser settings
are not part of the method; the common defaults (DCGAN's Adam, lr 2e-4, beta1 0.5) and
each dataset's suggestions apply. Other plugins (r1, dragan, pacgan, mbstd) build on
:class:`NonSaturatingObjective`.
"""

from __future__ import annotations

from torch import Tensor

import ganlab
from ganlab.interfaces import Objective, VariantSpec
from ganlab_plugins.vanilla import minimax_discriminator_loss, non_saturating_generator_loss


class NonSaturatingObjective(Objective):
    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return minimax_discriminator_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return non_saturating_generator_loss(fake_scores)


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="ns",
        objective=NonSaturatingObjective,
        description="non-saturating GAN: G maximises log D(G(z)) instead of minimising log(1 - D(G(z)))",
        citation="Goodfellow et al. 2014, Generative Adversarial Nets (NeurIPS), section 3",
        hparams={"n_critic": 1},
    ))
