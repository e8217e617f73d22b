"""``ganlab leaderboard``: merged bench results as leaderboard.md, .json and a
self-contained .html (pictures embedded as base64 PNG).

Everything written is a function of the merged records alone (no timestamps, no
paths), so shards merged give byte-identical files to a single run of the suite.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganlab.bench.aggregate import (Aggregate, Column, Row, Table, aggregate, canonical, display_scale,
                                    format_stat)
from ganlab.bench.curves import series
from ganlab.bench.plots import curves_figure, data_uri
from ganlab.bench.store import ResultSet

#: Curve keys that measure coverage over training, in order of preference.
COVERAGE_KEYS = ("modes_covered", "classes_covered", "modes_1000")
SCHEMA = "ganlab.leaderboard/1"


@dataclass
class Figure:
    name: str  # file name under the output folder
    caption: str
    png: bytes


@dataclass
class Leaderboard:
    agg: Aggregate
    results: ResultSet
    pictures: dict[tuple[str, str], Figure]  # (dataset, row name) -> final samples
    curves: dict[str, Figure]  # dataset -> coverage over training


def build(results: ResultSet) -> Leaderboard:
    agg = aggregate(results.records)
    pictures: dict[tuple[str, str], Figure] = {}
    curves: dict[str, Figure] = {}
    for table in agg.tables:
        for row in table.rows:
            picture = _row_picture(results, row)
            if picture is not None:
                pictures[(table.dataset, row.name)] = picture
        figure = _coverage_figure(table)
        if figure is not None:
            curves[table.dataset] = figure
    return Leaderboard(agg, results, pictures, curves)


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", text).strip("_")


def _row_picture(results: ResultSet, row: Row) -> Figure | None:
    """The final samples of the row's lowest-seed run whose folder is at hand."""
    for record in sorted(row.ok_records, key=lambda r: r["seed"]):
        run = results.run_path(record)
        path = run / "samples.png" if run is not None else None
        if path is not None and path.is_file():
            return Figure(f"pictures/{_slug(row.dataset)}--{_slug(row.name)}.png",
                          f"{row.name} on {row.dataset}, seed {record['seed']}, step {record['steps']}",
                          path.read_bytes())
    return None


def _coverage_figure(table: Table) -> Figure | None:
    for key in COVERAGE_KEYS:
        groups = {row.name: [r["curve"] for r in row.ok_records if series(r.get("curve", {}), key)[0]]
                  for row in table.rows}
        groups = {name: curves for name, curves in groups.items() if curves}
        if not groups:
            continue
        modes = _mode_count(groups)
        png = curves_figure(groups, key, f"{key} over training on {table.dataset} "
                                         f"(mean over seeds, band: min-max)", key, ymax=modes)
        if png is not None:
            return Figure(f"curves/{_slug(table.dataset)}--{key}.png",
                          f"{key} over training on {table.dataset}", png)
    return None


def _mode_count(groups: dict[str, list[dict]]) -> float | None:
    for curves in groups.values():
        for curve in curves:
            _, counts = series(curve, "mode_counts")
            if counts:
                return float(len(counts[0]))
    return None


# ---- JSON ---------------------------------------------------------------------------------------
def to_json(board: Leaderboard) -> dict[str, Any]:
    agg = board.agg
    return {
        "schema": SCHEMA,
        "protocols": agg.protocols,
        "records": len(board.results.records),
        "duplicates_dropped": board.results.duplicates,
        "unreadable_lines": board.results.unreadable,
        "tables": [{
            "dataset": t.dataset,
            "columns": [{"id": c.id, "metric": c.metric, "protocol": c.protocol_id, "better": c.better}
                        for c in t.columns],
            "rows": [{
                "name": r.name, "variant": r.variant, "label": r.label, "steps": r.steps,
                "setup": r.setup, "seeds": r.seeds, "diverged": r.diverged,
                "hparams": _common_hparams(r),
                "values": {cid: {"mean": s.mean, "std": s.std, "n": s.n, "values": s.values}
                           for cid, s in sorted(r.stats.items())},
                "picture": board.pictures[(t.dataset, r.name)].name
                if (t.dataset, r.name) in board.pictures else None,
            } for r in t.rows],
            "curve": board.curves[t.dataset].name if t.dataset in board.curves else None,
        } for t in agg.tables],
        "failed": [{"cell": r.get("cell"), "message": r.get("message", "")} for r in agg.failed],
    }


def _common_hparams(row: Row) -> dict[str, Any]:
    """The resolved hyperparameters the row's runs share (they differ only by seed)."""
    dicts = [r.get("hparams") or {} for r in row.records]
    if not dicts:
        return {}
    return {k: v for k, v in sorted(dicts[0].items())
            if all(canonical(d.get(k)) == canonical(v) for d in dicts)}


# ---- Markdown -----------------------------------------------------------------------------------
def _header_cell(column: Column, table: Table) -> str:
    unit = " (%)" if display_scale(column.metric) != 1 else ""
    arrow = {"higher": " ↑", "lower": " ↓"}.get(column.better, "")
    return f"{column.metric}{unit}{arrow} [{column.protocol_id}]"


def _best_rows(table: Table, column: Column) -> set[str]:
    means = {r.name: r.stats[column.id].mean for r in table.rows if column.id in r.stats}
    if not column.better or len(set(means.values())) < 2:
        return set()  # nothing to single out when every row scores the same
    target = max(means.values()) if column.better == "higher" else min(means.values())
    return {name for name, m in means.items() if m == target}


def _cell_text(row: Row, column: Column) -> str:
    return format_stat(row.stats.get(column.id), display_scale(column.metric))


def protocol_lines(agg: Aggregate) -> list[str]:
    return [f"{pid}: " + ", ".join(f"{k}={canonical(v) if isinstance(v, (dict, list)) else v}"
                                   for k, v in sorted(protocol.items()))
            for pid, protocol in agg.protocols.items()]


def to_markdown(board: Leaderboard) -> str:
    agg = board.agg
    lines = ["# ganlab leaderboard", "",
             "Mean ± sample standard deviation over seeds (n − 1 in the denominator). "
             "A column holds one metric under one evaluation protocol; numbers under different "
             "protocols never share a column. ↑/↓: which way is better; **bold**: best row.", "",
             "## Protocols", ""]
    lines += [f"- {line}" for line in protocol_lines(agg)] or ["- (no evaluated cells)"]
    lines += ["", f"Records: {len(board.results.records)} cells"
                  f" (duplicates dropped: {board.results.duplicates})", ""]
    for table in agg.tables:
        lines += [f"## {table.dataset}", ""]
        lines.append(_budget_line(table))
        lines.append("")
        headers = ["variant", "steps", "seeds", "diverged"] + [_header_cell(c, table) for c in table.columns]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "---|" * len(headers))
        best = {c.id: _best_rows(table, c) for c in table.columns}
        for row in table.rows:
            cells = [row.name, str(row.steps), ",".join(map(str, row.seeds)),
                     f"{row.diverged}/{len(row.records)}"]
            for column in table.columns:
                text = _cell_text(row, column)
                cells.append(f"**{text}**" if row.name in best[column.id] else text)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if table.dataset in board.curves:
            figure = board.curves[table.dataset]
            lines += [f"![{figure.caption}]({figure.name})", ""]
        pictures = [(row, board.pictures.get((table.dataset, row.name))) for row in table.rows]
        pictures = [(row, fig) for row, fig in pictures if fig is not None]
        if pictures:
            lines += ["Samples (final step, lowest seed):", ""]
            lines += [f"- {row.name}: ![{fig.caption}]({fig.name})" for row, fig in pictures]
            lines.append("")
    if agg.failed:
        lines += ["## Failed cells (not in the tables; rerun the bench to retry them)", ""]
        lines += [f"- {r.get('cell')}: {r.get('message', '')}" for r in agg.failed]
        lines.append("")
    return "\n".join(lines)


def _budget_line(table: Table) -> str:
    steps = sorted({r.steps for r in table.rows})
    batch = sorted({str(_common_hparams(r).get("batch_size", "?")) for r in table.rows})
    return (f"Budget: {', '.join(map(str, steps))} generator steps, batch {', '.join(batch)}; "
            f"each variant's own default hyperparameters unless its name says otherwise "
            f"(full settings in leaderboard.json).")


# ---- HTML ---------------------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
td.best { font-weight: bold; background: #eaf6ea; }
.pictures { display: flex; flex-wrap: wrap; gap: 0.8em; }
figure { margin: 0; } figure img { width: 240px; border: 1px solid #ddd; }
figcaption { font-size: 0.8em; max-width: 240px; }
code { font-size: 0.85em; }
"""


def to_html(board: Leaderboard) -> str:
    agg, esc = board.agg, html.escape
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>ganlab leaderboard</title>",
             f"<style>{_CSS}</style></head><body>", "<h1>ganlab leaderboard</h1>",
             "<p>Mean ± sample standard deviation over seeds. A column holds one metric under one "
             "evaluation protocol; numbers under different protocols never share a column.</p>",
             "<h2>Protocols</h2><ul>"]
    parts += [f"<li><code>{esc(line)}</code></li>" for line in protocol_lines(agg)]
    parts.append(f"</ul><p>Records: {len(board.results.records)} cells "
                 f"(duplicates dropped: {board.results.duplicates}).</p>")
    for table in agg.tables:
        parts.append(f"<h2>{esc(table.dataset)}</h2><p>{esc(_budget_line(table))}</p><table><tr>")
        headers = ["variant", "steps", "seeds", "diverged"] + [_header_cell(c, table) for c in table.columns]
        parts += [f"<th>{esc(h)}</th>" for h in headers]
        parts.append("</tr>")
        best = {c.id: _best_rows(table, c) for c in table.columns}
        for row in table.rows:
            parts.append(f"<tr><td>{esc(row.name)}</td><td>{row.steps}</td>"
                         f"<td>{esc(','.join(map(str, row.seeds)))}</td>"
                         f"<td>{row.diverged}/{len(row.records)}</td>")
            for column in table.columns:
                css = " class='best'" if row.name in best[column.id] else ""
                parts.append(f"<td{css}>{esc(_cell_text(row, column))}</td>")
            parts.append("</tr>")
        parts.append("</table>")
        if table.dataset in board.curves:
            figure = board.curves[table.dataset]
            parts.append(f"<figure><img style='width:640px' src='{data_uri(figure.png)}' "
                         f"alt='{esc(figure.caption)}'><figcaption>{esc(figure.caption)}</figcaption>"
                         f"</figure>")
        pictures = [(row, board.pictures.get((table.dataset, row.name))) for row in table.rows]
        pictures = [(row, fig) for row, fig in pictures if fig is not None]
        if pictures:
            parts.append("<h3>Samples (final step, lowest seed)</h3><div class='pictures'>")
            for row, fig in pictures:
                parts.append(f"<figure><img src='{data_uri(fig.png)}' alt='{esc(fig.caption)}'>"
                             f"<figcaption>{esc(fig.caption)}</figcaption></figure>")
            parts.append("</div>")
    if agg.failed:
        parts.append("<h2>Failed cells</h2><ul>")
        parts += [f"<li>{esc(str(r.get('cell')))}: {esc(r.get('message', ''))}</li>" for r in agg.failed]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_leaderboard(results: ResultSet, out_dir: str | Path) -> list[Path]:
    """Write leaderboard.md/.json/.html (and the pictures the .md links to)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    board = build(results)
    written = []
    for figure in [*board.pictures.values(), *board.curves.values()]:
        path = out / figure.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(figure.png)
    for name, text in (("leaderboard.md", to_markdown(board)),
                       ("leaderboard.json", json.dumps(to_json(board), indent=2, sort_keys=True,
                                                       allow_nan=True) + "\n"),
                       ("leaderboard.html", to_html(board))):
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
