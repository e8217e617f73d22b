"""WGAN-GP: Wasserstein GAN with a gradient penalty (Gulrajani et al. 2017, Algorithm 1).

Losses are the WGAN critic/generator losses (see ``wgan``), without weight clipping. The
critic's loss gains ``lambda * E_xhat[(||grad_xhat f(xhat)||_2 - 1)^2]`` where
``xhat = eps * x + (1 - eps) * G(z)``, ``eps ~ U[0, 1]`` per sample: the optimal critic
has gradient norm 1 on lines between real and generated points.

Paper defaults: ``lambda = 10``, ``n_critic = 5``, Adam lr 1e-4 with betas (0, 0.9).
The penalty is per sample, so D must not use batch norm: images default to
``d_norm=layer`` (the paper's recommendation) and ``d_norm=batch`` is refused.
"""

from __future__ import annotations

import torch
from torch import Tensor

import ganlab
from ganlab.errors import GanlabError
from ganlab.interfaces import VariantSpec
from ganlab_plugins.penalties import input_gradients, require_per_sample_discriminator
from ganlab_plugins.wgan import WassersteinObjective


def interpolate(real: Tensor, fake: Tensor, rng: torch.Generator | None) -> Tensor:
    """``eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per sample."""
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), generator=rng, device=real.device)
    return eps * real + (1 - eps) * fake


def one_centred_penalty(grads: Tensor, weight: float) -> Tensor:
    """``weight * E[(||g||_2 - 1)^2]`` over per-sample gradients ``grads`` (N, dim)."""
    return weight * (grads.norm(dim=1) - 1).pow(2).mean()


class GradientPenaltyObjective(WassersteinObjective):
    def __init__(self, generator, discriminator, hparams, data):
        super().__init__(generator, discriminator, hparams, data)
        require_per_sample_discriminator("wgan-gp", data, self.hp)
        self.gp_lambda = float(self.hp["gp_lambda"])
        if self.gp_lambda < 0:
            raise GanlabError(f"wgan-gp: gp_lambda must not be negative, got {self.gp_lambda}")

    def penalty(self, real, fake, real_labels, fake_labels):
        # With fake_per_real > 1 there are more fakes than reals; pair each real with one.
        xhat = interpolate(real.detach(), fake[: real.shape[0]].detach(), self.rng)
        return one_centred_penalty(input_gradients(self, xhat, real_labels), self.gp_lambda)


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="wgan-gp",
        objective=GradientPenaltyObjective,
        description="Wasserstein GAN with a gradient-norm penalty on real-fake interpolates",
        citation="Gulrajani et al. 2017, Improved Training of Wasserstein GANs (NeurIPS)",
        hparams={"gp_lambda": 10.0, "n_critic": 5, "optimizer": "adam", "lr_g": 1e-4, "lr_d": 1e-4,
                 "beta1": 0.0, "beta2": 0.9, "d_norm": "layer"},
    ))
