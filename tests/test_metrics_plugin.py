"""A third-party metric plugs in exactly like a built-in one: registered through the hook,
selected by name, evaluated with the same context, stored with its protocol."""

from __future__ import annotations

import json

import pluggy
import pytest
import torch

from ganlab import builtins, hookimpl, hookspecs
from ganlab.errors import GanlabError
from ganlab.hookspecs import PROJECT
from ganlab.metrics.context import MetricNotApplicable
from ganlab.metrics.evaluate import evaluate_run, select_metrics
from ganlab.registry import Registry
from ganlab.train.api import generate, load_generator


def mean_radius(ctx):
    """Mean distance of the generated points from the origin (1.0 for a perfect ring)."""
    if ctx.kind != "points":
        raise MetricNotApplicable("points only")
    return {"mean_radius": ctx.samples.norm(dim=1).mean(), "protocol": {"norm": "l2"},
            "details": {"max_radius": float(ctx.samples.norm(dim=1).max())}}


def broken(ctx):
    return {"value": "not a number"}


class ThirdPartyMetrics:
    """What an installed package's module would contain."""

    @hookimpl
    def ganlab_register(self, registry):
        registry.add_metric("mean_radius", mean_radius, "mean distance from the origin",
                            kinds=("points",), cheap=True)
        registry.add_metric("broken", broken, "returns a string", kinds=("points",))


@pytest.fixture(scope="module")
def registry_with_plugin():
    """Core, vanilla and the third-party plugin, through one plugin manager like the real one."""
    import ganlab_plugins.vanilla as vanilla

    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(builtins, name="ganlab.builtins")
    manager.register(vanilla, name="vanilla")
    manager.register(ThirdPartyMetrics(), name="thirdparty")
    manager.check_pending()
    registry = Registry()
    manager.hook.ganlab_register(registry=registry)
    return registry


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("plugin_metric") / "ring"
    assert run_cli("train", "vanilla", "--steps", "30", "--out", str(out), "-q").exit_code == 0
    return out


def test_a_plugin_metric_is_evaluated_and_stored_with_its_protocol(registry_with_plugin, ring_run):
    payload = evaluate_run(registry_with_plugin, ring_run, metrics=["mean_radius", "modes"],
                           num_samples=300, seed=5)
    row = next(r for r in payload["results"] if r["metric"] == "mean_radius")
    loaded = load_generator(registry_with_plugin, ring_run)
    samples, _ = generate(loaded.generator, 300, seed=5)
    assert row["value"] == pytest.approx(float(samples.norm(dim=1).mean()), rel=1e-6)
    assert row["protocol"]["norm"] == "l2"
    assert row["protocol"]["num_generated"] == 300 and row["protocol"]["seed"] == 5
    assert payload["details"]["mean_radius"]["max_radius"] == pytest.approx(float(samples.norm(dim=1).max()))
    on_disk = json.loads((ring_run / "eval.json").read_text())
    assert on_disk["results"] == payload["results"]


def test_default_selection_includes_plugin_metrics_of_the_data_kind(registry_with_plugin):
    chosen, explicit = select_metrics(registry_with_plugin, None, "points")
    names = {m.name for m in chosen}
    assert not explicit
    assert {"mean_radius", "broken", "modes", "density_coverage"} <= names
    assert "fid" not in names  # images only
    image_names = {m.name for m in select_metrics(registry_with_plugin, None, "image")[0]}
    assert "mean_radius" not in image_names and "fid" in image_names


def test_a_broken_plugin_metric_is_named_in_one_line(registry_with_plugin, ring_run):
    with pytest.raises(GanlabError, match="metric 'broken'.*non-number") as info:
        evaluate_run(registry_with_plugin, ring_run, metrics=["broken"], num_samples=50)
    assert info.value.exit_code == 1


def test_plugin_metric_runs_during_training(registry_with_plugin, tmp_path):
    from ganlab.metrics.tracking import ModeTracker
    from ganlab.train.api import TrainRequest, train

    request = TrainRequest(variant="vanilla", dataset="ring8", steps=20, out=tmp_path / "run",
                           log_every=10, eval_every=10, sample_every=0)
    train(registry_with_plugin, request, callbacks=[ModeTracker(registry_with_plugin, num_samples=200)])
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20]
    assert all("mean_radius" in r and "modes_covered" in r for r in records)
    assert torch.isfinite(torch.tensor([r["mean_radius"] for r in records])).all()
