"""DRAGAN: a gradient penalty around the real data (Kodali et al. 2017).

Losses are those of variant ``ns``. D's loss gains ``lambda * E[(||grad D(xhat)|| - k)^2]``
at points ``xhat`` near real samples, to suppress the sharp D gradients around the data
that the paper links to mode collapse (local equilibria of the no-regret game).

How ``xhat`` is drawn (the authors' released code, a variant of the paper's
``x + delta``): ``x_p = x + scale * std(x) * u`` with ``u ~ U[0, 1)`` per coordinate and
``std(x)`` the standard deviation of the whole real batch, then
``xhat = x + alpha * (x_p - x)`` with ``alpha ~ U[0, 1]`` per sample.

Defaults: ``lambda = 10``, ``k = 1``, ``scale = 0.5``. Per-sample penalty: images
default to ``d_norm=layer`` and ``d_norm=batch`` is refused.
"""

from __future__ import annotations

import torch
from torch import Tensor

import ganlab
from ganlab.errors import GanlabError
from ganlab.interfaces import VariantSpec
from ganlab_plugins.ns import NonSaturatingObjective
from ganlab_plugins.penalties import input_gradients, require_per_sample_discriminator


def perturb_around_data(real: Tensor, scale: float, rng: torch.Generator | None) -> Tensor:
    """A random point between each real sample and a noisy copy of it."""
    noise = torch.rand(real.shape, generator=rng, device=real.device)
    perturbed = real + scale * real.std() * noise
    alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), generator=rng, device=real.device)
    return real + alpha * (perturbed - real)


def norm_target_penalty(grads: Tensor, weight: float, target: float) -> Tensor:
    """``weight * E[(||g||_2 - target)^2]`` over per-sample gradients ``grads`` (N, dim)."""
    return weight * (grads.norm(dim=1) - target).pow(2).mean()


class DraganObjective(NonSaturatingObjective):
    def __init__(self, generator, discriminator, hparams, data):
        super().__init__(generator, discriminator, hparams, data)
        require_per_sample_discriminator("dragan", data, self.hp)
        self.weight = float(self.hp["dragan_lambda"])
        self.target = float(self.hp["dragan_k"])
        self.scale = float(self.hp["dragan_scale"])
        if self.weight < 0 or self.scale < 0:
            raise GanlabError("dragan: dragan_lambda and dragan_scale must not be negative")

    def penalty(self, real, fake, real_labels, fake_labels):
        xhat = perturb_around_data(real.detach(), self.scale, self.rng)
        return norm_target_penalty(input_gradients(self, xhat, real_labels), self.weight, self.target)


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="dragan",
        objective=DraganObjective,
        description="non-saturating GAN + gradient-norm penalty at perturbed real samples",
        citation="Kodali, Abernethy, Hays & Kira 2017, On Convergence and Stability of GANs (arXiv:1705.07215)",
        hparams={"dragan_lambda": 10.0, "dragan_k": 1.0, "dragan_scale": 0.5, "d_norm": "layer"},
    ))
