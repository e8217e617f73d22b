"""``ganlab report``: where vanilla GAN fails, measured, in one document.

It reads the records of the ``report`` suite (benchmarks/report.toml), whose groups are:

- ``coverage``: vanilla GAN on the ring and the grid, mode statistics every few hundred
  steps. Shows collapse (few modes covered) and mode hopping (the dominant mode moves
  from one evaluation to the next).
- ``saturation``: the saturating generator loss log(1 - D(G(z))) against the
  non-saturating -log D(G(z)), logging every few steps early in training. When D rejects
  the fakes (D(G(z)) -> 0) the saturating loss's gradient is scaled by D(G(z)) and vanishes.
- ``sensitivity``: a learning-rate x seed grid on the ring for vanilla and some variants;
  the share of runs that cover every mode.

Each section is computed from whichever records of its group are present, so a report
can be drawn from a partial run.
"""

from __future__ import annotations

import html
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganlab.bench.curves import series
from ganlab.bench.plots import bar_figure, curves_figure, data_uri, occupancy_figure
from ganlab.bench.store import ResultSet
from ganlab.registry import Registry
from ganlab.train.setup import load_dataset

EARLY_STEPS = 200  # "early in training" for the gradient comparison


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)  # markdown paragraphs / table lines
    figures: list[tuple[str, str, bytes]] = field(default_factory=list)  # (file, caption, png)


def _ok(records: list[dict[str, Any]], group: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("group") == group and r.get("status") == "ok"]


def _final(record: dict[str, Any], metric: str) -> float | None:
    for result in record.get("results", []):
        if result.get("metric") == metric:
            return float(result["value"])
    return None


def _fmt(values: list[float], digits: int = 2) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def mode_count(registry: Registry, record: dict[str, Any]) -> int:
    options = record.get("data_options_resolved") or dict(record.get("definition", {}).get("data_options", {}))
    dataset, _ = load_dataset(registry, record["dataset"], options)
    return len(dataset.spec.modes or ())


# ---- 1. collapse and mode hopping ------------------------------------------------------------
def hop_stats(curve: dict[str, list]) -> dict[str, Any]:
    """Mode hopping along one run.

    An evaluation is *concentrated* when one mode holds at least half of its high-quality
    samples (the generator sits on that mode). A *hop* is a change of that mode between
    consecutive concentrated evaluations: the collapsed generator moved elsewhere. A diffuse
    generator (samples spread thinly over many modes) is concentrated nowhere, so the
    noise in its per-mode counts is not mistaken for hopping.
    """
    steps, counts = series(curve, "mode_counts")
    focus = [_argmax(c) for c in counts if sum(c) and max(c) >= 0.5 * sum(c)]
    hops = sum(a != b for a, b in zip(focus, focus[1:]))
    _, covered = series(curve, "modes_covered")
    return {"evaluations": len(steps), "concentrated": len(focus), "hops": hops,
            "modes_visited": len(set(focus)),
            "max_covered": max(covered) if covered else None,
            "final_covered": covered[-1] if covered else None}


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda k: values[k])


def coverage_section(registry: Registry, records: list[dict[str, Any]]) -> Section:
    section = Section("1. Mode collapse and mode hopping over training")
    cells = _ok(records, "coverage")
    if not cells:
        section.text.append("_No records of the `coverage` group yet._")
        return section
    section.text.append(
        "Mode statistics of 2,500 fresh samples at every evaluation step (a sample is high quality "
        "within 3 std of its nearest mode; a mode is covered if at least one high-quality sample "
        "lands on it). An evaluation is *concentrated* when one mode holds at least half of its "
        "high-quality samples: the generator sits on that mode. *Hops*: how often that mode "
        "changes between consecutive concentrated evaluations; *visited*: how many different "
        "modes it sat on. A collapsed generator that hops covers one mode at a time but "
        "visits many.")
    section.text.append("")
    section.text.append("| variant | dataset | seed | modes | covered (final) | covered (max over training) "
                        "| high quality (final, %) | concentrated evaluations | hops | modes visited |")
    section.text.append("|---|---|---|---|---|---|---|---|---|---|")
    by_dataset: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(cells, key=lambda r: (r["dataset"], r["variant"], r.get("label", ""), r["seed"])):
        stats = hop_stats(record.get("curve", {}))
        hq = _final(record, "high_quality")
        covered = _final(record, "modes_covered")
        section.text.append(
            f"| {_name(record)} | {record['dataset']} | {record['seed']} | {mode_count(registry, record)} | "
            f"{'–' if covered is None else int(covered)} | {stats['max_covered']} | "
            f"{'–' if hq is None else f'{100 * hq:.1f}'} | {stats['concentrated']}/{stats['evaluations']} "
            f"| {stats['hops']} | {stats['modes_visited']} |")
        by_dataset[(record["dataset"], _name(record))].append(record)
    for (dataset, name), runs in sorted(by_dataset.items()):
        modes = mode_count(registry, runs[0])
        png = curves_figure({f"{name} seed {r['seed']}": [r["curve"]] for r in runs}, "modes_covered",
                            f"{name} on {dataset}: modes covered, each seed", "modes covered",
                            ymax=modes, per_run=True)
        if png:
            section.figures.append((f"coverage-{dataset}-{name}.png",
                                    f"{name} on {dataset}: modes covered over training, one line per seed",
                                    png))
        hopper = max(runs, key=lambda r: (hop_stats(r["curve"])["hops"], -r["seed"]))
        steps, counts = series(hopper["curve"], "mode_counts")
        if steps:
            section.figures.append((
                f"occupancy-{dataset}-{name}-s{hopper['seed']}.png",
                f"{name} on {dataset}, seed {hopper['seed']}: share of high-quality samples per mode "
                f"at each evaluation (the seed with the most hops)",
                occupancy_figure(steps, counts, f"{name} on {dataset}, seed {hopper['seed']}: "
                                                f"where the samples are")))
    return section


def _name(record: dict[str, Any]) -> str:
    return f"{record['variant']} [{record['label']}]" if record.get("label") else record["variant"]


# ---- 2. the saturating loss's vanishing gradient ---------------------------------------------
def early_values(curve: dict[str, list], key: str, until: int = EARLY_STEPS) -> list[float]:
    steps, values = series(curve, key)
    return [float(v) for s, v in zip(steps, values) if s <= until]


def saturation_section(records: list[dict[str, Any]]) -> Section:
    section = Section("2. The saturating generator loss: vanishing gradients early in training")
    cells = _ok(records, "saturation")
    if not cells:
        section.text.append("_No records of the `saturation` group yet._")
        return section
    section.text.append(
        "The min-max game as written has G minimise E[log(1 − D(G(z)))], whose gradient with "
        "respect to D's logit s is −σ(s) = −D(G(z)): when D confidently rejects the fakes "
        "(D(G(z)) → 0, typical early in training) the gradient vanishes. The non-saturating "
        "loss −E[log D(G(z))] has gradient −(1 − D(G(z))) and stays strong. Same nets, data, "
        f"seeds and optimiser; only the G loss differs. Medians over the first {EARLY_STEPS} "
        "steps of each run, then mean ± std over seeds:")
    section.text.append("")
    section.text.append("| dataset | G loss | seeds | ‖∇G‖ (median, early) | D(G(z)) (median, early) "
                        "| D(x) (median, early) |")
    section.text.append("|---|---|---|---|---|---|")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in cells:
        loss = record.get("hparams", {}).get("g_loss", record.get("label", ""))
        groups[(record["dataset"], str(loss))].append(record)
    medians: dict[tuple[str, str], float] = {}
    for (dataset, loss), runs in sorted(groups.items()):
        per_run = {key: [statistics.median(v) for r in runs if (v := early_values(r["curve"], key))]
                   for key in ("grad_norm_G", "d_fake", "d_real")}
        if per_run["grad_norm_G"]:
            medians[(dataset, loss)] = statistics.fmean(per_run["grad_norm_G"])
        section.text.append(f"| {dataset} | {loss} | {len(runs)} | {_fmt(per_run['grad_norm_G'], 4)} | "
                            f"{_fmt(per_run['d_fake'], 3)} | {_fmt(per_run['d_real'], 3)} |")
    section.text.append("")
    for dataset in sorted({d for d, _ in groups}):
        sat, non = medians.get((dataset, "saturating")), medians.get((dataset, "non_saturating"))
        if sat and non:
            d_fake = [statistics.median(v) for r in groups.get((dataset, "saturating"), [])
                      if (v := early_values(r["curve"], "d_fake"))]
            note = ""
            if d_fake and statistics.fmean(d_fake) > 0.3:
                note = (f" Here D does not reject the fakes early on (median D(G(z)) "
                        f"{statistics.fmean(d_fake):.2f}), so the saturating loss has nothing to "
                        f"saturate against and the two gradients are alike.")
            section.text.append(f"- {dataset}: the saturating loss's early generator gradient is "
                                f"{sat / non:.3g}× the non-saturating one's ({sat:.3g} vs {non:.3g})."
                                + note)
        runs = {loss: [r["curve"] for r in rs] for (d, loss), rs in groups.items() if d == dataset}
        for key, label, log_y in (("grad_norm_G", "generator gradient norm ‖∇G‖", True),
                                  ("d_fake", "mean D(G(z))", False)):
            png = curves_figure(runs, key, f"{dataset}: {label} (mean over seeds, band: min-max)", label,
                                log_y=log_y)
            if png:
                section.figures.append((f"saturation-{dataset}-{key}.png", f"{dataset}: {label} per step, "
                                        f"saturating vs non-saturating G loss", png))
    return section


# ---- 3. hyperparameter sensitivity -----------------------------------------------------------
def sensitivity_section(registry: Registry, records: list[dict[str, Any]]) -> Section:
    section = Section("3. Hyperparameter sensitivity: runs that cover every mode")
    cells = [r for r in _ok(records, "sensitivity") if _final(r, "modes_covered") is not None]
    if not cells:
        section.text.append("_No records of the `sensitivity` group yet._")
        return section
    labels = sorted({r.get("label", "") for r in cells})
    variants = sorted({r["variant"] for r in cells}, key=lambda v: (v != "vanilla", v))
    datasets = sorted({r["dataset"] for r in cells})
    section.text.append(
        "Every variant trained with the same learning-rate grid (both networks' rates set as "
        "shown, overriding the variants' defaults) and the same seeds and budget. A run counts "
        "if its final 2,500 samples cover every mode. Entries: runs covering all modes / runs.")
    for dataset in datasets:
        rows = [r for r in cells if r["dataset"] == dataset]
        modes = mode_count(registry, rows[0])
        section.text += ["", f"**{dataset}** ({modes} modes, {rows[0]['steps']} steps)", "",
                         "| variant | " + " | ".join(labels) + " | all settings | mean modes covered |",
                         "|---|" + "---|" * (len(labels) + 2)]
        shares = []
        for variant in variants:
            mine = [r for r in rows if r["variant"] == variant]
            if not mine:
                continue
            entries = []
            for label in labels:
                runs = [r for r in mine if r.get("label", "") == label]
                full = sum(_final(r, "modes_covered") >= modes for r in runs)
                entries.append(f"{full}/{len(runs)}" if runs else "–")
            full_all = sum(_final(r, "modes_covered") >= modes for r in mine)
            shares.append((variant, full_all / len(mine)))
            covered = [_final(r, "modes_covered") for r in mine]
            section.text.append(f"| {variant} | " + " | ".join(entries) +
                                f" | {full_all}/{len(mine)} ({full_all / len(mine):.0%}) | {_fmt(covered, 1)} |")
        section.figures.append((
            f"sensitivity-{dataset}.png",
            f"{dataset}: share of runs over the learning-rate x seed grid that cover all {modes} modes",
            bar_figure([v for v, _ in shares], [s for _, s in shares],
                       f"{dataset}: runs covering all {modes} modes", "share of runs", ymax=1)))
    return section


# ---- the document ----------------------------------------------------------------------------
def build_sections(registry: Registry, results: ResultSet) -> list[Section]:
    records = results.records
    return [coverage_section(registry, records), saturation_section(records),
            sensitivity_section(registry, records)]


def _setup_lines(results: ResultSet) -> list[str]:
    lines = []
    for group in ("coverage", "saturation", "sensitivity"):
        mine = [r for r in results.records if r.get("group") == group]
        if not mine:
            continue
        steps = sorted({r["steps"] for r in mine})
        seeds = sorted({r["seed"] for r in mine})
        status = defaultdict(int)
        for r in mine:
            status[r["status"]] += 1
        batch = sorted({str(r.get("hparams", {}).get("batch_size", "?")) for r in mine})
        lines.append(f"- `{group}`: {len(mine)} runs ({', '.join(f'{v} {k}' for k, v in sorted(status.items()))}), "
                     f"{'/'.join(map(str, steps))} steps, batch {'/'.join(batch)}, seeds {seeds}")
    return lines


def write_report(registry: Registry, results: ResultSet, out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = build_sections(registry, results)
    intro = ["# Where vanilla GAN fails: a measured report", "",
             "Generated by `ganlab report` from the `report` suite (benchmarks/report.toml). "
             "Every number below comes from the runs listed here:", ""] + _setup_lines(results)
    md, body = list(intro), [f"<h1>{html.escape(intro[0][2:])}</h1>",
                             f"<p>{html.escape(intro[2])}</p><ul>"] + \
        [f"<li>{html.escape(line[2:])}</li>" for line in intro[4:]] + ["</ul>"]
    for section in sections:
        md += ["", f"## {section.title}", ""] + section.text + [""]
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body.append(_markdown_to_html(section.text))
        for name, caption, png in section.figures:
            (out / name).write_bytes(png)
            md += [f"![{caption}]({name})", ""]
            body.append(f"<figure><img src='{data_uri(png)}' alt='{html.escape(caption)}'>"
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>ganlab report</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em}"
            "th{background:#f3f3f3}figure img{max-width:100%}figcaption{font-size:.85em;color:#555}"
            "</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    (out / "report.html").write_text(page, encoding="utf-8")
    return [out / "report.md", out / "report.html"]


def _markdown_to_html(lines: list[str]) -> str:
    """The small markdown subset the sections use: paragraphs, bullets, pipe tables."""
    parts, table, bullets = [], [], []

    def flush() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[html.escape(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells[1:])
            parts.append(f"<table><tr>{head}</tr>{rest}</table>")
            table.clear()
        if bullets:
            parts.append("<ul>" + "".join(f"<li>{html.escape(b)}</li>" for b in bullets) + "</ul>")
            bullets.clear()

    for line in lines:
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            bullets.append(line[2:])
            continue
        flush()
        if line.strip():
            parts.append(f"<p>{html.escape(line.strip('*_'))}</p>")
    flush()
    return "\n".join(parts)
