"""``ganlab sample RUN``: pictures from a trained generator."""

from __future__ import annotations

from pathlib import Path

import typer

from ganlab.cli import app
from ganlab.cli.console import out_console
from ganlab.errors import GanlabError
from ganlab.plugins import get_registry
from ganlab.train.api import generate, load_generator
from ganlab.train.visuals import save_samples


@app.command("sample")
def sample_command(
    run: Path = typer.Argument(..., help="Run directory."),
    num: int = typer.Option(64, "-n", "--num", help="Number of samples."),
    output: Path = typer.Option(Path("samples.png"), "-o", "--output", help="PNG file to write."),
    seed: int = typer.Option(0, "--seed", help="Seed of the latent noise."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the raw generator even if an EMA copy exists."),
) -> None:
    """Draw N samples from a run's generator into a PNG (grid or scatter)."""
    if num <= 0:
        raise GanlabError(f"-n must be positive, got {num}")
    if output.suffix.lower() != ".png":
        raise GanlabError(f"-o {output}: the output must be a .png file")
    loaded = load_generator(get_registry(), run, use_ema=not no_ema)
    samples, _ = generate(loaded.generator, num, seed)
    save_samples(samples, loaded.data_spec, output,
                 f"{loaded.config.variant} on {loaded.config.dataset}, step {loaded.step}")
    out_console.print(f"wrote {num} samples from step {loaded.step} to {output}", markup=False)
