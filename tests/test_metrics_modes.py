"""Mode-collapse statistics pinned against cases whose answer is known by hand."""

from __future__ import annotations

import math

import pytest
import torch

from ganlab.data.mixtures import GaussianMixture, grid, ring
from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec
from ganlab.metrics.modes import categorical_mode_stats, kl_divergence, mixture_mode_stats

# P(|x - mu| <= 3 std) for an isotropic 2-D Gaussian: 1 - exp(-9/2).
WITHIN_3_STD_2D = 1 - math.exp(-4.5)


@pytest.mark.parametrize("make", [ring, grid], ids=["ring8", "grid25"])
def test_the_data_distribution_covers_every_mode_with_high_quality(make):
    data = make()
    samples, _ = data.batch(20_000, torch.Generator().manual_seed(0))
    stats = mixture_mode_stats(samples, data.spec)
    k = len(data.spec.modes)
    assert stats["modes_covered"] == k
    assert stats["high_quality"] == pytest.approx(WITHIN_3_STD_2D, abs=0.005)
    assert stats["reverse_kl"] < 0.01
    assert sum(stats["mode_counts"]) == round(stats["high_quality"] * 20_000)


def test_a_generator_collapsed_onto_one_mode_covers_one():
    data = ring()
    rng = torch.Generator().manual_seed(1)
    samples = torch.tensor(data.spec.modes[3]) + data.std * torch.randn(2500, 2, generator=rng)
    stats = mixture_mode_stats(samples, data.spec)
    assert stats["modes_covered"] == 1
    assert stats["mode_counts"][3] == sum(stats["mode_counts"]) > 2400
    # all high-quality mass on one of 8 equal modes: KL = log 8
    assert stats["reverse_kl"] == pytest.approx(math.log(8))


def test_reverse_kl_and_high_quality_match_a_hand_computation():
    data = GaussianMixture("two", [[0.0, 0.0], [10.0, 0.0]], std=1.0, weights=[1, 3])
    samples = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, -2.9],  # 3 at mode 0 (within 3 std)
                            [10.0, 0.5],                          # 1 at mode 1
                            [5.0, 5.0]])                          # far from both: not high quality
    stats = mixture_mode_stats(samples, data.spec)
    assert stats["mode_counts"] == [3, 1]
    assert stats["high_quality"] == pytest.approx(4 / 5)
    assert stats["modes_covered"] == 2
    p, q = [0.75, 0.25], [0.25, 0.75]
    assert stats["reverse_kl"] == pytest.approx(sum(a * math.log(a / b) for a, b in zip(p, q)))


def test_the_threshold_is_three_standard_deviations():
    data = GaussianMixture("one", [[0.0, 0.0]], std=0.5)
    inside, outside = torch.tensor([[0.0, 1.49]]), torch.tensor([[0.0, 1.51]])
    assert mixture_mode_stats(inside, data.spec)["high_quality"] == 1.0
    assert mixture_mode_stats(outside, data.spec)["high_quality"] == 0.0
    assert mixture_mode_stats(outside, data.spec, threshold_std=4.0)["high_quality"] == 1.0


def test_no_high_quality_sample_gives_the_largest_possible_kl():
    data = GaussianMixture("two", [[0.0, 0.0], [10.0, 0.0]], std=0.1, weights=[1, 3])
    stats = mixture_mode_stats(torch.full((10, 2), 5.0), data.spec)
    assert stats["modes_covered"] == 0 and stats["high_quality"] == 0.0
    assert stats["reverse_kl"] == pytest.approx(math.log(4))  # all mass on the weight-1/4 mode
    assert math.isfinite(stats["reverse_kl"])


def test_nan_samples_are_never_high_quality():
    data = ring()
    samples = torch.tensor([[1.0, 0.0], [float("nan"), 0.0]])
    stats = mixture_mode_stats(samples, data.spec)
    assert stats["high_quality"] == 0.5 and stats["modes_covered"] == 1


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(GanlabError, match="N x 2"):
        mixture_mode_stats(torch.zeros(5, 3), ring().spec)
    image_spec = DataSpec(name="digits", kind="image", shape=(1, 8, 8))
    with pytest.raises(GanlabError, match="no known modes"):
        mixture_mode_stats(torch.zeros(5, 2), image_spec)


def test_categorical_stats_match_a_hand_computation():
    stats = categorical_mode_stats(torch.tensor([0, 0, 1, 3]), 4)
    assert stats["covered"] == 3 and stats["counts"] == [2, 1, 0, 1]
    # p = (1/2, 1/4, 0, 1/4) against uniform q = 1/4: 1/2 log 2 (the empty bin adds 0)
    assert stats["kl"] == pytest.approx(0.5 * math.log(2))
    against = categorical_mode_stats(torch.tensor([0, 1]), 2, reference=torch.tensor([30.0, 10.0]))
    assert against["kl"] == pytest.approx(0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25))


def test_kl_is_infinite_where_the_reference_has_no_mass():
    assert kl_divergence(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])) == math.inf
    assert kl_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5])) == pytest.approx(math.log(2))
