"""--eval-every: mode metrics as curves in metrics.jsonl, without touching the training."""

from __future__ import annotations

import json

import torch

from ganlab.metrics.tracking import PLOT_NAME, ModeTracker
from ganlab.train.api import TrainRequest, train
from ganlab.train.checkpoint import load_checkpoint


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _train(registry, out, steps, tracker, resume=False, dataset="ring8", **extra):
    request = TrainRequest(variant="vanilla", dataset=dataset, steps=steps, out=out, log_every=10,
                           eval_every=10, sample_every=0, ckpt_every=20, resume=resume, **extra)
    callbacks = [ModeTracker(registry, num_samples=300)] if tracker else []
    train(registry, request, callbacks=callbacks)
    return load_checkpoint(out / "checkpoint.pt")


def test_mode_metrics_land_in_metrics_jsonl_and_a_plot(registry, tmp_path):
    _train(registry, tmp_path / "run", 30, tracker=True)
    records = _records(tmp_path / "run")
    assert [r["step"] for r in records] == [10, 20, 30]
    for r in records:
        assert 0 <= r["modes_covered"] <= 8 and 0 <= r["high_quality"] <= 1 and r["reverse_kl"] >= 0
    assert (tmp_path / "run" / PLOT_NAME).stat().st_size > 1000


def test_the_tracker_never_changes_training_and_resume_stays_exact(registry, tmp_path):
    plain = _train(registry, tmp_path / "plain", 40, tracker=False)
    tracked = _train(registry, tmp_path / "tracked", 40, tracker=True)
    _train(registry, tmp_path / "resumed", 20, tracker=True)
    resumed = _train(registry, tmp_path / "resumed", 40, tracker=True, resume=True)
    for other in (tracked, resumed):
        for name, tensor in plain["modules"]["G"].items():
            assert torch.equal(tensor, other["modules"]["G"][name]), name
        assert torch.equal(plain["rng"]["torch"], other["rng"]["torch"])
    # the same step gives the same numbers, interrupted or not
    keys = ("step", "modes_covered", "high_quality", "reverse_kl")
    straight = [{k: r[k] for k in keys} for r in _records(tmp_path / "tracked")]
    again = [{k: r[k] for k in keys} for r in _records(tmp_path / "resumed")]
    assert straight == again


def test_digits_training_tracks_classes(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path / "cache"))
    _train(registry, tmp_path / "digits", 20, tracker=True, dataset="digits")
    records = _records(tmp_path / "digits")
    assert all(1 <= r["classes_covered"] <= 10 and r["class_kl"] >= 0 for r in records)
    assert "modes_covered" not in records[0]  # stacked_modes does not apply to digits
    assert list((tmp_path / "cache" / "classifiers").glob("digits-*.pt"))


def test_cli_eval_every_uses_the_tracker(cli, tmp_path):
    out = tmp_path / "cli"
    result = cli("train", "vanilla", "--steps", "20", "--eval-every", "10", "--log-every", "10",
                 "--out", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    assert [("modes_covered" in r) for r in _records(out)] == [True, True]
    assert (out / PLOT_NAME).is_file()
