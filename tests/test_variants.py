"""Every variant plugin: the shared contract, its own rules, and training through the CLI.

Loss formulas are checked against hand computations in test_losses.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch.nn.utils import parametrize

from ganlab.augment import DiffAugment
from ganlab.errors import GanlabError
from ganlab.nets import MinibatchStd
from ganlab.plugins import get_plugin_set, get_registry
from ganlab.train.checkpoint import load_checkpoint
from ganlab.train.rundir import RunDir
from tests.contract import VariantContract, build, cached_dataset

# ---- the shared contract, one class per variant -----------------------------------------------


class TestVanilla(VariantContract):
    variant = "vanilla"


class TestNonSaturating(VariantContract):
    variant = "ns"


class TestWgan(VariantContract):
    variant = "wgan"

    def test_paper_defaults(self):
        objective, _ = self.make("ring8")
        assert objective.n_critic == 5 and objective.clip == 0.01
        for opt in objective.optimizers.values():
            assert isinstance(opt, torch.optim.RMSprop) and opt.param_groups[0]["lr"] == 5e-5

    def test_weights_are_clipped_after_each_critic_step(self, dataset):
        objective, data = self.make(dataset, clip=0.005)
        real, labels = data.batch(8, torch.Generator().manual_seed(0))
        objective.discriminator_step(real, labels)
        largest = max(p.abs().max().item() for p in objective.D.parameters())
        assert largest <= 0.005
        assert largest == pytest.approx(0.005), "fresh weights exceed 0.005, so some must sit at the bound"

    def test_non_positive_clip_is_refused(self):
        with pytest.raises(GanlabError, match="clip must be positive"):
            self.make("ring8", clip=0.0)


class PenaltyChecks:
    """Per-sample penalties refuse batch norm and report the penalty they add."""

    def test_batch_norm_is_refused(self):
        with pytest.raises(GanlabError, match="d_norm=layer"):
            self.make("digits", d_norm="batch")

    def test_penalty_is_logged_and_positive(self, dataset):
        objective, data = self.make(dataset)
        real, labels = data.batch(8, torch.Generator().manual_seed(0))
        stats = objective.discriminator_step(real, labels)
        assert float(stats["penalty"]) > 0


class TestWganGp(PenaltyChecks, VariantContract):
    variant = "wgan-gp"

    def test_paper_defaults(self):
        objective, _ = self.make("digits")
        assert objective.n_critic == 5 and objective.gp_lambda == 10
        group = objective.optimizers["D"].param_groups[0]
        assert isinstance(objective.optimizers["D"], torch.optim.Adam)
        assert group["lr"] == 1e-4 and group["betas"] == (0.0, 0.9)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in objective.D.modules())


class TestLsgan(VariantContract):
    variant = "lsgan"


class TestHinge(VariantContract):
    variant = "hinge"


class TestSngan(VariantContract):
    variant = "sngan"

    def test_every_d_layer_is_spectrally_normalised(self, dataset):
        objective, _ = self.make(dataset)
        layers = [m for m in objective.D.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
        assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)

    def test_normalised_weights_have_spectral_norm_one(self):
        objective, data = self.make("ring8")
        real, _ = data.batch(8, torch.Generator().manual_seed(0))
        for _ in range(30):  # power iteration converges over forward passes
            objective.D(real)
        objective.D.eval()
        for m in objective.D.modules():
            if isinstance(m, torch.nn.Linear):
                assert torch.linalg.matrix_norm(m.weight, ord=2).item() == pytest.approx(1.0, abs=1e-3)


class TestR1(PenaltyChecks, VariantContract):
    variant = "r1"


class TestDragan(PenaltyChecks, VariantContract):
    variant = "dragan"


class TestRagan(VariantContract):
    variant = "ragan"

    def test_generator_sees_real_scores(self):
        objective, _ = self.make("ring8")
        assert objective.g_needs_real
        fake = torch.tensor([0.3, -0.2])
        a = objective.generator_loss(fake, torch.tensor([1.0, 2.0]))
        b = objective.generator_loss(fake, torch.tensor([-1.0, 0.0]))
        assert not torch.isclose(a, b), "RaGAN's G loss depends on D's real scores"


class TestUnrolled(VariantContract):
    variant = "unrolled"
    overrides = {"unroll_steps": 3}

    def _tiny_problem(self, optimizer: str):
        objective, data = self.make("ring8", optimizer=optimizer, lr_d=0.05)
        real, _ = data.batch(8, torch.Generator().manual_seed(0))
        # One real D step, so Adam/RMSprop start from non-zero moments as in training;
        # then float64 (in place: the optimiser state stays attached) for finite differences.
        objective.discriminator_step(real)
        objective.G.double()
        objective.D.double()
        z = torch.randn(8, objective.G.latent_dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        return objective, real.double(), z

    @pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
    def test_generator_gradient_flows_through_the_unrolled_updates(self, optimizer):
        """Autograd's dL/dtheta_G matches a finite difference of the fully re-unrolled loss."""
        objective, real, z = self._tiny_problem(optimizer)
        weight = objective.G.net[0].weight

        def loss() -> torch.Tensor:
            return objective.unrolled_generator_loss(objective.G(z), None, real, None)

        weight.grad = None
        loss().backward()
        analytic = weight.grad[0, 0].item()
        h = 1e-6
        with torch.no_grad():
            weight[0, 0] += h
        up = loss().item()
        with torch.no_grad():
            weight[0, 0] -= 2 * h
        down = loss().item()
        with torch.no_grad():
            weight[0, 0] += h
        numeric = (up - down) / (2 * h)
        assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-9)

        # The same gradient with D's unrolled weights cut from G's graph is different: the
        # check above would fail for an unroll that does not differentiate through D's updates.
        params, buffers = objective.unrolled_parameters(real, None, objective.G(z), None)
        frozen = {k: v.detach() for k, v in params.items()}
        fake = objective.G(z)
        weight.grad = None
        objective.generator_loss(objective.functional_score(frozen, buffers, fake, None),
                                 objective.functional_score(frozen, buffers, real, None)).backward()
        assert weight.grad[0, 0].item() != pytest.approx(numeric, rel=1e-3)

    def test_zero_unroll_steps_is_the_min_max_value(self):
        objective, data = self.make("ring8", unroll_steps=0)
        real, _ = data.batch(8, torch.Generator().manual_seed(0))
        fake = objective.generate(8)
        value = objective.unrolled_generator_loss(fake, None, real, None)
        r, f = objective.D(real), objective.D(fake)
        expected = torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean()
        assert value.item() == pytest.approx(expected.item(), rel=1e-5)

    def test_unrolled_steps_touch_neither_d_weights_nor_its_statistics(self):
        objective, data = self.make("digits")  # DCGAN D with batch norm
        real, labels = data.batch(8, torch.Generator().manual_seed(0))
        objective.discriminator_step(real, labels)
        objective.remember_real(real, labels)
        buffers = [b.clone() for b in objective.D.buffers()]
        objective.generator_step(8)
        assert all(torch.equal(a, b) for a, b in zip(buffers, objective.D.buffers()))

    def test_bad_options_are_refused(self):
        with pytest.raises(GanlabError, match="g_loss"):
            self.make("ring8", g_loss="saturating")
        with pytest.raises(GanlabError, match="unroll_steps"):
            self.make("ring8", unroll_steps=-1)


class TestPacgan(VariantContract):
    variant = "pacgan"

    def test_packs_are_consecutive_samples(self):
        from ganlab_plugins.pacgan import pack_samples

        points = torch.arange(8.0).reshape(4, 2)
        assert torch.equal(pack_samples(points, 2), torch.tensor([[0.0, 1, 2, 3], [4, 5, 6, 7]]))
        images = torch.arange(4.0).reshape(4, 1, 1, 1)
        assert torch.equal(pack_samples(images, 2).flatten(1), torch.tensor([[0.0, 1], [2, 3]]))

    def test_pack_size_is_settable(self, dataset):
        objective, data = self.make(dataset, pack=3, batch_size=9)
        real, labels = data.batch(9, torch.Generator().manual_seed(0))
        assert objective.score(real).shape == (3,)
        objective.discriminator_step(real, labels)

    def test_batch_not_divisible_by_pack_is_a_clear_error(self):
        with pytest.raises(GanlabError, match=r"batch_size.*9.*multiple of pack.*2"):
            self.make("ring8", batch_size=9)

    def test_conditional_is_refused(self):
        with pytest.raises(GanlabError, match="conditional"):
            self.make("digits", conditional=True)


class TestMinibatchStd(VariantContract):
    variant = "mbstd"

    def test_d_has_the_minibatch_std_layer(self, dataset):
        objective, _ = self.make(dataset)
        layers = [m for m in objective.D.modules() if isinstance(m, MinibatchStd)]
        assert len(layers) == 1 and layers[0].group_size == 4


class TestVeegan(VariantContract):
    variant = "veegan"
    trained_in_g_phase = ("G", "F")

    def scores(self, objective, real):
        return objective.joint_score(objective.F(real), real)

    def test_reconstructor_maps_data_to_noise_with_its_own_optimiser(self, dataset):
        objective, data = self.make(dataset, lr_f=3e-4)
        real, _ = data.batch(8, torch.Generator().manual_seed(0))
        assert objective.F(real).shape == (8, int(objective.hp["latent_dim"]))
        assert objective.optimizers["F"].param_groups[0]["lr"] == 3e-4

    def test_discriminator_needs_the_noise(self):
        objective, data = self.make("ring8")
        real, _ = data.batch(8, torch.Generator().manual_seed(0))
        with pytest.raises(GanlabError, match="z="):
            objective.D(real)

    def test_unsupported_options_are_refused(self):
        with pytest.raises(GanlabError, match="conditional"):
            self.make("digits", conditional=True)
        with pytest.raises(GanlabError, match="mbstd_group"):
            self.make("ring8", mbstd_group=4)


def test_every_first_party_variant_has_a_contract_class():
    pset = get_plugin_set()
    first_party = {v.name for v in pset.registry.variants()
                   if pset.plugins[v.plugin].distribution == "ganlab"}
    covered = {cls.variant for cls in globals().values()
               if isinstance(cls, type) and issubclass(cls, VariantContract) and cls.variant}
    assert first_party <= covered, f"no contract test for {sorted(first_party - covered)}"
    assert len(first_party) >= 14


# ---- every registered variant through `ganlab train` --------------------------------------------
CLI_SMALL = ["--steps", "3", "--set", "hidden=32", "--set", "batch_size=32", "--set", "latent_dim=16",
             "--set", "base_channels=8", "--log-every", "1", "--sample-every", "0", "-q"]


@pytest.fixture
def no_pictures(monkeypatch):
    """Skip the end-of-run scatter plot / image grid: ~90% of a 3-step run's time, and the
    core's own tests cover pictures. Everything else in ``ganlab train`` runs."""
    from ganlab.train.loop import Trainer

    monkeypatch.setattr(Trainer, "save_pictures", lambda self, fixed_z, final=False: None)


@pytest.mark.parametrize("dataset", ["ring8", "digits"])
@pytest.mark.parametrize("variant", get_registry().names("variant"))
def test_every_variant_trains_through_the_cli(cli, no_pictures, tmp_path, variant, dataset):
    out = tmp_path / "run"
    result = cli("train", variant, "--dataset", dataset, "--out", str(out), *CLI_SMALL)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in records)
    config = json.loads((out / "config.json").read_text())
    assert config["variant"] == variant and config["dataset"] == dataset
    spec = get_registry().variant(variant)
    for key, value in spec.hparams.items():  # the paper's defaults reach the run...
        if key not in ("hidden", "batch_size", "latent_dim", "base_channels"):  # ...unless --set
            assert config["hparams"][key] == value, key


# ---- options every variant can switch on --------------------------------------------------------
def _train(cli, tmp_path: Path, variant: str, dataset: str, *sets: str):
    out = tmp_path / f"{variant}-{dataset}"
    args = [a for s in sets for a in ("--set", s)]
    return out, cli("train", variant, "--dataset", dataset, "--out", str(out), *CLI_SMALL, *args)


def test_ema_keeps_an_averaged_generator(cli, no_pictures, tmp_path):
    out, result = _train(cli, tmp_path, "ns", "ring8", "ema=0.5")
    assert result.exit_code == 0, result.stderr
    state = load_checkpoint(RunDir(out).checkpoint_path)
    ema, weights = state["ema"], state["modules"]["G"]
    assert ema is not None and set(ema) == set(weights)
    assert any(not torch.equal(ema[k], weights[k]) for k in weights), "EMA lags behind the live weights"


def test_diffaugment_applies_to_both_phases(cli, no_pictures, tmp_path):
    objective, data = build("hinge", "digits", diffaugment="color,translation,cutout")
    assert isinstance(objective.augment, DiffAugment)
    seen = []
    forward = objective.D.forward
    objective.D.forward = lambda x, labels=None: seen.append(x) or forward(x, labels)
    real, labels = data.batch(8, torch.Generator().manual_seed(0))
    objective.discriminator_step(real, labels)
    assert not torch.equal(seen[0], real), "D must see augmented real images"
    out, result = _train(cli, tmp_path, "r1", "digits", "diffaugment=translation,cutout")
    assert result.exit_code == 0, result.stderr


def test_unknown_diffaugment_policy_is_one_line(cli, tmp_path):
    _, result = _train(cli, tmp_path, "ns", "digits", "diffaugment=color,zoom")
    assert result.exit_code == 2
    assert "zoom" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_two_time_scale_learning_rates(cli, no_pictures, tmp_path):
    objective, _ = build("hinge", "ring8", lr_g=1e-4, lr_d=4e-4)
    assert objective.optimizers["G"].param_groups[0]["lr"] == 1e-4
    assert objective.optimizers["D"].param_groups[0]["lr"] == 4e-4
    _, result = _train(cli, tmp_path, "sngan", "ring8", "lr_g=1e-4", "lr_d=4e-4")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("variant", ["sngan", "wgan-gp", "unrolled"])
def test_conditional_generation(cli, no_pictures, tmp_path, variant):
    objective, data = build(variant, "digits", conditional=True)
    assert objective.G.num_classes == 10 and objective.D.projection is not None
    images, _ = data.batch(4, torch.Generator().manual_seed(0))
    objective.D.eval()
    zeros, ones = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    assert not torch.allclose(objective.D(images, zeros), objective.D(images, ones)), "D reads the label"
    _, result = _train(cli, tmp_path, variant, "digits", "conditional=true")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("variant, sets, message", [
    ("pacgan", ["batch_size=33"], "multiple of pack"),
    ("pacgan", ["conditional=true"], "conditional"),
    ("veegan", ["conditional=true"], "conditional"),
    ("wgan-gp", ["d_norm=batch"], "d_norm=layer"),
])
def test_refused_settings_exit_2_with_one_line(cli, tmp_path, variant, sets, message):
    _, result = _train(cli, tmp_path, variant, "digits", *sets)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


# ---- mode coverage on the 8-Gaussian ring -------------------------------------------------------
STEPS = 3000  # measured at seed 0: vanilla covers 0 of 8 modes, pacgan 8 (about 100 s on one core)


@pytest.mark.slow
def test_a_variant_covers_more_ring_modes_than_vanilla(tmp_path):
    """Same budget, seed, data and nets. pacgan is ns with a packed D; ns alone covers 1 mode
    at this budget and seed, so the packing is what makes the difference."""
    from ganlab.metrics.modes import mixture_mode_stats
    from ganlab.train.api import TrainRequest, generate, load_generator, train

    registry = get_registry()
    covered = {}
    for variant in ("vanilla", "pacgan"):
        out = tmp_path / variant
        train(registry, TrainRequest(variant=variant, dataset="ring8", steps=STEPS, out=out, seed=0,
                                     log_every=500, sample_every=0, ckpt_every=0))
        run = load_generator(registry, out)
        samples, _ = generate(run.generator, 2500, seed=0)
        covered[variant] = mixture_mode_stats(samples, cached_dataset("ring8").spec)["modes_covered"]
    assert covered["pacgan"] > covered["vanilla"], covered

