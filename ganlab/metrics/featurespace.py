"""Metrics between two sets of features: generated (first) and real (second).

FID, KID, Inception Score and precision/recall are torch-fidelity's own formulas, called
on feature tensors so that several metrics share one feature extraction. Density and
coverage (Naeem et al. 2020) are computed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ganlab.errors import GanlabError


def _check(generated: Tensor, real: Tensor, need: int, what: str) -> None:
    if generated.ndim != 2 or real.ndim != 2 or generated.shape[1] != real.shape[1]:
        raise GanlabError(f"{what}: features must be N x D with the same D, got "
                          f"{tuple(generated.shape)} and {tuple(real.shape)}")
    if min(len(generated), len(real)) < need:
        raise GanlabError(f"{what} needs at least {need} generated and {need} real samples, "
                          f"got {len(generated)} and {len(real)}")


def frechet_distance(generated: Tensor, real: Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) between Gaussian fits of the features."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    _check(generated, real, 2, "FID")
    stats_g = fid_features_to_statistics(generated.detach().cpu().double())
    stats_r = fid_features_to_statistics(real.detach().cpu().double())
    return float(fid_statistics_to_metric(stats_g, stats_r, verbose=False)[KEY_METRIC_FID])


def kernel_distance(generated: Tensor, real: Tensor, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float, int]:
    """KID (unbiased MMD^2, cubic polynomial kernel) averaged over random subsets: (mean, std,
    the subset size used, which is capped by the smaller set)."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    _check(generated, real, 2, "KID")
    size = min(subset_size, len(generated), len(real))
    out = kid_features_to_metric(generated.detach().cpu().double(), real.detach().cpu().double(),
                                 kid_subsets=subsets, kid_subset_size=size, rng_seed=seed, verbose=False)
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD]), size


def inception_score(logits: Tensor, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """exp E_x KL(p(y|x) || p(y)) over ``splits`` chunks of the logits: (mean, std)."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    if logits.ndim != 2 or len(logits) < splits:
        raise GanlabError(f"Inception Score needs at least {splits} samples, got {len(logits)}")
    out = isc_features_to_metric(logits.detach().cpu(), splits=splits, shuffle=True, rng_seed=seed)
    return float(out[KEY_METRIC_ISC_MEAN]), float(out[KEY_METRIC_ISC_STD])


def precision_recall(generated: Tensor, real: Tensor, k: int = 3) -> tuple[float, float]:
    """Kynkaanniemi et al. (2019): share of generated samples inside the real manifold
    (k-NN balls) and of real samples inside the generated one."""
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    _check(generated, real, k + 1, "precision/recall")
    out = prc_features_to_metric(generated.detach().cpu().float(), real.detach().cpu().float(),
                                 prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=True, verbose=False)
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def density_coverage(generated: Tensor, real: Tensor, k: int = 5, chunk: int = 2048) -> dict[str, Any]:
    """Density and coverage of Naeem et al. (2020), "Reliable fidelity and diversity metrics".

    Each real sample ``r_i`` gets a ball of radius ``d_i`` = distance to its k-th nearest
    other real sample.
    density  = 1/(k N) * sum_j #{i : ||g_j - r_i|| <= d_i}   (can exceed 1)
    coverage = 1/M * #{i : some g_j lies within d_i of r_i}   (0..1)
    """
    from sklearn.neighbors import NearestNeighbors

    _check(generated, real, k + 1, "density/coverage")
    gen = generated.detach().cpu().double()
    ref = real.detach().cpu().double()
    # n_neighbors=k+1: each real point's nearest neighbour in its own set is itself.
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(ref.numpy()).kneighbors(ref.numpy())
    radii = torch.from_numpy(np.ascontiguousarray(dist[:, k]))
    inside_count = 0
    covered = torch.zeros(len(ref), dtype=torch.bool)
    for start in range(0, len(gen), chunk):
        inside = torch.cdist(gen[start:start + chunk], ref) <= radii[None, :]
        inside_count += int(inside.sum())
        covered |= inside.any(dim=0)
    return {"density": inside_count / (k * len(gen)), "coverage": float(covered.double().mean())}
