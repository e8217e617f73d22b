"""Inception-v3 through a local weights file (--inception-weights), fully offline.

The test writes a weights file of the right shape itself: the state dict of
torch-fidelity's own FeatureExtractorInceptionV3 with random weights. The numbers are
meaningless; the path from file to eval.json (and the hash in the protocol) is what is tested.
"""

from __future__ import annotations

import json

import pytest
import torch

from ganlab.metrics.cache import file_sha256


def write_random_inception_weights(path, seed: int = 0) -> None:
    import torch_fidelity.feature_extractor_inceptionv3 as inception

    with pytest.MonkeyPatch.context() as mp:
        # Build the network without its download: no weights are loaded, the random init stays.
        mp.setattr(inception, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, strict=True: None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), path)


@pytest.fixture(scope="module")
def weights(offline_env):
    path = offline_env / "inception-random.pth"
    write_random_inception_weights(path)
    return path


@pytest.fixture(scope="module")
def digits_run(offline_env):
    from tests.conftest import run_cli

    out = offline_env / "digits"
    assert run_cli("train", "vanilla", "-d", "digits", "--steps", "10", "--out", str(out), "-q").exit_code == 0
    return out


def _eval_inception(cli, run, weights):
    result = cli("eval", str(run), "--feature-extractor", "inception", "--inception-weights", str(weights),
                 "--metrics", "fid,kid,is,precision_recall,density_coverage", "-n", "10", "--num-real", "10")
    assert result.exit_code == 0, result.stderr
    return json.loads((run / "eval.json").read_text())


@pytest.mark.slow  # Inception-v3 on a CPU: about 0.1-0.3 s per image, plus a 95 MB weights file
def test_local_inception_weights_file_gives_fid_with_its_hash(cli, offline_env, weights, digits_run):
    payload = _eval_inception(cli, digits_run, weights)
    by_name = {r["metric"]: r for r in payload["results"]}
    assert {"fid", "kid", "is", "precision", "recall", "density", "coverage"} <= set(by_name)
    sha = file_sha256(weights)
    for row in payload["results"]:
        assert row["protocol"]["feature_extractor"] == "inception-v3-compat"
        assert row["protocol"]["feature_extractor_sha256"] == sha
        assert row["protocol"]["num_generated"] == 10
    assert by_name["fid"]["protocol"]["num_real"] == 10
    assert by_name["fid"]["value"] >= 0 and by_name["is"]["value"] >= 1
    assert "classifier" not in payload  # no domain classifier was needed
    assert payload["features"]["real_cache"] == "miss"

    # Same weights: the real features come from the cache, the numbers are unchanged.
    again = _eval_inception(cli, digits_run, weights)
    assert again["features"]["real_cache"] == "hit" and again["results"] == payload["results"]

    # Other weights of the same shape: a different hash, so a new cache entry, never the stale one.
    other = offline_env / "inception-random-2.pth"
    write_random_inception_weights(other, seed=1)
    third = _eval_inception(cli, digits_run, other)
    assert third["features"]["real_cache"] == "miss"
    assert third["features"]["cache_file"] != payload["features"]["cache_file"]
    assert {r["protocol"]["feature_extractor_sha256"] for r in third["results"]} == {file_sha256(other)}


@pytest.mark.parametrize("content, message", [
    ("wrong_shapes", "cannot build feature extractor 'inception-v3-compat'"),
    ("code", "not a plain state dict"),
    ("missing", "no such file"),
])
def test_bad_weights_files_are_one_line_errors(cli, offline_env, digits_run, content, message):
    path = offline_env / f"{content}.pth"
    if content == "wrong_shapes":
        torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    elif content == "code":
        torch.save({"fc.weight": torch.zeros(3), "hook": print}, path)  # unpickling this names a callable
    result = cli("eval", str(digits_run), "--feature-extractor", "inception", "--inception-weights", str(path),
                 "--metrics", "fid", "-n", "10", "--num-real", "10")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
