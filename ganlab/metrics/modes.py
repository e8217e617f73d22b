"""Mode-collapse statistics for 2-D Gaussian mixtures (the VEEGAN / PacGAN protocol).

Each generated sample is assigned to its nearest mode centre. It is *high quality* if it
lies within ``threshold_std`` standard deviations of that centre (3 in both papers). A
mode is *covered* if at least one high-quality sample has it as its nearest mode. The
*reverse KL* compares the histogram ``p`` of high-quality samples over the modes with the
mixture's weights ``q``: ``KL(p || q) = sum_k p_k log(p_k / q_k)``.

Edge cases, chosen so that every value stays a finite, plottable number:

* modes with ``p_k = 0`` contribute 0 (the limit of ``p log p`` as ``p -> 0``);
* with no high-quality sample at all, ``p`` is undefined; we report the largest value
  ``KL(p || q)`` can take for any histogram, ``max_k log(1 / q_k)`` (all mass on the
  least likely mode). ``modes_covered == 0`` and ``high_quality == 0`` tell this case
  apart from a real collapse onto one mode.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec


def mixture_tensors(spec: DataSpec) -> tuple[Tensor, float, Tensor]:
    """The mixture's centres (K x 2, float64), std and normalised weights (K,)."""
    if spec.modes is None or spec.mode_std is None:
        raise GanlabError(f"dataset {spec.name!r} has no known modes; mode metrics need a "
                          f"Gaussian mixture such as ring8 or grid25")
    centres = torch.as_tensor(spec.modes, dtype=torch.float64)
    k = centres.shape[0]
    weights = (torch.full((k,), 1.0 / k, dtype=torch.float64) if spec.mode_weights is None
               else torch.as_tensor(spec.mode_weights, dtype=torch.float64))
    return centres, float(spec.mode_std), weights / weights.sum()


def nearest_modes(samples: Tensor, centres: Tensor) -> tuple[Tensor, Tensor]:
    """Index of, and Euclidean distance to, each sample's nearest centre."""
    dist = torch.cdist(samples.to(torch.float64), centres)
    best, idx = dist.min(dim=1)
    return idx, best


def kl_divergence(p: Tensor, q: Tensor) -> float:
    """``sum_k p_k log(p_k / q_k)`` with ``0 log 0 = 0``; inf where p > 0 but q = 0."""
    p, q = p.to(torch.float64), q.to(torch.float64)
    support = p > 0
    if bool((q[support] <= 0).any()):
        return math.inf
    return float((p[support] * (p[support].log() - q[support].log())).sum())


def mixture_mode_stats(samples: Tensor, spec: DataSpec, threshold_std: float = 3.0) -> dict[str, Any]:
    """``modes_covered`` (int), ``high_quality`` (0..1), ``reverse_kl``, ``mode_counts``.

    ``samples`` is N x 2 (any device/dtype); ``spec`` a mixture's DataSpec.
    """
    samples = samples.detach().cpu()
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise GanlabError(f"mode metrics expect N x 2 points, got shape {tuple(samples.shape)}")
    if samples.shape[0] == 0:
        raise GanlabError("mode metrics need at least one sample")
    centres, std, weights = mixture_tensors(spec)
    idx, dist = nearest_modes(samples, centres)
    finite = torch.isfinite(samples).all(dim=1)  # a NaN sample is never high quality
    high = finite & (dist <= threshold_std * std)
    counts = torch.bincount(idx[high], minlength=centres.shape[0])
    n_high = int(counts.sum())
    if n_high == 0:
        reverse_kl = float((-weights[weights > 0].log()).max())
    else:
        reverse_kl = kl_divergence(counts.double() / n_high, weights)
    return {
        "modes_covered": int((counts > 0).sum()),
        "high_quality": n_high / samples.shape[0],
        "reverse_kl": reverse_kl,
        "mode_counts": [int(c) for c in counts],
    }


def categorical_mode_stats(predicted: Tensor, num_modes: int, reference: Tensor | None = None,
                           min_count: int = 1) -> dict[str, Any]:
    """Mode coverage of discrete modes (classes, Stacked-MNIST digit triples).

    ``predicted`` holds one mode index per generated sample. A mode is covered when at
    least ``min_count`` samples fall in it (PacGAN counts a single one). ``kl`` is
    ``KL(p || q)`` of the generated histogram ``p`` against ``reference`` (a histogram
    or probabilities over the modes; uniform when None). Returns ``covered``, ``kl``,
    ``counts``.
    """
    predicted = predicted.detach().cpu().long().flatten()
    if predicted.numel() == 0:
        raise GanlabError("mode metrics need at least one sample")
    if int(predicted.min()) < 0 or int(predicted.max()) >= num_modes:
        raise GanlabError(f"mode indices must lie in 0..{num_modes - 1}")
    counts = torch.bincount(predicted, minlength=num_modes)
    if reference is None:
        q = torch.full((num_modes,), 1.0 / num_modes, dtype=torch.float64)
    else:
        q = reference.detach().cpu().to(torch.float64)
        if q.shape != (num_modes,) or bool((q < 0).any()) or float(q.sum()) <= 0:
            raise GanlabError(f"the reference histogram must be {num_modes} non-negative numbers")
        q = q / q.sum()
    return {
        "covered": int((counts >= min_count).sum()),
        "kl": kl_divergence(counts.double() / counts.sum(), q),
        "counts": [int(c) for c in counts],
    }
