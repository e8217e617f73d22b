"""Feature-space metrics against independent computations and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ganlab.errors import GanlabError
from ganlab.metrics.featurespace import (density_coverage, frechet_distance, inception_score,
                                         kernel_distance, precision_recall)


def _fixed_features():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 12))
    mix = rng.normal(size=(12, 12)) / 4
    b = rng.normal(size=(300, 12)) @ (np.eye(12) + mix) + 0.7
    return torch.from_numpy(a), torch.from_numpy(b)


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The Frechet distance written out with scipy's matrix square root (independent of
    torch-fidelity's eigenvalue route)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean))


def test_fid_of_features_against_themselves_is_zero():
    a, _ = _fixed_features()
    assert abs(frechet_distance(a, a)) < 1e-8


def test_fid_matches_an_independent_scipy_computation():
    a, b = _fixed_features()
    ours = frechet_distance(a, b)
    assert ours == pytest.approx(scipy_fid(a.numpy(), b.numpy()), rel=1e-6)
    assert ours > 1.0


def test_fid_of_two_known_gaussians():
    # N(0, I) vs N(m, 4I) in D dims: |m|^2 + D (1 + 4 - 2*2) = |m|^2 + D
    rng = torch.Generator().manual_seed(0)
    a = torch.randn(50_000, 4, generator=rng, dtype=torch.float64)
    b = 2 * torch.randn(50_000, 4, generator=rng, dtype=torch.float64) + 1.0
    assert frechet_distance(a, b) == pytest.approx(4 + 4, rel=0.02)


def test_density_and_coverage_match_a_hand_computation():
    # Reals on a line at 0, 1, 2, 3, 10; with k=1 their radii are 1, 1, 1, 1, 7.
    real = torch.tensor([[0.0, 0], [1, 0], [2, 0], [3, 0], [10, 0]])
    fake = torch.tensor([[0.5, 0], [2.0, 0], [20.0, 0]])
    # 0.5 lies in the balls of reals 0 and 1; 2.0 in those of 1, 2, 3; 20 in none.
    out = density_coverage(fake, real, k=1)
    assert out["density"] == pytest.approx((2 + 3 + 0) / (1 * 3))
    assert out["coverage"] == pytest.approx(4 / 5)  # every real but 10 has a fake in its ball


def test_identical_sets_have_full_coverage_and_far_sets_none():
    a, b = _fixed_features()
    assert density_coverage(a, a, k=5)["coverage"] == 1.0
    far = density_coverage(a + 1e3, a, k=5)
    assert far == {"density": 0.0, "coverage": 0.0}


def test_precision_recall_extremes():
    a, _ = _fixed_features()
    assert precision_recall(a.float(), a.float()) == (1.0, 1.0)
    assert precision_recall(a.float() + 1e3, a.float()) == (0.0, 0.0)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    a, b = _fixed_features()
    same, _, size = kernel_distance(a[:200], a[200:], subsets=20, subset_size=150)
    apart, _, _ = kernel_distance(a, b, subsets=20, subset_size=150)
    assert size == 150
    assert abs(same) < 0.05 < apart
    assert kernel_distance(a[:50], b, subsets=2)[2] == 50  # the subset shrinks to the smaller set


def test_inception_score_bounds():
    # Confident, evenly spread predictions over 10 classes: IS = 10 (one split, so the
    # shuffled chunks cannot unbalance the classes); all alike: IS = 1.
    labels = torch.arange(1000) % 10
    confident = torch.nn.functional.one_hot(labels, 10).double() * 50
    mean, _ = inception_score(confident, splits=1)
    assert mean == pytest.approx(10, rel=1e-6)
    alike, _ = inception_score(torch.zeros(1000, 10), splits=10)
    assert alike == pytest.approx(1.0)


def test_too_few_samples_is_a_clear_error():
    a, _ = _fixed_features()
    with pytest.raises(GanlabError, match="at least 6"):
        density_coverage(a[:3], a, k=5)
    with pytest.raises(GanlabError, match="same D"):
        frechet_distance(a, a[:, :3])
