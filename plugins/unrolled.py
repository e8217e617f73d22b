"""Unrolled GAN (Metz, Poole, Pfau & Sohl-Dickstein 2017, equations 4-7).

G is trained against the discriminator it would face after D has answered: with
``theta_D^0 = theta_D`` and ``theta_D^{i+1} = theta_D^i - eta * step(grad_D L_D(theta_G, theta_D^i))``,
G minimises the min-max value at ``theta_D^k``:

    f_k(theta_G) = E_x[log D_k(x)] + E_z[log(1 - D_k(G(z)))],   D_k = D(.; theta_D^k(theta_G)).

What exactly is unrolled, in :meth:`UnrolledObjective.unrolled_generator_loss`:

- k steps of D's *own* optimiser, written out as differentiable tensor code: Adam
  (bias-corrected moments, started from D's current Adam moments and step count, with D's
  lr/betas/eps), or plain SGD / RMSprop (alpha 0.99) when ``optimizer`` says so;
- each unrolled step uses the same real batch (the last one D trained on) and the same
  generated batch G(z) that G's loss is taken on, as in the authors' reference notebook;
- ``torch.func.functional_call`` evaluates D at the unrolled weights and every gradient is
  taken with ``create_graph=True``, so G's gradient flows through all k updates: both
  through G(z) in the final loss and through how G(z) moved D's weights (the paper's
  second term, ``df/dtheta_D^k * dtheta_D^k/dtheta_G``). Nothing is detached.

D itself trains exactly as in vanilla (one ordinary min-max step per real batch); the
unrolled copies are thrown away after G's update, and D's batch-norm statistics are
updated only on copies. ``g_loss=non_saturating`` makes G minimise
``-E_z[log D_k(G(z))]`` instead. Defaults: ``unroll_steps = 5`` (the authors' 2-D reference notebook),
min-max G loss. Costs roughly k+1 times a vanilla G step, plus second-order terms.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

import ganlab
from ganlab.errors import GanlabError
from ganlab.interfaces import Objective, VariantSpec
from ganlab_plugins.vanilla import minimax_discriminator_loss, non_saturating_generator_loss

G_LOSSES = ("minimax", "non_saturating")
UNROLLABLE = ("adam", "sgd", "rmsprop")


def adam_update(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, step: int,
                lr: float, betas: tuple[float, float], eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """One torch.optim.Adam step (no weight decay, no amsgrad) as differentiable tensor code.

    ``step`` is the count after this update. Returns (new param, new exp_avg, new exp_avg_sq).
    """
    beta1, beta2 = betas
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    m_hat = exp_avg / (1 - beta1 ** step)
    v_hat = exp_avg_sq / (1 - beta2 ** step)
    # clamp: d sqrt(v)/dv is infinite at v = 0 (a parameter with zero gradient so far);
    # the clamp gives it gradient 0 there and changes the forward value by < 1e-15.
    return param - lr * m_hat / (v_hat.clamp_min(1e-30).sqrt() + eps), exp_avg, exp_avg_sq


def rmsprop_update(param: Tensor, grad: Tensor, square_avg: Tensor, lr: float, alpha: float,
                   eps: float) -> tuple[Tensor, Tensor]:
    """One torch.optim.RMSprop step (no momentum, not centred)."""
    square_avg = alpha * square_avg + (1 - alpha) * grad * grad
    return param - lr * grad / (square_avg.clamp_min(1e-30).sqrt() + eps), square_avg


class UnrolledObjective(Objective):
    def __init__(self, generator, discriminator, hparams, data):
        super().__init__(generator, discriminator, hparams, data)
        self.unroll_steps = int(self.hp["unroll_steps"])
        if self.unroll_steps < 0:
            raise GanlabError(f"unrolled: unroll_steps must be >= 0, got {self.unroll_steps}")
        if self.hp["g_loss"] not in G_LOSSES:
            raise GanlabError(f"unrolled: g_loss must be one of {', '.join(G_LOSSES)}, got {self.hp['g_loss']!r}")
        if self.hp.get("optimizer", "adam") not in UNROLLABLE:
            raise GanlabError(f"unrolled: can unroll optimizer {', '.join(UNROLLABLE)}, "
                              f"not {self.hp.get('optimizer')!r}")

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return minimax_discriminator_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        if self.hp["g_loss"] == "non_saturating":
            return non_saturating_generator_loss(fake_scores)
        # The min-max value V itself; its real-data term reaches G through theta_D^k.
        assert real_scores is not None
        return F.logsigmoid(real_scores).mean() + F.logsigmoid(-fake_scores).mean()

    # ---- the unroll ------------------------------------------------------------------------
    def functional_score(self, params: Mapping[str, Tensor], buffers: Mapping[str, Tensor],
                         x: Tensor, labels: Tensor | None) -> Tensor:
        """D's scores with its weights replaced by ``params`` (D's own weights untouched)."""
        return functional_call(self.D, {**params, **buffers}, (self.augment(x), labels))

    def unrolled_parameters(self, real: Tensor, real_labels: Tensor | None, fake: Tensor,
                            fake_labels: Tensor | None) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """D's weights after ``unroll_steps`` differentiable optimiser steps, and D's buffers."""
        params = {n: p for n, p in self.D.named_parameters() if p.requires_grad}
        # Copies, so batch-norm running statistics of the unrolled passes never reach D.
        buffers = {n: b.clone() for n, b in self.D.named_buffers()}
        if self.unroll_steps == 0:
            return params, buffers
        optimizer = self.optimizers["D"]
        group = optimizer.param_groups[0]
        kind = self.hp.get("optimizer", "adam")
        states = {}
        for name, p in params.items():
            saved = optimizer.state.get(p, {})
            states[name] = {
                "exp_avg": saved.get("exp_avg", torch.zeros_like(p)),
                "exp_avg_sq": saved.get("exp_avg_sq", torch.zeros_like(p)),
                "square_avg": saved.get("square_avg", torch.zeros_like(p)),
                "step": int(saved["step"]) if "step" in saved else 0,
            }
        for _ in range(self.unroll_steps):
            loss = self.discriminator_loss(self.functional_score(params, buffers, real, real_labels),
                                           self.functional_score(params, buffers, fake, fake_labels))
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True, allow_unused=True)
            updated = {}
            for (name, p), g in zip(params.items(), grads):
                if g is None:  # a weight this loss does not use (e.g. an unused projection)
                    updated[name] = p
                    continue
                st = states[name]
                if kind == "adam":
                    st["step"] += 1
                    updated[name], st["exp_avg"], st["exp_avg_sq"] = adam_update(
                        p, g, st["exp_avg"], st["exp_avg_sq"], st["step"], group["lr"],
                        group["betas"], group["eps"])
                elif kind == "rmsprop":
                    updated[name], st["square_avg"] = rmsprop_update(
                        p, g, st["square_avg"], group["lr"], group["alpha"], group["eps"])
                else:
                    updated[name] = p - group["lr"] * g
            params = updated
        return params, buffers

    def unrolled_generator_loss(self, fake: Tensor, fake_labels: Tensor | None, real: Tensor,
                                real_labels: Tensor | None) -> Tensor:
        """G's loss against D unrolled ``unroll_steps`` steps on (real, fake); a function of G(z)."""
        params, buffers = self.unrolled_parameters(real, real_labels, fake, fake_labels)
        fake_scores = self.functional_score(params, buffers, fake, fake_labels)
        real_scores = self.functional_score(params, buffers, real, real_labels)
        return self.generator_loss(fake_scores, real_scores)

    def generator_step(self, batch_size: int) -> dict[str, Tensor]:
        labels = self.sample_labels(batch_size)
        fake = self.generate(batch_size, labels)
        loss = self.unrolled_generator_loss(fake, labels, self._last_real, self._last_real_labels)
        stats = {"g_loss": loss.detach()}
        self._update("G", loss, stats)  # D's .grad from this backward is cleared there
        return stats


@ganlab.hookimpl
def ganlab_register(registry):
    registry.add_variant(VariantSpec(
        name="unrolled",
        objective=UnrolledObjective,
        description="G descends through k differentiable unrolled D updates (anticipates D's reply)",
        citation="Metz, Poole, Pfau & Sohl-Dickstein 2017, Unrolled Generative Adversarial Networks (ICLR)",
        hparams={"unroll_steps": 5, "g_loss": "minimax"},
    ))
