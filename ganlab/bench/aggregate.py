"""From result records to leaderboard tables: mean ± std over seeds, one column per
(metric, protocol).

Two numbers share a column only if their metric and their whole protocol dict are equal
(the eval contract). A row is one training setup (variant, overrides, budget, data
options) on one dataset; its seeds are averaged.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Which way is better, for highlighting the best row; unknown metrics are not highlighted.
HIGHER_IS_BETTER = {"modes_covered", "high_quality", "classes_covered", "precision", "recall",
                    "density", "coverage", "inception_score", "is", "is_mean"}
LOWER_IS_BETTER = {"reverse_kl", "fid", "kid", "kid_mean", "kl", "class_kl", "modes_kl"}
# Definition fields that describe the evaluation, not the training: protocol, not row.
_EVAL_FIELDS = {"seed", "log_every", "eval_every", "metrics", "num_samples", "eval_seed"}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def better_direction(metric: str) -> str:
    if metric in HIGHER_IS_BETTER:
        return "higher"
    if metric in LOWER_IS_BETTER:
        return "lower"
    return ""


@dataclass
class Column:
    id: str
    metric: str
    protocol_id: str
    better: str


@dataclass
class Stat:
    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (n - 1 in the denominator); 0 for one seed."""
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


@dataclass
class Row:
    dataset: str
    variant: str
    label: str
    steps: int
    setup: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Stat] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.variant} [{self.label}]" if self.label else self.variant

    @property
    def seeds(self) -> list[int]:
        return sorted(r["seed"] for r in self.records)

    @property
    def diverged(self) -> int:
        return sum(r["status"] == "diverged" for r in self.records)

    @property
    def ok_records(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == "ok"]


@dataclass
class Table:
    dataset: str
    columns: list[Column]
    rows: list[Row]


@dataclass
class Aggregate:
    protocols: dict[str, dict[str, Any]]
    tables: list[Table]
    failed: list[dict[str, Any]]


def row_setup(record: Mapping[str, Any]) -> dict[str, Any]:
    """What makes two records the same training setup (seed and eval settings aside)."""
    definition = record.get("definition", {})
    return {k: v for k, v in definition.items() if k not in _EVAL_FIELDS}


def aggregate(records: Iterable[Mapping[str, Any]]) -> Aggregate:
    records = list(records)
    finished = [r for r in records if r.get("status") in ("ok", "diverged")]
    failed = [r for r in records if r.get("status") not in ("ok", "diverged")]

    # Protocol ids P1, P2, ... in a fixed order (by their canonical text).
    protocol_texts = sorted({canonical(res.get("protocol", {})) for r in finished
                             for res in r.get("results", [])})
    protocol_ids = {text: f"P{i}" for i, text in enumerate(protocol_texts, start=1)}
    protocols = {pid: json.loads(text) for text, pid in protocol_ids.items()}

    rows: dict[tuple[str, str], Row] = {}
    for record in finished:
        setup = row_setup(record)
        row_key = (record["dataset"], canonical(setup))
        row = rows.setdefault(row_key, Row(record["dataset"], record["variant"], record.get("label", ""),
                                           int(record.get("steps", 0)), setup))
        row.records.append(dict(record))

    tables = []
    for dataset in sorted({r.dataset for r in rows.values()}):
        table_rows = [r for r in rows.values() if r.dataset == dataset]
        _disambiguate(table_rows)
        columns: dict[str, Column] = {}
        for row in table_rows:
            for record in row.ok_records:
                for res in record.get("results", []):
                    value = res.get("value")
                    if not isinstance(value, (int, float)) or isinstance(value, bool):
                        continue
                    pid = protocol_ids[canonical(res.get("protocol", {}))]
                    col_id = f"{res['metric']}@{pid}"
                    columns.setdefault(col_id, Column(col_id, res["metric"], pid,
                                                      better_direction(res["metric"])))
                    row.stats.setdefault(col_id, Stat([])).values.append(float(value))
        ordered_columns = sorted(columns.values(), key=lambda c: (_metric_rank(c.metric), c.metric,
                                                                  c.protocol_id))
        primary = ordered_columns[0] if ordered_columns else None
        table_rows.sort(key=lambda r: _row_rank(r, primary))
        tables.append(Table(dataset, ordered_columns, table_rows))
    return Aggregate(protocols, tables, failed)


# The mode-collapse numbers lead, in the papers' order; other metrics follow by name.
_METRIC_ORDER = ["modes_covered", "high_quality", "reverse_kl", "classes_covered", "class_kl", "fid",
                 "kid", "precision", "recall", "density", "coverage"]


def _metric_rank(metric: str) -> int:
    return _METRIC_ORDER.index(metric) if metric in _METRIC_ORDER else len(_METRIC_ORDER)


def _row_rank(row: Row, primary: Column | None) -> tuple:
    if primary is None or primary.id not in row.stats or not primary.better:
        return (1, 0.0, row.name, row.steps)
    mean = row.stats[primary.id].mean
    return (0, -mean if primary.better == "higher" else mean, row.name, row.steps)


def _disambiguate(rows: list[Row]) -> None:
    """Rows that would show the same name (same variant and label, other budget or data
    options) get what differs appended to their label."""
    by_name: dict[str, list[Row]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    for group in by_name.values():
        if len(group) < 2:
            continue
        differing = sorted(k for k in group[0].setup
                           if len({canonical(r.setup.get(k)) for r in group}) > 1)
        for row in group:
            extra = ",".join(f"{k}={canonical(row.setup.get(k))}" for k in differing if k != "variant")
            row.label = ",".join(x for x in (row.label, extra) if x)


def format_stat(stat: Stat | None, scale: float = 1.0) -> str:
    if stat is None or not stat.n:
        return "–"
    mean, std = stat.mean * scale, stat.std * scale
    digits = 2 if abs(mean) < 10 else 1
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


#: Fractions shown as percentages, as the papers print them.
PERCENT_METRICS = {"high_quality"}


def display_scale(metric: str) -> float:
    return 100.0 if metric in PERCENT_METRICS else 1.0
