"""Non-saturating GAN with the R1 penalty (Mescheder, Geiger & Nowozin 2018, equation 9).

``R1 = gamma / 2 * E_x[||grad_x D(x)||^2]`` on *real* data only, added to D's loss of
variant ``ns``. It penalises D for being steep where the data is, which makes the
training dynamics locally convergent near the equilibrium (the paper's Theorem 4.1);
unlike WGAN-GP it pulls gradients to zero, not to one.

Default ``gamma = 10`` (the paper's choice for its image experiments). The penalty is per
sample, so images default to ``d_norm=layer`` and ``d_norm=batch`` is refused.
"""

from __future__ import annotations

from torch import Tensor

import ganlab
from ganlab.errors import GanlabError
from ganlab.interfaces import VariantSpec
from ganlab_plugins.ns import NonSaturatingObjective
from ganlab_plugins.penalties import input_gradients, require_per_sample_discriminator


def zero_centred_penalty(grads: Tensor, gamma: float) -> Tensor:
    """``gamma / 2 * E[||g||^2]`` over per-sample gradients ``grads`` (N, dim)."""
    return 0.5 * gamma * grads.pow(2).sum(dim=1).mean()


class R1Objective(NonSaturatingObjective):
    def __init__(self, generator, discriminator, hparams, data):
        super().__init__(generator, discriminator, hparams, data)
        require_per_sample_discriminator("r1", data, self.hp)
        self.gamma = float(self.hp["r1_gamma"])
        if self.gamma < 0:
            raise GanlabError(f"r1: r1_gamma must not be negative, got {self.gamma}")

    def penalty(self, real, fake, real_labels, fake_labels):
        return zero_centred_penalty(input_gradients(self, real, real_labels), self.gamma)


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="r1",
        objective=R1Objective,
        description="non-saturating GAN + R1: gamma/2 * squared gradient norm of D on real data",
        citation="Mescheder, Geiger & Nowozin 2018, Which Training Methods for GANs do actually Converge? (ICML)",
        hparams={"r1_gamma": 10.0, "d_norm": "layer"},
    ))
