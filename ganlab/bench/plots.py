"""Figures for leaderboards and reports, returned as PNG bytes (embedded or saved)."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ganlab.bench.curves import series  # noqa: E402

COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def figure_png(fig) -> bytes:
    """PNG bytes of a figure, without a timestamp, so equal data gives equal files."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def mean_curve(curves: Sequence[Mapping[str, list]], key: str
               ) -> tuple[list[int], list[float], list[float], list[float]]:
    """Steps where every curve has ``key``, with the mean, min and max across curves."""
    per_run = [dict(zip(*series(c, key))) for c in curves]
    per_run = [run for run in per_run if run]
    if not per_run:
        return [], [], [], []
    steps = sorted(set.intersection(*(set(run) for run in per_run)))
    values = [[float(run[s]) for run in per_run] for s in steps]
    return (steps, [sum(v) / len(v) for v in values], [min(v) for v in values],
            [max(v) for v in values])


def curves_figure(groups: Mapping[str, Sequence[Mapping[str, list]]], key: str, title: str,
                  ylabel: str, log_y: bool = False, ymax: float | None = None,
                  per_run: bool = False) -> bytes | None:
    """One line per group (mean over its runs, band from min to max), or every run's line
    when ``per_run``; None when no group has the key."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    drew = False
    for i, (name, curves) in enumerate(groups.items()):
        colour = COLOURS[i % len(COLOURS)]
        if per_run:
            for j, curve in enumerate(curves):
                steps, values = series(curve, key)
                if steps:
                    ax.plot(steps, values, color=colour, alpha=0.8, lw=1.2,
                            label=name if j == 0 else None, drawstyle="steps-post")
                    drew = True
            continue
        steps, mean, low, high = mean_curve(curves, key)
        if not steps:
            continue
        ax.plot(steps, mean, color=colour, lw=1.6, label=f"{name} (n={len(curves)})")
        if len(curves) > 1:
            ax.fill_between(steps, low, high, color=colour, alpha=0.15, lw=0)
        drew = True
    if not drew:
        plt.close(fig)
        return None
    if log_y:
        ax.set_yscale("log")
    if ymax is not None:
        ax.set_ylim(0, ymax * 1.05)
    ax.set_xlabel("generator step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2 if len(groups) > 4 else 1)
    return figure_png(fig)


def occupancy_figure(steps: Sequence[int], mode_counts: Sequence[Sequence[int]], title: str) -> bytes:
    """Share of high-quality samples per mode (rows) at each evaluation (columns): a
    collapsed generator is one bright row, mode hopping a bright cell that moves."""
    counts = [[float(c) for c in row] for row in mode_counts]
    shares = [[c / max(sum(row), 1.0) for c in row] for row in counts]
    modes = len(shares[0]) if shares else 0
    matrix = [[shares[t][k] for t in range(len(shares))] for k in range(modes)]
    fig, ax = plt.subplots(figsize=(6.4, max(2.2, 0.16 * modes + 1.2)))
    image = ax.imshow(matrix, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1,
                      extent=(steps[0] - 0.5, steps[-1] + 0.5, modes - 0.5, -0.5) if steps else None)
    ax.set_xlabel("generator step")
    ax.set_ylabel("mode")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="share of HQ samples")
    return figure_png(fig)


def bar_figure(labels: Sequence[str], values: Sequence[float], title: str, ylabel: str,
               ymax: float | None = None) -> bytes:
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(labels) + 1.5), 3.4))
    ax.bar(range(len(labels)), values, color=[COLOURS[i % len(COLOURS)] for i in range(len(labels))])
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    for i, v in enumerate(values):
        if not math.isnan(v):
            ax.text(i, v, f"{v:.0%}" if ymax == 1 else f"{v:.2g}", ha="center", va="bottom", fontsize=8)
    if ymax is not None:
        ax.set_ylim(0, ymax * 1.12)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return figure_png(fig)
