"""Plugins from outside the repository: found, listed, trained; broken ones reported by name.

The fixture packages in tests/fixtures/ are pip-installed into a temporary folder (session
fixture ``installed_plugins``) and seen only by ``ganlab`` subprocesses whose PYTHONPATH
holds that folder, exactly as a user's installed plugin would be.
"""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from ganlab.plugins import PluginSet, build_plugin_set
from ganlab.train.api import TrainRequest, train
from tests.conftest import run_cli_subprocess
from tests.fixtures.install import BROKEN_PLUGINS


@pytest.fixture(scope="module")
def listing(installed_plugins) -> dict:
    """`ganlab list --json` in a fresh process that has the toy plugin and every broken
    plugin installed: discovery through real package metadata, end to end."""
    result = run_cli_subprocess("list", "--json", env=installed_plugins.env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _plugin_set_with_fixtures(installed_plugins, monkeypatch) -> PluginSet:
    """The same discovery in this process (fast): ganlab's own entry points plus those of
    the installed fixture distributions, read from their real metadata."""
    monkeypatch.syspath_prepend(str(installed_plugins.target))
    return build_plugin_set()


@pytest.fixture
def plugin_set(installed_plugins, monkeypatch) -> PluginSet:
    return _plugin_set_with_fixtures(installed_plugins, monkeypatch)


def _by_name(entries: list[dict]) -> dict[str, dict]:
    return {e["name"]: e for e in entries}


# ---- the third-party plugin (issue 2: found, listed, trained) -----------------------------------
def test_installed_plugins_are_found_and_listed_in_a_fresh_process(listing):
    variants = _by_name(listing["variants"])
    assert variants["toy-lsq"]["plugin"] == "toy-lsq (ganlab-toy-lsq 0.1.0)"
    assert variants["toy-lsq"]["citation"].startswith("Mao et al. 2017")
    plugins = _by_name(listing["plugins"])
    assert plugins["toy-lsq"]["status"] == "ok"
    assert plugins["toy-lsq"]["distribution"] == "ganlab-toy-lsq"
    # The broken ones are listed as broken, by name, and the reference plugin is intact.
    assert {n for n, p in plugins.items() if p["status"] == "broken"} == set(BROKEN_PLUGINS)
    assert plugins["broken-import"]["distribution"] == "ganlab-broken-plugins"
    assert variants["vanilla"]["plugin"].startswith("vanilla (ganlab ")


def test_third_party_variant_trains_and_evaluates(installed_plugins, tmp_path):
    run = tmp_path / "toy"
    env = installed_plugins.env()  # broken plugins installed too: they must not get in the way
    result = run_cli_subprocess("train", "toy-lsq", "--dataset", "ring8", "--steps", "5", "--out", str(run),
                                "-q", env=env)
    assert result.returncode == 0, result.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["variant"] == "toy-lsq" and config["steps"] == 5
    assert config["hparams"]["lr_g"] == 1e-3  # the plugin's own default reached the run
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert (run / "checkpoint.pt").is_file() and (run / "samples.png").is_file()
    # The trained run is evaluated by the core's metrics with no change to the core.
    result = run_cli_subprocess("eval", str(run), "--metrics", "modes", "--num-samples", "500", "--json", env=env)
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["variant"] == "toy-lsq" and evaluation["checkpoint_step"] == 5
    assert {r["metric"] for r in evaluation["results"]} >= {"modes_covered", "reverse_kl"}


# ---- broken plugins: each reported by name, everything else keeps working ----------------------
def test_plugin_that_fails_to_import_is_reported(plugin_set):
    info = plugin_set.plugins["broken-import"]
    assert info.status == "broken" and info.distribution == "ganlab-broken-plugins"
    assert info.error == "ModuleNotFoundError: No module named 'ganlab_dependency_that_is_not_installed'"


def test_plugin_that_raises_in_its_hook_is_reported_and_withdrawn(plugin_set):
    info = plugin_set.plugins["broken-hook"]
    assert info.status == "broken"
    assert info.error == "RuntimeError: plugin bug while registering"
    # What it registered before raising is withdrawn: no half-registered plugin.
    assert "half-registered" not in plugin_set.registry.names("variant")


def test_plugin_that_takes_a_registered_name_is_reported(plugin_set):
    info = plugin_set.plugins["broken-dup"]
    assert info.status == "broken"
    assert info.error == "RegistrationError: variant 'vanilla' is already registered by plugin 'vanilla'"
    # ganlab's own plugin keeps the name although "broken-dup" sorts before "vanilla".
    assert plugin_set.registry.variant("vanilla").plugin == "vanilla"
    assert "dup-extra" not in plugin_set.registry.names("variant")


def test_plugin_with_a_misspelt_hook_is_reported(plugin_set):
    info = plugin_set.plugins["broken-misspelt"]
    assert info.status == "broken"
    assert info.error == ("PluginValidationError: unknown hook 'ganlab_regster' "
                          "(ganlab's hooks: ganlab_cli, ganlab_register)")
    assert "never-registered" not in plugin_set.registry.names("variant")


def test_every_other_plugin_still_works_beside_broken_ones(plugin_set, tmp_path):
    assert {p.name for p in plugin_set.broken} == set(BROKEN_PLUGINS)
    # Every variant and dataset of a clean process is still registered, plus the toy.
    clean = build_plugin_set().registry
    for table in ("variant", "dataset", "metric"):
        assert set(clean.names(table)) <= set(plugin_set.registry.names(table))
    assert "toy-lsq" in plugin_set.registry.names("variant")
    # ... and trains.
    trainer, _ = train(plugin_set.registry, TrainRequest("vanilla", "ring8", steps=3, out=tmp_path / "v"))
    assert trainer.step == 3 and (tmp_path / "v" / "checkpoint.pt").is_file()


def test_list_table_shows_broken_plugins_with_their_reason(plugin_set, monkeypatch, cli):
    from ganlab.cli.console import out_console

    monkeypatch.setattr("ganlab.cli.listing.get_plugin_set", lambda: plugin_set)
    monkeypatch.setattr(out_console, "_width", 250)  # one table row per line
    result = cli("list")
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ broken-")}
    assert set(rows) == set(BROKEN_PLUGINS)
    for name, row in rows.items():
        assert f"│ ganlab-broken-plugins 0.1.0 │ broken │ {plugin_set.plugins[name].error}" in " ".join(row.split())


def test_unknown_name_error_points_at_broken_plugins(plugin_set, monkeypatch, cli, tmp_path):
    monkeypatch.setattr("ganlab.plugins.get_plugin_set", lambda: plugin_set)
    result = cli("train", "half-registered", "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "ganlab: error: unknown variant 'half-registered'; known variants: "
        f"{', '.join(plugin_set.registry.names('variant'))} (plugins that failed to load: "
        f"{', '.join(sorted(BROKEN_PLUGINS))}; see `ganlab list`)"]


# ---- GANLAB_DISABLE_PLUGINS ---------------------------------------------------------------------
def test_disabled_plugins_are_not_imported_and_listed_as_disabled(installed_plugins, monkeypatch):
    monkeypatch.setenv("GANLAB_DISABLE_PLUGINS", "broken-import, toy-lsq,nosuch")
    pset = _plugin_set_with_fixtures(installed_plugins, monkeypatch)
    assert pset.plugins["toy-lsq"].status == "disabled"
    assert pset.plugins["broken-import"].status == "disabled" and pset.plugins["broken-import"].error == ""
    assert pset.plugins["broken-hook"].status == "broken"  # not named: still loaded (and still broken)
    assert "toy-lsq" not in pset.registry.names("variant")
    assert "vanilla" in pset.registry.names("variant")


def test_disable_env_disables_a_first_party_plugin(monkeypatch):
    monkeypatch.setenv("GANLAB_DISABLE_PLUGINS", " vanilla ")
    pset = build_plugin_set()
    assert pset.plugins["vanilla"].status == "disabled"
    assert "vanilla" not in pset.registry.names("variant")


def test_vanilla_comes_from_the_entry_point_group():
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="ganlab")}
    assert eps["vanilla"].value == "ganlab_plugins.vanilla"
    assert build_plugin_set().plugins["vanilla"].distribution == "ganlab"
