"""``ganlab eval``: eval.json with the contract's fields and protocols, on ring8 and digits runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ganlab.metrics.cache import file_sha256
from ganlab.metrics.extractors import inception_url


@pytest.fixture(scope="module")
def ring_run(offline_env):
    from tests.conftest import train_run

    return train_run(offline_env / "ring", "vanilla", "-d", "ring8", "--steps", "60", "-q", "--log-every", "30")


@pytest.fixture(scope="module")
def digits_run(offline_env):
    from tests.conftest import train_run

    return train_run(offline_env / "digits", "vanilla", "-d", "digits", "--steps", "40", "-q",
                     "--log-every", "20")


def _check_contract(payload: dict, run: Path, variant: str, dataset: str, step: int) -> None:
    assert payload["run"] == str(run)
    assert (payload["variant"], payload["dataset"], payload["checkpoint_step"]) == (variant, dataset, step)
    assert payload["seed"] == 0
    assert {"ganlab", "torch", "torch_fidelity"} <= set(payload["versions"])
    assert payload["results"], "no results"
    for row in payload["results"]:
        assert set(row) == {"metric", "value", "protocol"}
        assert isinstance(row["value"], float)
        protocol = row["protocol"]
        for key in ("num_generated", "num_real", "seed", "feature_extractor", "feature_extractor_sha256",
                    "real_split", "dataset"):
            assert key in protocol, (row["metric"], key)
        assert protocol["checkpoint_step"] == step and protocol["seed"] == payload["seed"]
        assert {"ganlab", "torch", "torch_fidelity"} == set(protocol["versions"])


def test_eval_on_a_ring8_run_writes_the_mode_metrics(cli, ring_run):
    result = cli("eval", str(ring_run))
    assert result.exit_code == 0, result.stderr
    payload = json.loads((ring_run / "eval.json").read_text())
    _check_contract(payload, ring_run, "vanilla", "ring8", 60)
    by_name = {r["metric"]: r for r in payload["results"]}
    assert {"modes_covered", "high_quality", "reverse_kl", "density", "coverage"} <= set(by_name)
    modes = by_name["modes_covered"]
    assert 0 <= modes["value"] <= 8 and modes["value"] == int(modes["value"])
    assert modes["protocol"]["num_generated"] == 2500 and modes["protocol"]["num_real"] is None
    assert modes["protocol"]["threshold_std"] == 3
    assert by_name["coverage"]["protocol"]["feature_extractor"] == "identity"
    assert by_name["coverage"]["protocol"]["num_real"] == 2500
    assert sum(payload["details"]["modes"]["mode_counts"]) == round(by_name["high_quality"]["value"] * 2500)
    assert "modes_covered" in result.stdout and "eval.json" in result.stdout


def test_eval_json_flag_prints_what_it_writes(cli, ring_run):
    result = cli("eval", str(ring_run), "--metrics", "modes", "--num-samples", "500", "--seed", "3", "--json")
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == json.loads((ring_run / "eval.json").read_text())
    assert [r["metric"] for r in printed["results"]] == ["modes_covered", "high_quality", "reverse_kl"]
    assert all(r["protocol"]["seed"] == 3 and r["protocol"]["num_generated"] == 500 for r in printed["results"])


def test_the_same_seed_gives_the_same_numbers(cli, ring_run):
    runs = []
    for _ in range(2):
        assert cli("eval", str(ring_run), "--metrics", "modes,density_coverage", "-n", "400").exit_code == 0
        runs.append(json.loads((ring_run / "eval.json").read_text())["results"])
    assert runs[0] == runs[1]


def test_eval_on_a_digits_run_uses_the_domain_classifier_and_caches_real_features(cli, digits_run):
    timings = []
    payloads = []
    for _ in range(2):
        start = time.perf_counter()
        result = cli("eval", str(digits_run), "-n", "600")
        timings.append(time.perf_counter() - start)
        assert result.exit_code == 0, result.stderr
        payloads.append(json.loads((digits_run / "eval.json").read_text()))
    first, second = payloads
    _check_contract(first, digits_run, "vanilla", "digits", 40)
    by_name = {r["metric"]: r for r in first["results"]}
    assert {"fid", "kid", "is", "precision", "recall", "density", "coverage", "classes_covered",
            "class_kl"} <= set(by_name)
    classifier = first["classifier"]
    assert classifier["accuracy"] >= 0.95, classifier
    assert classifier["held_out"] == "the dataset's test split" and classifier["n_test"] == 360
    fid = by_name["fid"]["protocol"]
    assert fid["feature_extractor"] == "ganlab-domain"
    assert fid["feature_extractor_sha256"] == file_sha256(classifier["path"])
    assert fid["num_generated"] == 600 and fid["num_real"] == 1797 and fid["real_split"] == "all"
    assert by_name["fid"]["value"] > 0
    assert by_name["is"]["protocol"]["num_real"] is None
    # the second evaluation reuses the classifier and the real features, and is faster
    assert (first["features"]["real_cache"], second["features"]["real_cache"]) == ("miss", "hit")
    assert first["results"] == second["results"]
    print(f"digits eval: first {timings[0]:.2f} s (trains classifier, extracts real features), "
          f"second {timings[1]:.2f} s (cached)")
    assert timings[1] < timings[0]


def test_precision_recall_never_loads_vgg16(cli, digits_run, monkeypatch):
    """torch-fidelity falls back to VGG16 (a download) for precision/recall when no extractor
    is named; ganlab always computes it in the chosen feature space."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    class Forbidden:
        def __init__(self, *args, **kwargs):
            raise AssertionError("VGG16 was built")

    monkeypatch.setitem(FEATURE_EXTRACTORS_REGISTRY, "vgg16", Forbidden)
    result = cli("eval", str(digits_run), "--metrics", "precision_recall", "-n", "200")
    assert result.exit_code == 0, result.stderr
    rows = json.loads((digits_run / "eval.json").read_text())["results"]
    assert {r["protocol"]["feature_extractor"] for r in rows} == {"ganlab-domain"}


def test_offline_inception_without_weights_is_one_line_and_exit_2(cli, digits_run):
    result = cli("eval", str(digits_run), "--feature-extractor", "inception", "--metrics", "fid")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--inception-weights" in lines[0] and inception_url() in lines[0]


@pytest.mark.parametrize("args, message", [
    (["--metrics", "nope"], "unknown metric 'nope'"),
    (["--metrics", "fid"], "applies to image data, not points"),
    (["--metrics", "classes"], "applies to image data"),
    (["--num-samples", "0"], "--num-samples must be positive"),
    (["--feature-extractor", "nope"], "unknown feature extractor 'nope'"),
    (["--feature-extractor", "inception"], "apply to images"),
])
def test_bad_eval_options_are_one_line_errors(cli, ring_run, args, message):
    result = cli("eval", str(ring_run), *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_metric_that_does_not_apply_is_refused_when_asked_for(cli, digits_run):
    result = cli("eval", str(digits_run), "--metrics", "stacked_modes", "-n", "100")
    assert result.exit_code == 2 and "does not apply" in result.stderr


def test_eval_of_a_folder_that_is_not_a_run(cli, tmp_path):
    result = cli("eval", str(tmp_path))
    assert result.exit_code == 2 and "not a ganlab run" in result.stderr
