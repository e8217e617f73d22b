"""Training curves kept in result records, so a leaderboard needs no run folders for them.

A curve is column-oriented: ``{"step": [100, 200], "d_loss": [0.7, 0.6], ...}``; a value
missing at some step (mode metrics exist only at ``eval_every`` steps) is None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

# Throughput depends on the machine and the load, not on the run: not part of a result.
SKIPPED_KEYS = {"step", "steps_per_s"}


def curve_from_metrics(records: Iterable[Mapping[str, Any]]) -> dict[str, list]:
    rows = [r for r in records if isinstance(r.get("step"), int)]
    keys: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in SKIPPED_KEYS and key not in keys and _plottable(value):
                keys.append(key)
    curve: dict[str, list] = {"step": [r["step"] for r in rows]}
    for key in keys:
        curve[key] = [r.get(key) if _plottable(r.get(key)) else None for r in rows]
    return curve


def _plottable(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    return isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)


def series(curve: Mapping[str, list], key: str) -> tuple[list[int], list[Any]]:
    """(steps, values) where ``key`` was logged."""
    values = curve.get(key) or []
    pairs = [(s, v) for s, v in zip(curve.get("step", []), values) if v is not None]
    return [s for s, _ in pairs], [v for _, v in pairs]
