"""Leaderboards: hand-computed aggregates, protocol separation, self-contained HTML."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from PIL import Image

from ganlab.bench.aggregate import aggregate, format_stat, Stat
from ganlab.bench.leaderboard import build, to_html, to_json, to_markdown, write_leaderboard
from ganlab.bench.store import ResultWriter, load_results

P_MODES = {"num_generated": 2500, "threshold_std": 3, "seed": 0}
P_OTHER = {"num_generated": 500, "threshold_std": 3, "seed": 0}


def record(variant, seed, modes, hq, protocol=P_MODES, dataset="ring8", status="ok", steps=100, **extra):
    definition = {"variant": variant, "dataset": dataset, "seed": seed, "steps": steps,
                  "overrides": extra.pop("overrides", {}), "data_options": {}, "log_every": 100,
                  "eval_every": 0, "metrics": None, "num_samples": None, "eval_seed": 0}
    return {"key": f"{variant}-{dataset}-{seed}-{steps}-{protocol['num_generated']}-{definition['overrides']}",
            "cell": f"{variant}-{seed}", "variant": variant, "dataset": dataset, "seed": seed, "steps": steps,
            "label": extra.pop("label", ""), "status": status, "definition": definition,
            "hparams": {"batch_size": 512, "lr_g": 1e-3}, "curve": extra.pop("curve", {}),
            "results": [] if status != "ok" else [
                {"metric": "modes_covered", "value": modes, "protocol": protocol},
                {"metric": "high_quality", "value": hq, "protocol": protocol}], **extra}


def test_mean_and_sample_std_over_seeds_by_hand():
    agg = aggregate([record("vanilla", 0, 2, 0.9), record("vanilla", 1, 4, 0.8), record("vanilla", 2, 6, 0.7),
                     record("pacgan", 0, 8, 0.5), record("pacgan", 1, 8, 0.7)])
    (table,) = agg.tables
    assert [r.name for r in table.rows] == ["pacgan", "vanilla"]  # best modes_covered first
    vanilla = table.rows[1]
    stat = vanilla.stats["modes_covered@P1"]
    assert stat.values == [2, 4, 6] and stat.mean == 4 and stat.std == pytest.approx(2.0)  # sqrt(8/2)
    hq = table.rows[0].stats["high_quality@P1"]
    assert hq.mean == pytest.approx(0.6) and hq.std == pytest.approx(0.1414213562)  # sqrt(0.02/1)
    assert format_stat(hq, 100) == "60.0 ± 14.1"  # one decimal from 10 up
    assert format_stat(Stat([7.0])) == "7.00 ± 0.00"


def test_results_under_different_protocols_never_share_a_column():
    agg = aggregate([record("vanilla", 0, 2, 0.9), record("pacgan", 0, 7, 0.6, protocol=P_OTHER)])
    (table,) = agg.tables
    assert [c.id for c in table.columns] == ["modes_covered@P1", "modes_covered@P2",
                                             "high_quality@P1", "high_quality@P2"]
    assert agg.protocols == {"P1": P_MODES, "P2": P_OTHER}  # ids follow the canonical JSON order
    by_name = {r.name: r for r in table.rows}
    assert set(by_name["vanilla"].stats) == {"modes_covered@P1", "high_quality@P1"}
    assert set(by_name["pacgan"].stats) == {"modes_covered@P2", "high_quality@P2"}


def test_diverged_runs_are_counted_not_averaged_and_budgets_get_their_own_rows():
    agg = aggregate([record("vanilla", 0, 3, 0.9), record("vanilla", 1, 0, 0, status="diverged"),
                     record("vanilla", 0, 5, 0.9, steps=200),
                     {"key": "f", "status": "failed", "cell": "broken", "message": "boom"}])
    (table,) = agg.tables
    rows = {r.label: r for r in table.rows}
    assert set(rows) == {"steps=100", "steps=200"}
    assert rows["steps=100"].diverged == 1 and rows["steps=100"].stats["modes_covered@P1"].values == [3]
    assert [f["cell"] for f in agg.failed] == ["broken"]


def _png_bytes(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 10), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _results_with_pictures(tmp_path):
    curve = {"step": [10, 20, 30], "modes_covered": [1, 3, 2], "mode_counts": [[1] + [0] * 7] * 3}
    with ResultWriter(tmp_path) as writer:
        for variant, seed, modes in (("vanilla", 0, 2), ("vanilla", 1, 3), ("ns", 0, 8)):
            run = tmp_path / "runs" / f"{variant}{seed}"
            run.mkdir(parents=True)
            (run / "samples.png").write_bytes(_png_bytes((seed * 100, 50, 200)))
            writer.append(record(variant, seed, modes, 0.9, run=f"runs/{variant}{seed}", curve=curve))
    return load_results([tmp_path])


def test_html_is_self_contained_and_every_embedded_image_decodes(tmp_path):
    write_leaderboard(_results_with_pictures(tmp_path), tmp_path / "out")
    page = (tmp_path / "out" / "leaderboard.html").read_text()
    assert "src='runs/" not in page and "file:" not in page  # nothing outside the file
    sources = re.findall(r"src='([^']+)'", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    sizes = []
    for src in sources:
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
        image.load()
        sizes.append(image.size)
    assert (12, 10) in sizes  # the samples pictures (the lowest seed per row)
    assert len(sources) == 2 + 1  # two rows' pictures, one coverage plot
    assert "vanilla" in page and "P1" in page and "num_generated=2500" in page


def test_markdown_and_json_agree_and_mark_the_best_row(tmp_path):
    board = build(_results_with_pictures(tmp_path))
    md = to_markdown(board)
    assert "| ns | 100 | 0 | 0/1 | **8.00 ± 0.00** |" in md
    assert "| vanilla | 100 | 0,1 | 0/2 | 2.50 ± 0.71 |" in md
    assert "P1: num_generated=2500, seed=0, threshold_std=3" in md
    data = to_json(board)
    (table,) = data["tables"]
    vanilla = next(r for r in table["rows"] if r["variant"] == "vanilla")
    assert vanilla["values"]["modes_covered@P1"]["values"] == [2.0, 3.0]
    assert vanilla["picture"] == "pictures/ring8--vanilla.png"
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN sneaks in
    assert to_html(board) == to_html(build(_results_with_pictures(tmp_path / "again")))


def test_cli_leaderboard_merges_duplicates(cli, tmp_path):
    with ResultWriter(tmp_path / "a") as writer:
        writer.append(record("vanilla", 0, 2, 0.9))
    with ResultWriter(tmp_path / "b") as writer:
        writer.append(record("vanilla", 0, 2, 0.9))
        writer.append(record("vanilla", 1, 4, 0.9))
    result = cli("leaderboard", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "lb"))
    assert result.exit_code == 0, result.stderr
    assert "2 cells from 2 file(s) (1 duplicate records dropped)" in result.stdout
    data = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    assert data["tables"][0]["rows"][0]["values"]["modes_covered@P1"]["mean"] == 3.0
