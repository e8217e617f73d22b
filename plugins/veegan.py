"""VEEGAN: a reconstructor network maps data back to noise (Srivastava et al. 2017).

Three networks: generator G: z -> x, reconstructor F: x -> z, and a discriminator on
*joint* pairs D(z, x). D tells generator pairs (z, G(z)), z ~ N(0, I), from reconstructor
pairs (F(x), x), x ~ data; its logit estimates the log density ratio between the two joint
distributions, which VEEGAN uses to estimate the KL term of its objective (eq. 8):

- D loss (logistic): ``-E_x[log sigma(D(F(x), x))] - E_z[log(1 - sigma(D(z, G(z))))]``.
  Here D's logit is positive for *reconstructor* (data) pairs, so the usual reading of
  ``d_real``/``d_fake`` holds; the paper's ``D_omega`` is its negation;
- G and F minimise ``O = -E_z[D(z, G(z))] + lambda * E_z[||z - F(G(z))||_2^2]``
  (Algorithm 1, with the l2 distance on noise): the first term is the KL estimate,
  the second the autoencoder loss *over the noise*. F only gets the reconstruction
  term's gradient. If G drops a mode, F maps that mode's data to noise that G never
  uses, D sees the mismatch, and G is pushed to cover it.

F is an extra module with its own Adam optimiser (lr ``lr_f``), so it is checkpointed and
moved like G and D. This file supplies its own nets (``VariantSpec.nets``) for points
(MLPs) and images (conv encoders); F is deterministic. Defaults: ``lambda = 1``
(``recon_weight``; the paper writes no weight, while the authors' 2-D notebook uses a
unit-variance Gaussian log-likelihood, i.e. ``lambda = 0.5``), ``lr_f = 1e-3`` (that
notebook trains every network with Adam at 1e-3). The squared distance is summed over
all ``latent_dim`` noise coordinates, so with a large latent (ring8 suggests 256) the
reconstruction term dominates G's loss early in training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

import ganlab
from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec, Discriminator, Generator, Objective, VariantSpec, grad_norm, make_optimizer
from ganlab.nets import DCGANGenerator, MLPGenerator, conv_plan
from ganlab_plugins.vanilla import minimax_discriminator_loss


def reconstruction_loss(z: Tensor, z_reconstructed: Tensor) -> Tensor:
    """``E[||z - F(G(z))||_2^2]``: squared l2 per sample, averaged over the batch."""
    return (z - z_reconstructed).pow(2).sum(dim=1).mean()


def joint_generator_loss(fake_scores: Tensor) -> Tensor:
    """``-E_z[D(z, G(z))]``: the density-ratio (KL) estimate G minimises, raw logits."""
    return -fake_scores.mean()


# ---- networks ----------------------------------------------------------------------------------
def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise GanlabError(f"d_norm must be batch, layer or none, got {kind!r}")


def _mlp(in_dim: int, out_dim: int, hidden: int, depth: int, act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), act()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def _conv_encoder(shape: tuple[int, ...], base_channels: int, norm: str) -> tuple[nn.Sequential, int]:
    """DCGAN-style strided convs to a flat feature vector; returns (body, feature count)."""
    channels, height, _ = shape
    start, steps = conv_plan(height)
    layers: list[nn.Module] = [nn.Conv2d(channels, base_channels, 3, 1, 1), nn.LeakyReLU(0.2)]
    c = base_channels
    for _ in range(steps):
        layers += [nn.Conv2d(c, c * 2, 4, 2, 1), _norm(norm, c * 2), nn.LeakyReLU(0.2)]
        c *= 2
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), c * start * start


class Reconstructor(nn.Module):
    """F: x -> z, deterministic."""

    def __init__(self, body: nn.Module, out: nn.Module):
        super().__init__()
        self.body, self.out = body, out

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))


class JointDiscriminator(Discriminator):
    """D(z, x): features of x, concatenated with z, through an MLP head to one logit."""

    def __init__(self, x_features: nn.Module, feature_dim: int, latent_dim: int, hidden: int, depth: int):
        super().__init__()
        self.x_features = x_features
        self.head = _mlp(feature_dim + latent_dim, 1, hidden, depth, lambda: nn.LeakyReLU(0.2))

    def forward(self, x: Tensor, labels: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        if z is None:
            raise GanlabError("veegan's discriminator scores (z, x) pairs; call it with z=...")
        return self.head(torch.cat([self.x_features(x), z], dim=1)).squeeze(1)


def _check_options(hp: Mapping[str, Any]) -> None:
    if hp.get("conditional"):
        raise GanlabError("veegan: conditional=true is not supported (its nets take no labels)")
    if int(hp.get("mbstd_group", 0)):
        raise GanlabError("veegan: its own nets do not implement mbstd_group")


def point_nets(data: DataSpec, hp: Mapping[str, Any]) -> tuple[Generator, Discriminator]:
    _check_options(hp)
    latent, hidden, depth = int(hp["latent_dim"]), int(hp["hidden"]), int(hp["depth"])
    g = MLPGenerator(latent, data.dim, hidden, depth)
    d = JointDiscriminator(nn.Flatten(), data.dim, latent, hidden, depth)
    return g, d


def image_nets(data: DataSpec, hp: Mapping[str, Any]) -> tuple[Generator, Discriminator]:
    _check_options(hp)
    latent = int(hp["latent_dim"])
    g = DCGANGenerator(latent, data.shape, int(hp["base_channels"]))
    body, features = _conv_encoder(data.shape, int(hp["base_channels"]), str(hp["d_norm"]))
    d = JointDiscriminator(body, features, latent, int(hp["hidden"]), 1)
    return g, d


def build_reconstructor(data: DataSpec, hp: Mapping[str, Any]) -> Reconstructor:
    latent = int(hp["latent_dim"])
    if data.kind == "points":
        return Reconstructor(nn.Flatten(), _mlp(data.dim, latent, int(hp["hidden"]), int(hp["depth"]), nn.ReLU))
    # Batch norm in F is harmless (no penalty on it) and helps the conv encoder train.
    body, features = _conv_encoder(data.shape, int(hp["base_channels"]), "batch")
    return Reconstructor(body, nn.Linear(features, latent))


# ---- objective ---------------------------------------------------------------------------------
class VeeganObjective(Objective):
    def __init__(self, generator, discriminator, hparams, data):
        super().__init__(generator, discriminator, hparams, data)
        if not isinstance(discriminator, JointDiscriminator):
            raise GanlabError("veegan needs its joint discriminator D(z, x); do not replace its nets")
        self.F = build_reconstructor(data, self.hp).to(next(generator.parameters()).device)
        self.recon_weight = float(self.hp["recon_weight"])
        if self.recon_weight < 0:
            raise GanlabError(f"veegan: recon_weight must not be negative, got {self.recon_weight}")

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, "F": self.F}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = super().build_optimizers()
        optimizers["F"] = make_optimizer(self.F.parameters(), {**self.hp, "lr_g": self.hp["lr_f"]}, "g")
        return optimizers

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return minimax_discriminator_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return joint_generator_loss(fake_scores)

    def joint_score(self, z: Tensor, x: Tensor) -> Tensor:
        return self.D(self.augment(x), None, z=z)

    def discriminator_step(self, real: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        n = real.shape[0] * int(self.hp.get("fake_per_real", 1))
        with torch.no_grad():
            z = self.G.sample_latent(n, self.rng)
            fake = self.G(z)
            z_reconstructed = self.F(real)
        real_scores = self.joint_score(z_reconstructed, real)
        fake_scores = self.joint_score(z, fake)
        loss = self.discriminator_loss(real_scores, fake_scores)
        stats = {"d_loss": loss.detach()}
        self._update("D", loss, stats)
        self.after_discriminator_step()
        stats.update(self.game_stats(real_scores.detach(), fake_scores.detach()))
        return stats

    def generator_step(self, batch_size: int) -> dict[str, Tensor]:
        z = self.G.sample_latent(batch_size, self.rng)
        fake = self.G(z)
        adversarial = self.generator_loss(self.joint_score(z, fake))
        reconstruction = reconstruction_loss(z, self.F(fake))
        loss = adversarial + self.recon_weight * reconstruction
        for name in ("G", "F"):
            self.optimizers[name].zero_grad(set_to_none=True)
        loss.backward()  # one backward: G gets both terms, F only the reconstruction term
        stats = {"g_loss": loss.detach(), "g_adversarial": adversarial.detach(),
                 "reconstruction": reconstruction.detach()}
        if self.record_stats:
            stats["grad_norm_G"], stats["grad_norm_F"] = grad_norm(self.G), grad_norm(self.F)
        self.optimizers["G"].step()
        self.optimizers["F"].step()
        self.D.zero_grad(set_to_none=True)
        return stats


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="veegan",
        objective=VeeganObjective,
        description="reconstructor F: x -> z and a D on (z, x) pairs; G+F also autoencode the noise",
        citation="Srivastava, Valkov, Russell, Gutmann & Sutton 2017, VEEGAN: Reducing Mode Collapse "
                 "in GANs using Implicit Variational Learning (NeurIPS)",
        hparams={"recon_weight": 1.0, "lr_f": 1e-3},
        nets={"points": point_nets, "image": image_nets},
    ))
