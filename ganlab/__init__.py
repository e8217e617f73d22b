"""ganlab: a pluggable toolkit of GAN variants.

The core (this package) defines the contracts and the machinery; every GAN variant,
vanilla included, is a plugin found through the ``ganlab`` entry-point group.
"""

__version__ = "0.1.0"

from ganlab.hookspecs import hookimpl  # noqa: E402  (what plugins decorate their hooks with)

__all__ = ["__version__", "hookimpl"]
