"""Pictures of a generator: image grids, and 2-D scatter plots over the mixture's modes."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from ganlab.interfaces import DataSpec


def save_image_grid(images: Tensor, path: str | Path, nrow: int | None = None) -> None:
    from torchvision.utils import save_image

    n = images.shape[0]
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image(images.detach().float().cpu().clamp(-1, 1), str(path), nrow=nrow,
               normalize=True, value_range=(-1, 1), padding=1)


def save_scatter(points: Tensor, spec: DataSpec, path: str | Path, title: str = "",
                 real: Tensor | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = points.detach().float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if real is not None:
        r = real.detach().float().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=2, c="#bbbbbb", label="real")
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="#1f77b4", alpha=0.6, label="generated")
    if spec.modes:
        modes = torch.tensor(spec.modes).numpy()
        ax.scatter(modes[:, 0], modes[:, 1], s=60, marker="x", c="#d62728", label="modes")
        span = float(abs(modes).max()) * 1.5 + 3 * (spec.mode_std or 0) + 0.5
        ax.set_xlim(-span, span)
        ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    legend = ax.legend(loc="upper right", fontsize=7)
    for handle in legend.legend_handles:  # same-sized legend markers, whatever the plot sizes
        handle.set_sizes([20])
    if title:
        ax.set_title(title, fontsize=9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_samples(samples: Tensor, spec: DataSpec, path: str | Path, title: str = "") -> None:
    """A scatter plot for points, an image grid for images."""
    if spec.kind == "points":
        save_scatter(samples, spec, path, title)
    else:
        save_image_grid(samples, path)
