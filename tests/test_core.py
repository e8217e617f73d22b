"""Issue 2's Done-when list, each checked by running it, plus the registry's validation."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.errors import RegistrationError, UnknownNameError
from ganlab.interfaces import Objective, VariantSpec
from ganlab.registry import Registry
from tests.conftest import REPO, run_cli_subprocess


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """One uninterrupted 2000-step vanilla run on ring8, shared by the tests below."""
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("runs") / "v"
    result = run_cli("train", "vanilla", "--dataset", "ring8", "--steps", "2000", "--out", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    return out


def test_list_shows_vanilla_from_the_entry_point_group(cli):
    import importlib.metadata

    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="ganlab")}
    assert eps["vanilla"] == "ganlab_plugins.vanilla"
    result = cli("list", "--json")
    assert result.exit_code == 0, result.stderr
    listing = json.loads(result.stdout)
    vanilla = next(v for v in listing["variants"] if v["name"] == "vanilla")
    assert vanilla["plugin"].startswith("vanilla (ganlab ")
    assert "Goodfellow" in vanilla["citation"]
    plugins = {p["name"]: p for p in listing["plugins"]}
    assert plugins["vanilla"]["status"] == "ok"
    assert {"ring8", "grid25", "digits", "mnist", "cifar10", "folder"} <= {d["name"] for d in listing["datasets"]}


def test_train_ring8_writes_config_metrics_checkpoint_and_scatter(ring_run):
    config = json.loads((ring_run / "config.json").read_text())
    assert config["variant"] == "vanilla" and config["dataset"] == "ring8" and config["steps"] == 2000
    assert config["hparams"]["g_loss"] == "saturating"
    assert config["versions"]["torch"]
    records = [json.loads(line) for line in (ring_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(100, 2001, 100))
    for key in ("d_loss", "g_loss", "value", "d_real", "d_fake", "equilibrium_gap",
                "grad_norm_D", "grad_norm_G", "steps_per_s"):
        assert all(math.isfinite(r[key]) for r in records), key
    # V(D,G) is logged as E[log D(x)] + E[log(1 - D(G(z)))] = -(D's loss) for vanilla.
    assert records[-1]["value"] == pytest.approx(-records[-1]["d_loss"], abs=1e-6)
    state = torch.load(ring_run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2000 and set(state["modules"]) == {"G", "D"}
    with Image.open(ring_run / "samples.png") as im:
        assert im.size[0] >= 300 and im.size[1] >= 300
    assert len(list((ring_run / "samples").glob("step_*.png"))) == 4
    assert json.loads((ring_run / "status.json").read_text())["state"] == "finished"


def test_resume_ends_where_an_uninterrupted_run_ends(ring_run, tmp_path, cli):
    part = tmp_path / "part"
    assert cli("train", "vanilla", "--steps", "1000", "--out", str(part), "-q").exit_code == 0
    resumed = cli("train", "vanilla", "--steps", "2000", "--out", str(part), "--resume", "-q")
    assert resumed.exit_code == 0, resumed.stderr
    full = torch.load(ring_run / "checkpoint.pt", weights_only=True)
    half = torch.load(part / "checkpoint.pt", weights_only=True)
    for name in full["modules"]["G"]:
        assert torch.equal(full["modules"]["G"][name], half["modules"]["G"][name]), name
    steps = [json.loads(line)["step"] for line in (part / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(100, 2001, 100))  # no duplicated or lost records


def test_digits_run_writes_a_grid_of_digits(tmp_path, cli):
    out = tmp_path / "digits"
    result = cli("train", "vanilla", "--dataset", "digits", "--steps", "300", "--out", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    with Image.open(out / "samples.png") as im:
        pixels = torch.from_numpy(np.asarray(im.convert("L"), dtype=np.float32))
        # 64 samples of 8x8 with 1 px padding in an 8x8 grid: 8*9+1 = 73 px a side.
        assert im.size == (73, 73)
    assert pixels.std() > 10  # not a blank or constant picture
    config = json.loads((out / "config.json").read_text())
    assert config["data_spec"]["shape"] == [1, 8, 8] and config["data_spec"]["num_classes"] == 10


def test_unknown_variant_is_one_line_and_exit_2(tmp_path):
    result = run_cli_subprocess("train", "nosuchvariant", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nosuchvariant" in lines[0] and "vanilla" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


def test_python_dash_m_and_version():
    result = run_cli_subprocess("--version")
    assert result.returncode == 0 and re.fullmatch(r"ganlab \d+\.\d+\.\d+\s*", result.stdout)


def test_sample_command_writes_png(ring_run, tmp_path, cli):
    target = tmp_path / "s.png"
    result = cli("sample", str(ring_run), "-n", "500", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert target.stat().st_size > 1000


def test_the_core_imports_no_plugin():
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "ganlab").rglob("*.py")
                 if re.search(r"^\s*(from|import)\s+ganlab_plugins", p.read_text(), re.M)]
    assert offenders == []


def test_every_hook_is_documented_in_contributing():
    from ganlab import hookspecs

    hooks = [name for name in dir(hookspecs) if name.startswith("ganlab_")]
    text = (REPO / "CONTRIBUTING.md").read_text()
    assert hooks, "no hooks found"
    missing = [h for h in hooks if f"### `{h}" not in text]
    assert missing == [], f"hooks not documented in CONTRIBUTING.md: {missing}"


# ---- registry validation ---------------------------------------------------------------------
class _Tiny(Objective):
    def discriminator_loss(self, real_scores, fake_scores):
        return (fake_scores - real_scores).mean()

    def generator_loss(self, fake_scores, real_scores=None):
        return -fake_scores.mean()


def _spec(**kw):
    base = dict(name="tiny", objective=_Tiny, description="d", citation="c")
    return VariantSpec(**{**base, **kw})


def test_registry_validates_names_types_and_duplicates():
    reg = Registry()
    reg.current_plugin = "p1"
    reg.add_variant(_spec())
    assert reg.variant("tiny").plugin == "p1"
    with pytest.raises(RegistrationError, match="already registered by plugin 'p1'"):
        reg.add_variant(_spec())
    with pytest.raises(RegistrationError, match="invalid"):
        reg.add_variant(_spec(name="Bad Name"))
    with pytest.raises(RegistrationError, match="subclass"):
        reg.add_variant(_spec(name="x", objective=dict))
    with pytest.raises(RegistrationError, match="description and citation"):
        reg.add_variant(_spec(name="y", citation=""))
    with pytest.raises(RegistrationError, match="does not implement"):
        reg.add_variant(_spec(name="z", objective=Objective))
    with pytest.raises(UnknownNameError, match="known variants: tiny"):
        reg.variant("nope")
    reg.remove_plugin("p1")
    assert reg.names("variant") == []
