"""``ganlab eval RUN``: metrics of a run's checkpoint into RUN/eval.json, and a table."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ganlab.cli import app
from ganlab.cli.console import err_console, out_console
from ganlab.plugins import get_registry


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


@app.command("eval")
def eval_command(
    run: Path = typer.Argument(..., help="Run directory."),
    metrics: str = typer.Option(None, "--metrics", "-m",
                                help="Comma-separated metric names [default: all that apply; see `ganlab list`]."),
    num_samples: int = typer.Option(None, "--num-samples", "-n",
                                    help="Generated samples [default: 2500 for 2-D points, 5000 for images]."),
    num_real: int = typer.Option(None, "--num-real",
                                 help="Real reference samples [default: the whole set up to 10,000]."),
    feature_extractor: str = typer.Option(None, "--feature-extractor",
                                          help="domain (ganlab's classifier), inception, or any torch-fidelity "
                                               "extractor name [default: domain on labelled data, "
                                               "else inception]."),
    inception_weights: Path = typer.Option(None, "--inception-weights",
                                           help="Local Inception-v3 weights file (torch-fidelity's .pth); implies "
                                                "--feature-extractor inception."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated samples."),
    device: str = typer.Option("cpu", "--device", help="Torch device, e.g. cpu or cuda."),
    as_json: bool = typer.Option(False, "--json", help="Print eval.json to stdout instead of a table."),
) -> None:
    """Evaluate RUN's generator: FID/KID/IS/precision-recall, density/coverage, mode metrics."""
    from ganlab.metrics.evaluate import evaluate_run

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics is not None else None
    result = evaluate_run(get_registry(), run, metrics=names, num_samples=num_samples,
                          feature_extractor=feature_extractor, inception_weights=inception_weights,
                          seed=seed, device=device, num_real=num_real,
                          log=lambda message: err_console.print(message, markup=False, soft_wrap=True))
    if as_json:  # plain text, never re-wrapped by rich: long paths must stay valid JSON
        typer.echo(json.dumps(result, indent=2, sort_keys=True, allow_nan=True))
        return
    table = Table(title=f"{result['variant']} on {result['dataset']}, step {result['checkpoint_step']}")
    for column in ("metric", "value", "features (sha256)", "generated", "real", "seed"):
        table.add_column(column, justify="right" if column in ("value", "generated", "real", "seed") else "left")
    for row in result["results"]:
        p = row["protocol"]
        extractor = f"{p['feature_extractor']} ({_short(p['feature_extractor_sha256'])})" \
            if p.get("feature_extractor") else "-"
        table.add_row(row["metric"], f"{row['value']:.4g}", extractor, str(p["num_generated"]),
                      str(p["num_real"]) if p.get("num_real") is not None else "-", str(p["seed"]))
    out_console.print(table)
    if "classifier" in result:
        c = result["classifier"]
        out_console.print(f"domain classifier: {c['accuracy']:.1%} held-out accuracy on {c['dataset']} "
                          f"({c['held_out']}, {c['n_test']} images)", markup=False)
    for name, reason in result["skipped"].items():
        out_console.print(f"skipped {name}: {reason}", markup=False)
    out_console.print(f"wrote {Path(result['run']) / 'eval.json'} in {result['timings_s']['total']:.1f} s",
                      markup=False)
