"""``ganlab list``: variants, datasets, metrics and plugins, with where each came from."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from ganlab.cli import app
from ganlab.cli.console import out_console
from ganlab.plugins import get_plugin_set


@app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
    """List registered variants, datasets and metrics, and every plugin (broken ones too)."""
    pset = get_plugin_set()
    reg = pset.registry

    def source(plugin: str) -> str:
        info = pset.plugins.get(plugin)
        return f"{plugin} ({info.distribution} {info.version})" if info else plugin

    listing = {
        "variants": [{"name": v.name, "description": v.description, "citation": v.citation,
                      "plugin": source(v.plugin)} for v in reg.variants()],
        "datasets": [{"name": d.name, "kind": d.kind, "description": d.description,
                      "options": d.options, "plugin": source(d.plugin)} for d in reg.datasets()],
        "metrics": [{"name": m.name, "kinds": list(m.kinds), "description": m.description,
                     "plugin": source(m.plugin)} for m in reg.metrics()],
        "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version,
                     "status": p.status, "error": p.error}
                    for p in pset.plugins.values()],
    }
    if as_json:
        out_console.print_json(json.dumps(listing))
        return
    variants = Table(title="Variants", show_lines=False)
    for col in ("name", "description", "citation", "plugin"):
        variants.add_column(col, overflow="fold")
    for v in listing["variants"]:
        variants.add_row(v["name"], v["description"], v["citation"], v["plugin"])
    datasets = Table(title="Datasets")
    for col in ("name", "kind", "description", "plugin"):
        datasets.add_column(col, overflow="fold")
    for d in listing["datasets"]:
        datasets.add_row(d["name"], d["kind"], d["description"], d["plugin"])
    out_console.print(variants)
    out_console.print(datasets)
    if listing["metrics"]:
        metrics = Table(title="Metrics")
        for col in ("name", "kinds", "description", "plugin"):
            metrics.add_column(col, overflow="fold")
        for m in listing["metrics"]:
            metrics.add_row(m["name"], ",".join(m["kinds"]), m["description"], m["plugin"])
        out_console.print(metrics)
    plugins = Table(title="Plugins")
    for col in ("name", "distribution", "status", "error"):
        plugins.add_column(col, overflow="fold")
    for p in listing["plugins"]:
        plugins.add_row(p["name"], f"{p['distribution']} {p['version']}",
                        {"broken": "[red]broken[/red]", "disabled": "[yellow]disabled[/yellow]"}.get(
                            p["status"], p["status"]), p["error"])
    out_console.print(plugins)
