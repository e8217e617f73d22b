"""SN-GAN: hinge loss with spectral normalisation of every D layer (Miyato et al. 2018).

Each D weight matrix W is replaced by ``W / sigma(W)``, its largest singular value
estimated by one power iteration per forward pass, which bounds D's Lipschitz constant
by 1 layer by layer without the capacity loss of weight clipping. Losses are the hinge
losses of variant ``hinge`` (the paper's equation 17).

Defaults: ``spectral_norm=true``; D without batch norm (``d_norm=none``, as in the
paper's SN discriminators); Adam lr 2e-4, betas (0.5, 0.999), one D step per G step
(the paper's setting "C", which equals the core's common defaults).
"""

from __future__ import annotations

import ganlab
from ganlab.interfaces import VariantSpec
from ganlab_plugins.hinge import HingeObjective


class SpectralNormHingeObjective(HingeObjective):
    """The hinge objective; spectral normalisation lives in D (``spectral_norm=true``)."""


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="sngan",
        objective=SpectralNormHingeObjective,
        description="spectrally normalised D (Lipschitz <= 1 per layer) trained with the hinge loss",
        citation="Miyato et al. 2018, Spectral Normalization for Generative Adversarial Networks (ICLR)",
        hparams={"spectral_norm": True, "d_norm": "none", "n_critic": 1},
    ))
