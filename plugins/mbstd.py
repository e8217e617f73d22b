"""Minibatch standard deviation in D (Karras, Aila, Laine & Lehtinen 2018, section 3).

Before D's last layer, samples are split into groups of size g; for each feature the
standard deviation across the group is taken, averaged over features into one number,
and appended to every group member's features as an extra channel. A generator that
produces near-identical samples shows a low value there, so D can punish the lack of
variety directly (a simplified, parameter-free form of minibatch discrimination).

The core's nets implement the layer (``mbstd_group``). Default group size 4 (ProGAN's).
ProGAN trained with WGAN-GP; here the feature is paired with the losses of variant
``ns`` so that comparing ``mbstd`` with ``ns`` isolates the feature's effect.
"""

from __future__ import annotations

import ganlab
from ganlab.interfaces import VariantSpec
from ganlab_plugins.ns import NonSaturatingObjective


class MinibatchStdObjective(NonSaturatingObjective):
    """The non-saturating objective; the feature lives in D (``mbstd_group``)."""


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="mbstd",
        objective=MinibatchStdObjective,
        description="non-saturating GAN whose D sees the minibatch standard deviation as a feature",
        citation="Karras, Aila, Laine & Lehtinen 2018, Progressive Growing of GANs (ICLR), section 3",
        hparams={"mbstd_group": 4},
    ))
