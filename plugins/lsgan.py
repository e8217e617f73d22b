"""Least squares GAN (Mao et al. 2017, equation 2).

D's raw score is regressed onto target codes instead of being read as a probability:

- D loss: ``1/2 E_x[(D(x) - b)^2] + 1/2 E_z[(D(G(z)) - a)^2]``;
- G loss: ``1/2 E_z[(D(G(z)) - c)^2]``.

Defaults are the paper's 0-1 coding used in its experiments: ``a = 0`` (fake), ``b = 1``
(real), ``c = 1`` (what G wants D to believe). With ``a = -1, b = 1, c = 0``
(``b - c = 1, b - a = 2``) the game minimises the Pearson chi^2 divergence (section 3.2.2).
The paper's optimiser (Adam, lr 2e-4, beta1 0.5) is the common default.
"""

from __future__ import annotations

from torch import Tensor

import ganlab
from ganlab.interfaces import Objective, VariantSpec


def least_squares_discriminator_loss(real_scores: Tensor, fake_scores: Tensor,
                                     a: float = 0.0, b: float = 1.0) -> Tensor:
    return 0.5 * (real_scores - b).pow(2).mean() + 0.5 * (fake_scores - a).pow(2).mean()


def least_squares_generator_loss(fake_scores: Tensor, c: float = 1.0) -> Tensor:
    return 0.5 * (fake_scores - c).pow(2).mean()


class LeastSquaresObjective(Objective):
    def __init__(self, generator, discriminator, hparams, data):
        super().__init__(generator, discriminator, hparams, data)
        self.a, self.b, self.c = (float(self.hp[k]) for k in ("ls_a", "ls_b", "ls_c"))

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return least_squares_discriminator_loss(real_scores, fake_scores, self.a, self.b)

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return least_squares_generator_loss(fake_scores, self.c)


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="lsgan",
        objective=LeastSquaresObjective,
        description="least squares GAN: D regresses scores to codes a (fake) / b (real), G to c",
        citation="Mao et al. 2017, Least Squares Generative Adversarial Networks (ICCV)",
        hparams={"ls_a": 0.0, "ls_b": 1.0, "ls_c": 1.0},
    ))
