"""Benchmark suites: TOML files that expand into cells (one training + evaluation each).

A suite is variants x datasets x seeds x sweep points under one budget, optionally split
into ``[[group]]`` blocks that each override the top-level settings::

    name = "modes"
    description = "mode collapse on the 2-D mixtures"
    variants = ["vanilla", "ns"]
    datasets = ["ring8", "grid25"]
    seeds = [0, 1, 2]
    steps = 3000             # generator updates: the equal budget of every cell
    eval_every = 250         # mode metrics over training (the coverage curves)
    metrics = ["modes"]      # registry metric names; omitted = evaluate_run's defaults
    num_samples = 2500       # samples per final evaluation (omitted = the metric's default)
    [set]                    # hyperparameter overrides for every cell (like --set)
    [data_options.digits]    # dataset options (like --data-opt)
    image_size = 8
    [[sweep]]                # each table is one point of a hyperparameter grid
    lr_d = 1e-4

A cell's key hashes everything that defines its result (not the group it came from), so
a changed budget makes new cells instead of silently reusing old results.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganlab.config import COMMON_HPARAMS
from ganlab.errors import GanlabError
from ganlab.registry import Registry

SUITES_ENV = "GANLAB_BENCHMARKS"

# Settings a group may override; everything else in a group table is a typo.
CELL_SETTINGS = {
    "variants": list, "datasets": list, "seeds": list, "steps": int, "log_every": int,
    "eval_every": int, "sample_every": int, "ckpt_every": int, "metrics": list,
    "num_samples": int, "eval_seed": int, "set": dict, "data_options": dict, "sweep": list,
    "variant_set": dict,
}
TOP_LEVEL_ONLY = {"name": str, "description": str, "group": list}
DEFAULTS: dict[str, Any] = {
    "seeds": [0], "log_every": 100, "eval_every": 0, "sample_every": 0, "ckpt_every": 0,
    "metrics": None, "num_samples": None, "eval_seed": 0, "set": {}, "data_options": {},
    "sweep": [{}], "variant_set": {},
}


@dataclass(frozen=True)
class Cell:
    """One training run plus its evaluation, fully specified."""

    variant: str
    dataset: str
    seed: int
    steps: int
    overrides: tuple[tuple[str, Any], ...] = ()
    data_options: tuple[tuple[str, Any], ...] = ()
    log_every: int = 100
    eval_every: int = 0
    sample_every: int = 0
    ckpt_every: int = 0
    metrics: tuple[str, ...] | None = None
    num_samples: int | None = None
    eval_seed: int = 0
    #: The sweep point's overrides, shown as the row label (e.g. ``lr_d=0.001``).
    label: str = ""
    group: str = field(default="", compare=False)

    def definition(self) -> dict[str, Any]:
        """Everything that determines the cell's result (the group is bookkeeping only)."""
        return {
            "variant": self.variant, "dataset": self.dataset, "seed": self.seed,
            "steps": self.steps, "overrides": dict(self.overrides),
            "data_options": dict(self.data_options), "log_every": self.log_every,
            "eval_every": self.eval_every, "metrics": list(self.metrics) if self.metrics else None,
            "num_samples": self.num_samples, "eval_seed": self.eval_seed,
        }

    @property
    def key(self) -> str:
        canonical = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def cell_id(self) -> str:
        """A readable, unique folder name: variant-dataset-sSEED-hash."""
        return f"{self.variant}-{self.dataset}-s{self.seed}-{self.key[:10]}"

    def override_text(self) -> dict[str, str]:
        """Overrides as ``--set`` text, so the core's parser types and checks them."""
        return {k: _as_text(v) for k, v in self.overrides}

    def data_option_text(self) -> dict[str, str]:
        return {k: _as_text(v) for k, v in self.data_options}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def sweep_label(point: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={_as_text(v)}" for k, v in sorted(point.items()))


@dataclass
class Suite:
    name: str
    description: str
    cells: list[Cell]
    source: str = ""

    def shard(self, index: int, count: int) -> list[Cell]:
        """Shard ``index`` of ``count`` (1-based): every count-th cell in suite order, so
        shards are disjoint, cover the suite, and need no coordination."""
        return [c for i, c in enumerate(self.cells) if i % count == index - 1]

    def check_names(self, registry: Registry) -> None:
        """Fail before any training if a variant, dataset, metric or --set key is unknown."""
        metric_names = set(registry.names("metric"))
        for cell in self.cells:
            variant = registry.variant(cell.variant)
            registry.dataset(cell.dataset)
            known = set(COMMON_HPARAMS) | set(variant.hparams)
            for key, _ in cell.overrides:
                if key not in known:
                    raise GanlabError(f"suite {self.name}: hyperparameter {key!r} is not known to "
                                      f"variant {cell.variant!r}")
            for metric in cell.metrics or ():
                if metric not in metric_names:
                    raise GanlabError(f"suite {self.name}: unknown metric {metric!r}; known metrics: "
                                      f"{', '.join(sorted(metric_names)) or 'none registered'}")


def parse_shard(text: str | None) -> tuple[int, int]:
    """``'2/4'`` -> (2, 4); shards are numbered 1..n."""
    if not text:
        return 1, 1
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise GanlabError(f"--shard {text!r}: expected i/n, e.g. 1/4") from None
    if not sep or n < 1 or not 1 <= i <= n:
        raise GanlabError(f"--shard {text!r}: expected i/n with 1 <= i <= n, e.g. 1/4")
    return i, n


# ---- finding and reading suite files -----------------------------------------------------------
def suite_dirs() -> list[Path]:
    """Where built-in suite names are looked up: $GANLAB_BENCHMARKS, then the source tree's
    benchmarks/ folder (next to the ganlab package)."""
    dirs = []
    if os.environ.get(SUITES_ENV):
        dirs.append(Path(os.environ[SUITES_ENV]))
    dirs.append(Path(__file__).resolve().parent.parent.parent / "benchmarks")
    return dirs


def builtin_suites() -> list[str]:
    names: set[str] = set()
    for folder in suite_dirs():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.toml"))
    return sorted(names)


def find_suite(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or os.sep in name_or_path:
        if not path.is_file():
            raise GanlabError(f"suite file {path} not found")
        return path
    for folder in suite_dirs():
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(builtin_suites()) or "none found"
    raise GanlabError(f"unknown suite {name_or_path!r}; built-in suites: {known} (or give a .toml path)")


def load_suite(name_or_path: str) -> Suite:
    path = find_suite(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GanlabError(f"suite {path} is not valid TOML: {exc}") from None
    return suite_from_dict(raw, source=str(path))


def suite_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> Suite:
    """Expand a suite table into its cells (in a fixed order: group, variant, dataset,
    sweep point, seed)."""
    where = f"suite {source}"
    _check_keys(raw, {**CELL_SETTINGS, **TOP_LEVEL_ONLY}, where)
    name = raw.get("name") or Path(source).stem
    groups = raw.get("group") or [{}]
    top = {k: v for k, v in raw.items() if k in CELL_SETTINGS}
    cells: list[Cell] = []
    seen: set[str] = set()
    for number, group in enumerate(groups, start=1):
        if not isinstance(group, Mapping):
            raise GanlabError(f"{where}: each [[group]] must be a table")
        _check_keys(group, {**CELL_SETTINGS, "name": str}, f"{where}, group {number}")
        settings = {**DEFAULTS, **top, **{k: v for k, v in group.items() if k != "name"}}
        group_name = str(group.get("name", f"group{number}" if len(groups) > 1 else ""))
        for cell in _expand(settings, group_name, f"{where}, group {group_name or number}"):
            if cell.key not in seen:  # the same cell in two groups runs once
                seen.add(cell.key)
                cells.append(cell)
    if not cells:
        raise GanlabError(f"{where}: no cells (give variants, datasets and seeds)")
    return Suite(name=str(name), description=str(raw.get("description", "")), cells=cells, source=source)


def _expand(settings: dict[str, Any], group: str, where: str) -> list[Cell]:
    for required in ("variants", "datasets", "steps"):
        if settings.get(required) in (None, [], ""):
            raise GanlabError(f"{where}: {required!r} is required")
    if settings["steps"] <= 0:
        raise GanlabError(f"{where}: steps must be positive, got {settings['steps']}")
    for key in ("log_every", "eval_every", "sample_every", "ckpt_every", "eval_seed"):
        if settings[key] < 0:
            raise GanlabError(f"{where}: {key} must not be negative")
    if settings["num_samples"] is not None and settings["num_samples"] <= 0:
        raise GanlabError(f"{where}: num_samples must be positive")
    for seed in settings["seeds"]:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise GanlabError(f"{where}: seeds must be non-negative integers, got {seed!r}")
    sweep = settings["sweep"] or [{}]
    if not all(isinstance(p, Mapping) for p in sweep):
        raise GanlabError(f"{where}: each [[sweep]] entry must be a table of overrides")
    variant_set = settings["variant_set"]
    if not all(isinstance(v, Mapping) for v in variant_set.values()):
        raise GanlabError(f"{where}: [variant_set.NAME] must be tables of overrides")
    data_options = settings["data_options"]
    metrics = tuple(settings["metrics"]) if settings["metrics"] else None
    cells = []
    for variant, dataset, point, seed in itertools.product(
            settings["variants"], settings["datasets"], sweep, settings["seeds"]):
        overrides = {**settings["set"], **variant_set.get(variant, {}), **point}
        options = data_options.get(dataset, {})
        if not isinstance(options, Mapping):
            raise GanlabError(f"{where}: [data_options.{dataset}] must be a table")
        cells.append(Cell(
            variant=str(variant), dataset=str(dataset), seed=seed, steps=int(settings["steps"]),
            overrides=tuple(sorted(overrides.items())), data_options=tuple(sorted(options.items())),
            log_every=settings["log_every"], eval_every=settings["eval_every"],
            sample_every=settings["sample_every"], ckpt_every=settings["ckpt_every"],
            metrics=metrics, num_samples=settings["num_samples"], eval_seed=settings["eval_seed"],
            label=sweep_label(point), group=group))
    return cells


def _check_keys(table: Mapping[str, Any], allowed: Mapping[str, type], where: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise GanlabError(f"{where}: unknown setting {key!r}; allowed: {', '.join(sorted(allowed))}")
        expected = allowed[key]
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if not ok:
            raise GanlabError(f"{where}: {key!r} must be a {expected.__name__}, got {value!r}")
