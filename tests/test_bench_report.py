"""The vanilla limitations report: its statistics by hand, and one end-to-end run."""

from __future__ import annotations

import base64
import io
import re

from PIL import Image

from ganlab.bench.report import (coverage_section, early_values, hop_stats, saturation_section,
                                 sensitivity_section)


def test_hop_stats_by_hand():
    curve = {"step": [100, 200, 300, 400, 500, 600],
             "modes_covered": [1, 1, 2, 1, 0, None],
             "mode_counts": [[9, 0, 0], [0, 7, 0], [0, 5, 2], [0, 0, 4], [0, 0, 0], None]}
    stats = hop_stats(curve)
    # concentrated on modes 0, 1, 1 (5 of 7), 2; the empty evaluation is skipped: 2 hops
    assert stats == {"evaluations": 5, "concentrated": 4, "hops": 2, "modes_visited": 3,
                     "max_covered": 2, "final_covered": 0}


def test_a_diffuse_generator_is_not_hopping():
    curve = {"step": [1, 2, 3], "mode_counts": [[2, 1, 1, 1], [1, 2, 1, 1], [1, 1, 1, 2]]}
    assert hop_stats(curve)["concentrated"] == 0 and hop_stats(curve)["hops"] == 0


def test_early_values_stop_at_the_early_window():
    curve = {"step": [2, 4, 150, 400], "grad_norm_G": [1.0, None, 3.0, 9.0]}
    assert early_values(curve, "grad_norm_G", until=200) == [1.0, 3.0]


def _record(group, variant, seed, modes=None, label="", dataset="ring8", curve=None, **hparams):
    results = [] if modes is None else [{"metric": "modes_covered", "value": modes, "protocol": {}},
                                        {"metric": "high_quality", "value": 0.5, "protocol": {}}]
    return {"key": f"{group}{variant}{seed}{label}", "group": group, "variant": variant, "seed": seed,
            "label": label, "dataset": dataset, "status": "ok", "steps": 100, "results": results,
            "curve": curve or {}, "hparams": hparams, "data_options_resolved": {}}


def test_sensitivity_counts_runs_covering_every_mode(registry):
    records = [_record("sensitivity", "vanilla", s, m, label=l)
               for (s, m, l) in [(0, 8, "lr=a"), (1, 3, "lr=a"), (0, 1, "lr=b"), (1, 2, "lr=b")]]
    records += [_record("sensitivity", "pacgan", s, 8, label=l) for s in (0, 1) for l in ("lr=a", "lr=b")]
    section = sensitivity_section(registry, records)
    text = "\n".join(section.text)
    assert "| vanilla | 1/2 | 0/2 | 1/4 (25%) | 3.5 ± 3.1 |" in text
    assert "| pacgan | 2/2 | 2/2 | 4/4 (100%) | 8.0 ± 0.0 |" in text
    assert text.index("| vanilla") < text.index("| pacgan")  # the baseline first
    (figure,) = section.figures
    Image.open(io.BytesIO(figure[2])).verify()


def test_saturation_compares_early_gradients(registry):
    weak = {"step": [2, 4, 6, 300], "grad_norm_G": [0.01, 0.02, 0.03, 5.0], "d_fake": [0.01] * 4,
            "d_real": [0.99] * 4}
    strong = {"step": [2, 4, 6, 300], "grad_norm_G": [1.0, 2.0, 3.0, 5.0], "d_fake": [0.2] * 4,
              "d_real": [0.8] * 4}
    records = [_record("saturation", "vanilla", s, 1, label="g_loss=saturating", curve=weak,
                       g_loss="saturating") for s in (0, 1)]
    records += [_record("saturation", "vanilla", s, 1, label="g_loss=non_saturating", curve=strong,
                        g_loss="non_saturating") for s in (0, 1)]
    text = "\n".join(saturation_section(records).text)
    # medians over steps <= 200: 0.02 and 2.0, the same for both seeds
    assert "| ring8 | saturating | 2 | 0.0200 ± 0.0000 | 0.010 ± 0.000 | 0.990 ± 0.000 |" in text
    assert "0.01× the non-saturating one's (0.02 vs 2)" in text


def test_coverage_section_tabulates_each_run(registry):
    # 5/10 on mode 0 (concentrated: half), then 9/9 on mode 1: one hop, two modes visited
    curve = {"step": [100, 200], "modes_covered": [2, 1], "mode_counts": [[5, 5] + [0] * 6, [0, 9] + [0] * 6]}
    section = coverage_section(registry, [_record("coverage", "vanilla", 0, 1, curve=curve)])
    assert "| vanilla | ring8 | 0 | 8 | 1 | 2 | 50.0 | 2/2 | 1 | 2 |" in "\n".join(section.text)
    assert [name for name, _, _ in section.figures] == ["coverage-ring8-vanilla.png",
                                                        "occupancy-ring8-vanilla-s0.png"]


def test_missing_groups_say_so(registry):
    assert "No records of the `coverage` group" in coverage_section(registry, []).text[0]


TINY_REPORT = """
name = "tiny-report"
seeds = [0]
metrics = ["modes"]
num_samples = 500
[set]
hidden = 16
latent_dim = 8
batch_size = 64
[[group]]
name = "coverage"
variants = ["vanilla"]
datasets = ["ring8"]
steps = 40
eval_every = 10
[[group]]
name = "saturation"
variants = ["vanilla"]
datasets = ["ring8"]
steps = 20
log_every = 2
sweep = [{ g_loss = "saturating" }, { g_loss = "non_saturating" }]
[[group]]
name = "sensitivity"
variants = ["vanilla", "ns"]
datasets = ["ring8"]
steps = 20
sweep = [{ lr_d = 1e-4 }, { lr_d = 1e-3 }]
"""


def test_report_command_end_to_end(cli, tmp_path):
    suite = tmp_path / "tiny-report.toml"
    suite.write_text(TINY_REPORT)
    result = cli("report", "--suite", str(suite), "--results", str(tmp_path / "r"),
                 "--out", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.stderr
    assert "7 cells run" in result.stdout
    md = (tmp_path / "out" / "report.md").read_text()
    for title in ("1. Mode collapse", "2. The saturating generator loss", "3. Hyperparameter sensitivity"):
        assert title in md
    assert "No records" not in md
    page = (tmp_path / "out" / "report.html").read_text()
    sources = re.findall(r"src='([^']+)'", page)
    assert len(sources) >= 5
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).load()
    # rendering again from the stored results runs nothing and gives the same document
    again = cli("report", "--suite", str(suite), "--results", str(tmp_path / "r"),
                "--out", str(tmp_path / "out2"), "--no-run")
    assert again.exit_code == 0
    assert (tmp_path / "out2" / "report.md").read_text() == md
