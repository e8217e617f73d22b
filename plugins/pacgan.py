"""PacGAN: D judges packs of m samples at once (Lin, Khetan, Fanti & Oh 2018).

Every D input is the concatenation of m independent samples, all real or all generated
(features concatenated for points, channels for images). A pack of m draws from a
collapsed generator is easy to tell from m draws of the data, so packing penalises mode
collapse; the paper shows it turns D into a test on the m-fold product distribution.
The losses are unchanged: those of variant ``ns`` (the standard GAN, as in the paper).

D's first layer takes m times as many inputs (the core's nets read ``pack``); packing
happens in :meth:`PackedObjective.score`, the one place D sees samples. Consecutive
samples form a pack, so the batch size must be a multiple of m. Default ``pack = 2``
(PacGAN2, the paper's main setting); set ``--set pack=3`` etc.
"""

from __future__ import annotations

from torch import Tensor

import ganlab
from ganlab.errors import GanlabError
from ganlab.interfaces import VariantSpec
from ganlab_plugins.ns import NonSaturatingObjective


def pack_samples(x: Tensor, m: int) -> Tensor:
    """(N, d0, ...) -> (N / m, m * d0, ...): groups of m consecutive samples, concatenated on dim 1."""
    n = x.shape[0]
    if n % m:
        raise GanlabError(f"pacgan: a batch of {n} samples cannot be split into packs of {m}")
    return x.reshape(n // m, m * x.shape[1], *x.shape[2:])


class PackedObjective(NonSaturatingObjective):
    def __init__(self, generator, discriminator, hparams, data):
        super().__init__(generator, discriminator, hparams, data)
        self.pack = int(self.hp["pack"])
        batch = int(self.hp["batch_size"])
        if batch % self.pack:
            raise GanlabError(f"pacgan: batch_size {batch} is not a multiple of pack {self.pack}; "
                              f"choose --set batch_size={batch - batch % self.pack or self.pack}")
        if self.hp.get("conditional"):
            raise GanlabError("pacgan: conditional=true is not supported (a pack mixes labels)")

    def score(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.D(pack_samples(self.augment(x), self.pack), None)


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="pacgan",
        objective=PackedObjective,
        description="D sees packs of m samples (all real or all fake), which exposes mode collapse",
        citation="Lin, Khetan, Fanti & Oh 2018, PacGAN: The power of two samples in GANs (NeurIPS)",
        hparams={"pack": 2},
    ))
