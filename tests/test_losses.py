"""Each variant's loss formula against a hand computation on fixed scores.

Expected values are worked out with ``math`` on the scores below, never by calling the
function under test. ``sigma`` is the logistic function; ``log sigma(t) = -log(1 + e^-t)``.
"""

from __future__ import annotations

import math

import pytest
import torch

from ganlab.config import resolve_hparams
from ganlab.interfaces import Discriminator
from ganlab.plugins import get_registry
from ganlab_plugins.dragan import DraganObjective, norm_target_penalty
from ganlab_plugins.hinge import hinge_discriminator_loss, hinge_generator_loss
from ganlab_plugins.lsgan import least_squares_discriminator_loss, least_squares_generator_loss
from ganlab_plugins.ns import NonSaturatingObjective
from ganlab_plugins.r1 import R1Objective
from ganlab_plugins.ragan import relativistic_average_discriminator_loss, relativistic_average_generator_loss
from ganlab_plugins.unrolled import UnrolledObjective, adam_update, rmsprop_update
from ganlab_plugins.veegan import joint_generator_loss, reconstruction_loss
from ganlab_plugins.wgan import wasserstein_critic_loss, wasserstein_generator_loss
from ganlab_plugins.wgan_gp import GradientPenaltyObjective
from tests.contract import cached_dataset

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -0.5])


def log_sigmoid(t: float) -> float:
    return -math.log1p(math.exp(-t))


def approx(value: float):
    return pytest.approx(value, rel=1e-6, abs=1e-7)


# ---- losses on scores ---------------------------------------------------------------------------
def test_non_saturating_losses():
    objective = NonSaturatingObjective.__new__(NonSaturatingObjective)  # formulas only, no nets
    d = -((log_sigmoid(2) + log_sigmoid(-1)) / 2 + (log_sigmoid(-0.5) + log_sigmoid(0.5)) / 2)
    assert objective.discriminator_loss(REAL, FAKE).item() == approx(d)
    assert d == approx(1.4441718)  # 0.5 * (0.126928 + 1.313262) + 0.5 * (0.974077 + 0.474077)
    g = -(log_sigmoid(0.5) + log_sigmoid(-0.5)) / 2
    assert objective.generator_loss(FAKE).item() == approx(g)


def test_wasserstein_losses():
    # critic: mean(fake) - mean(real) = 0 - 0.5; generator: -mean(fake) = 0
    assert wasserstein_critic_loss(REAL, FAKE).item() == approx(-0.5)
    assert wasserstein_generator_loss(torch.tensor([0.5, 1.5])).item() == approx(-1.0)


def test_least_squares_losses():
    # 0.5 * mean((2-1)^2, (-1-1)^2) + 0.5 * mean(0.5^2, 0.5^2) = 0.5 * 2.5 + 0.5 * 0.25
    assert least_squares_discriminator_loss(REAL, FAKE).item() == approx(1.375)
    # 0.5 * mean((0.5-1)^2, (-0.5-1)^2) = 0.5 * (0.25 + 2.25) / 2
    assert least_squares_generator_loss(FAKE).item() == approx(0.625)
    # Pearson chi^2 coding a=-1, b=1, c=0: 0.5 * 2.5 + 0.5 * mean(1.5^2, 0.5^2) = 1.25 + 0.625
    assert least_squares_discriminator_loss(REAL, FAKE, a=-1.0, b=1.0).item() == approx(1.875)
    assert least_squares_generator_loss(FAKE, c=0.0).item() == approx(0.125)


def test_hinge_losses():
    # mean(max(0, 1-2), max(0, 1+1)) + mean(max(0, 1+0.5), max(0, 1-0.5)) = 1 + 1
    assert hinge_discriminator_loss(REAL, FAKE).item() == approx(2.0)
    assert hinge_discriminator_loss(torch.tensor([3.0]), torch.tensor([-4.0])).item() == approx(0.0)
    assert hinge_generator_loss(torch.tensor([0.5, 1.5])).item() == approx(-1.0)


def test_relativistic_average_losses():
    # mean real score 0.5, mean fake score 0
    d = -((log_sigmoid(2 - 0) + log_sigmoid(-1 - 0)) / 2 + (log_sigmoid(-(0.5 - 0.5)) + log_sigmoid(-(-0.5 - 0.5))) / 2)
    assert relativistic_average_discriminator_loss(REAL, FAKE).item() == approx(d)
    g = -((log_sigmoid(0.5 - 0.5) + log_sigmoid(-0.5 - 0.5)) / 2 + (log_sigmoid(-(2 - 0)) + log_sigmoid(-(-1 - 0))) / 2)
    assert relativistic_average_generator_loss(FAKE, REAL).item() == approx(g)


def test_unrolled_minimax_generator_loss_is_the_game_value():
    objective = UnrolledObjective.__new__(UnrolledObjective)
    objective.hp = {"g_loss": "minimax"}
    value = (log_sigmoid(2) + log_sigmoid(-1)) / 2 + (log_sigmoid(-0.5) + log_sigmoid(0.5)) / 2
    assert objective.generator_loss(FAKE, REAL).item() == approx(value)
    objective.hp = {"g_loss": "non_saturating"}
    assert objective.generator_loss(FAKE, REAL).item() == approx(-(log_sigmoid(0.5) + log_sigmoid(-0.5)) / 2)


def test_veegan_losses():
    z = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    z_rec = torch.tensor([[1.5, 0.0], [0.0, 1.0]])
    # ||(-0.5, 2)||^2 = 4.25, ||(0, -2)||^2 = 4, mean 4.125
    assert reconstruction_loss(z, z_rec).item() == approx(4.125)
    assert joint_generator_loss(FAKE).item() == approx(0.0)
    assert joint_generator_loss(torch.tensor([1.0, 2.0])).item() == approx(-1.5)


# ---- penalties on a discriminator whose input gradient is known ----------------------------------
class LinearD(Discriminator):
    """D(x) = w . x + 1: the input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w))

    def forward(self, x, labels=None):
        return x @ self.w + 1.0


class QuadraticD(Discriminator):
    """D(x) = a/2 ||x||^2: the input gradient is a x."""

    def __init__(self, a: float):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a))

    def forward(self, x, labels=None):
        return 0.5 * self.a * x.pow(2).sum(dim=1)


def make_objective(cls, variant: str, discriminator, **overrides):
    data = cached_dataset("ring8").spec
    hp = resolve_hparams(get_registry().variant(variant), data, overrides)
    generator = get_registry().nets_for(get_registry().variant(variant), "points")(data, hp)[0]
    objective = cls(generator, discriminator, hp, data)
    objective.rng = torch.Generator().manual_seed(0)
    return objective


POINTS = torch.tensor([[1.0, 2.0], [3.0, 0.0]])


def test_r1_penalty():
    objective = make_objective(R1Objective, "r1", QuadraticD(2.0))
    # grad = 2x; gamma/2 * mean(||2x||^2) = 5 * mean(4 * 5, 4 * 9) = 5 * 28
    assert objective.penalty(POINTS, POINTS + 10, None, None).item() == approx(140.0)
    objective = make_objective(R1Objective, "r1", LinearD([3.0, 4.0]), r1_gamma=1.0)
    assert objective.penalty(POINTS, POINTS, None, None).item() == approx(12.5)  # 1/2 * 25


def test_wgan_gp_penalty():
    objective = make_objective(GradientPenaltyObjective, "wgan-gp", LinearD([3.0, 4.0]))
    # the gradient is (3, 4) at every interpolate: 10 * (5 - 1)^2
    assert objective.penalty(POINTS, -POINTS, None, None).item() == approx(160.0)
    objective = make_objective(GradientPenaltyObjective, "wgan-gp", QuadraticD(1.0))
    # real == fake, so every interpolate is the real point: 10 * mean((sqrt5 - 1)^2, (3 - 1)^2)
    expected = 10 * ((math.sqrt(5) - 1) ** 2 + 4) / 2
    assert objective.penalty(POINTS, POINTS.clone(), None, None).item() == approx(expected)


def test_wgan_gp_interpolates_lie_between_real_and_fake():
    from ganlab_plugins.wgan_gp import interpolate

    real, fake = torch.zeros(1000, 2), torch.ones(1000, 2)
    xhat = interpolate(real, fake, torch.Generator().manual_seed(0))
    assert torch.equal(xhat[:, 0], xhat[:, 1]), "one eps per sample, not per coordinate"
    assert 0 <= xhat.min() and xhat.max() <= 1 and abs(xhat.mean().item() - 0.5) < 0.05


def test_dragan_penalty():
    objective = make_objective(DraganObjective, "dragan", LinearD([0.6, 0.8]), dragan_lambda=4.0, dragan_k=2.0)
    # ||w|| = 1 wherever x-hat lands: 4 * (1 - 2)^2
    assert objective.penalty(POINTS, POINTS, None, None).item() == approx(4.0)
    assert norm_target_penalty(torch.tensor([[3.0, 4.0], [0.0, 0.0]]), 10.0, 1.0).item() == approx(85.0)


def test_dragan_points_stay_near_the_data():
    from ganlab_plugins.dragan import perturb_around_data

    real = torch.tensor([[0.0, 0.0], [2.0, 2.0]])  # batch std over all four numbers: 2/sqrt(3)
    rng = torch.Generator().manual_seed(0)
    for _ in range(50):
        delta = perturb_around_data(real, 0.5, rng) - real
        assert (delta >= 0).all() and (delta <= 0.5 * 2 / math.sqrt(3)).all()


def test_penalties_reach_d_through_one_backward():
    """autograd.grad(create_graph=True) leaves a graph, so D's loss + penalty backward trains D's weights."""
    d = QuadraticD(2.0)
    objective = make_objective(R1Objective, "r1", d)
    penalty = objective.penalty(POINTS, POINTS, None, None)  # 10/2 * a^2 * mean(||x||^2) = 5 * 7 * a^2
    penalty.backward()
    assert d.a.grad.item() == approx(2 * 5 * 7 * 2.0)


# ---- the unrolled optimisers equal torch's own ------------------------------------------------------
@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
def test_unrolled_update_matches_torch_optim(kind):
    torch.manual_seed(0)
    start = torch.randn(5)
    grads = [torch.randn(5) for _ in range(4)]
    param = torch.nn.Parameter(start.clone())
    if kind == "adam":
        reference = torch.optim.Adam([param], lr=0.1, betas=(0.5, 0.9), eps=1e-8)
    else:
        reference = torch.optim.RMSprop([param], lr=0.1, alpha=0.99, eps=1e-8)
    p, m, v, sq = start.clone(), torch.zeros(5), torch.zeros(5), torch.zeros(5)
    for step, g in enumerate(grads, start=1):
        param.grad = g.clone()
        reference.step()
        if kind == "adam":
            p, m, v = adam_update(p, g, m, v, step, 0.1, (0.5, 0.9), 1e-8)
        else:
            p, sq = rmsprop_update(p, g, sq, 0.1, 0.99, 1e-8)
        assert torch.allclose(p, param.detach(), atol=1e-6), f"step {step}"
