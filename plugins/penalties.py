"""Gradient penalties on D's input gradient, shared by wgan-gp, r1 and dragan.

Not a variant (it registers nothing). Every penalty takes ``autograd.grad`` with
``create_graph=True`` and returns a scalar the objective adds to D's loss, so the D phase
ends in one ordinary ``backward()``: that is where DistributedDataParallel averages the
weight gradients across processes (``autograd.grad`` is taken w.r.t. the input only).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec, Objective


def input_gradients(objective: Objective, x: Tensor, labels: Tensor | None) -> Tensor:
    """Per-sample gradient of D's score w.r.t. its input, flattened to (N, dim), in the graph."""
    x = x.detach().requires_grad_(True)
    scores = objective.score(x, labels)
    # Scores of different samples depend only on their own input (no batch norm), so the
    # gradient of their sum holds every sample's own gradient.
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.flatten(1)


def require_per_sample_discriminator(variant: str, data: DataSpec, hp: dict) -> None:
    """Batch norm mixes samples, so an input-gradient penalty would be wrong: refuse it."""
    if data.kind == "image" and hp.get("d_norm") == "batch":
        raise GanlabError(f"{variant}: a gradient penalty needs a D without batch norm; "
                          f"use --set d_norm=layer (or none)")
