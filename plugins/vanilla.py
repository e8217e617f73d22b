"""Vanilla GAN (Goodfellow et al. 2014): the reference plugin.

D and G play min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))], with
D(x) = sigmoid(score). D ascends V; G descends it. That generator loss, as written,
saturates: when D confidently rejects fakes early on, log(1 - D(G(z))) is flat and G's
gradient vanishes. ``g_loss=non_saturating`` swaps in the paper's own heuristic,
maximising log D(G(z)) instead. ``fake_per_real=k`` shows D k generated samples per real one.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

import ganlab
from ganlab.errors import GanlabError
from ganlab.interfaces import Objective, VariantSpec

G_LOSSES = ("saturating", "non_saturating")


def minimax_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """-V(D, G): D maximises E[log D(x)] + E[log(1 - D(G(z)))].

    log D = logsigmoid(s) and log(1 - D) = logsigmoid(-s), computed stably from logits.
    """
    return -(F.logsigmoid(real_scores).mean() + F.logsigmoid(-fake_scores).mean())


def saturating_generator_loss(fake_scores: Tensor) -> Tensor:
    """E[log(1 - D(G(z)))], minimised by G: the min-max game exactly as written."""
    return F.logsigmoid(-fake_scores).mean()


def non_saturating_generator_loss(fake_scores: Tensor) -> Tensor:
    """-E[log D(G(z))]: same fixed point, strong gradients when D rejects the fakes."""
    return -F.logsigmoid(fake_scores).mean()


class VanillaObjective(Objective):
    def __init__(self, generator, discriminator, hparams, data):
        super().__init__(generator, discriminator, hparams, data)
        if self.hp["g_loss"] not in G_LOSSES:
            raise GanlabError(f"g_loss must be one of {', '.join(G_LOSSES)}, got {self.hp['g_loss']!r}")

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return minimax_discriminator_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        if self.hp["g_loss"] == "saturating":
            return saturating_generator_loss(fake_scores)
        return non_saturating_generator_loss(fake_scores)


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="vanilla",
        objective=VanillaObjective,
        description="the original min-max game V(D,G) with the saturating G loss as written",
        citation="Goodfellow et al. 2014, Generative Adversarial Nets (NeurIPS)",
        hparams={"g_loss": "saturating", "fake_per_real": 1},
    ))
