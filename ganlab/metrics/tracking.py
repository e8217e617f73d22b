"""Mode metrics over training (``ganlab train --eval-every N``).

At every evaluation step :class:`ModeTracker` draws fresh samples, computes every *cheap*
registered metric that applies to the data (modes covered, high-quality share, reverse
KL; classes covered; Stacked-MNIST modes), adds the numbers to that step's
metrics.jsonl record and redraws ``RUN/modes.png``: vanilla GAN's collapse, and its
hopping from mode to mode, show as curves.

The tracker draws with its own generator, seeded by (run seed, step), and runs inside
``torch.random.fork_rng``: it never moves the training's random streams, so a resumed
run stays identical to an uninterrupted one, and the same step always gives the same
numbers.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ganlab.metrics.context import EvalContext, MetricNotApplicable
from ganlab.metrics.evaluate import split_output

PLOT_NAME = "modes.png"
SAMPLES = {"points": 2500, "image": 2000}  # points: the VEEGAN/PacGAN 2,500


class ModeTracker:
    def __init__(self, registry, num_samples: int | None = None):
        self.registry = registry
        self.num_samples = num_samples
        self._not_applicable: set[str] = set()
        self.tracked: list[str] = []  # value names added to records, in first-seen order

    def _seed(self, trainer, step: int) -> int:
        return (int(trainer.config.seed) * 1_000_003 + step * 7_919 + 12_345) % (2 ** 63)

    def on_log(self, trainer, step: int, record: dict[str, Any]) -> None:
        if not trainer.is_main:
            return
        kind = trainer.data_spec.kind
        specs = [m for m in self.registry.metrics()
                 if m.cheap and kind in m.kinds and m.name not in self._not_applicable]
        if not specs:
            return
        device = torch.device(trainer.device)
        with _forked_rng(device):
            rng = torch.Generator(device=device).manual_seed(self._seed(trainer, step))
            samples = trainer.sample(self.num_samples or SAMPLES[kind], rng)
            ctx = EvalContext(self.registry, trainer.config.dataset, trainer.config.data_options,
                              trainer.data_spec, samples, seed=self._seed(trainer, step),
                              dataset=trainer.dataset, device=str(device), checkpoint_step=step)
            for spec in specs:
                try:
                    output = spec.compute(ctx)
                except MetricNotApplicable:
                    self._not_applicable.add(spec.name)
                    continue
                values, _, _ = split_output(spec, output)
                for key, value in values.items():
                    record[key] = value
                    if key not in self.tracked:
                        self.tracked.append(key)
        if self.tracked:
            save_curves(trainer.run, record, self.tracked,
                        f"{trainer.config.variant} on {trainer.config.dataset}")


@contextlib.contextmanager
def _forked_rng(device: torch.device):
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def save_curves(run, current: dict[str, Any], keys: list[str], title: str) -> None:
    """One panel per tracked value against the step, from metrics.jsonl plus this record."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in run.read_metrics() if r.get("step", 0) < current["step"]] + [current]
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 2.2 * len(keys)), dpi=100, sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o", markersize=3)
        ax.set_ylabel(key, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(title, fontsize=9)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    path = run.path / PLOT_NAME
    tmp = path.with_name(f".{PLOT_NAME}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)  # a reader (a dashboard) never sees half a picture
