"""Evaluate a run's checkpoint with registered metrics; write ``RUN/eval.json``.

eval.json (the shared contract)::

    {"run", "variant", "dataset", "checkpoint_step", "seed", "versions",
     "results": [{"metric": "fid", "value": 3.2, "protocol": {...}}, ...],
     "skipped": {metric: reason}, "details": {metric: {...}}, "timings_s": {...},
     "classifier": {... held-out accuracy ...}, "features": {... real-feature cache ...}}

Every protocol holds: dataset, data_options, real_split, num_generated, num_real, seed,
feature_extractor and its weights' feature_extractor_sha256, checkpoint_step, versions
(ganlab, torch, torch_fidelity), plus the metric's own settings (threshold_std, k, ...).
Two results are comparable only if their ``metric`` and ``protocol`` are equal. The file
is replaced as a whole on each evaluation (written atomically).
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from ganlab.errors import GanlabError
from ganlab.metrics.context import EvalContext, MetricNotApplicable
from ganlab.registry import MetricSpec, Registry

DEFAULT_SAMPLES = {"points": 2500, "image": 5000}  # points: the VEEGAN/PacGAN protocol


def library_versions() -> dict[str, str]:
    import numpy
    import scipy
    import sklearn
    import torch_fidelity
    import torchvision

    from ganlab import __version__

    return {"ganlab": __version__, "torch": torch.__version__, "torch_fidelity": torch_fidelity.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "sklearn": sklearn.__version__}


def select_metrics(registry: Registry, names: Iterable[str] | None, kind: str) -> tuple[list[MetricSpec], bool]:
    """The metrics to run and whether the user named them (named ones must apply)."""
    if names is None:
        return [m for m in registry.metrics() if kind in m.kinds], False
    chosen = []
    for name in names:
        spec = registry.metric(name)  # unknown names: one line listing the known ones
        if kind not in spec.kinds:
            raise GanlabError(f"metric {name!r} applies to {'/'.join(spec.kinds)} data, not {kind}")
        if spec not in chosen:
            chosen.append(spec)
    if not chosen:
        raise GanlabError("--metrics is empty; name at least one metric (see `ganlab list`)")
    return chosen, True


def split_output(spec: MetricSpec, output: Any) -> tuple[dict[str, float], dict[str, Any], Any]:
    """(numbers, protocol extras, details) from a metric's returned dict, checked."""
    if not isinstance(output, dict):
        raise GanlabError(f"metric {spec.name!r} (plugin {spec.plugin!r}) returned "
                          f"{type(output).__name__}, not a dict", exit_code=1)
    values = {k: v for k, v in output.items() if k not in ("protocol", "details")}
    protocol = output.get("protocol") or {}
    if not isinstance(protocol, dict):
        raise GanlabError(f"metric {spec.name!r}: 'protocol' must be a dict", exit_code=1)
    numbers_out = {}
    for key, value in values.items():
        if torch.is_tensor(value) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise GanlabError(f"metric {spec.name!r} returned a non-number for {key!r}: {value!r}",
                              exit_code=1)
        numbers_out[key] = float(value)
    if not numbers_out:
        raise GanlabError(f"metric {spec.name!r} returned no numbers", exit_code=1)
    return numbers_out, protocol, output.get("details")


def run_metrics(ctx: EvalContext, specs: list[MetricSpec], explicit: bool) -> dict[str, Any]:
    """Compute each metric; a metric that does not apply is skipped unless it was asked for."""
    results, skipped, details, timings = [], {}, {}, {}
    for spec in specs:
        start = time.perf_counter()
        try:
            output = spec.compute(ctx)
        except MetricNotApplicable as exc:
            if explicit:
                raise GanlabError(f"metric {spec.name!r} does not apply: {exc}") from None
            skipped[spec.name] = str(exc)
            continue
        except GanlabError:
            raise
        except Exception as exc:  # a plugin's bug: name the metric, keep it one line
            raise GanlabError(f"metric {spec.name!r} (plugin {spec.plugin!r}) failed: "
                              f"{type(exc).__name__}: {exc}", exit_code=1) from exc
        values, extra, detail = split_output(spec, output)
        protocol = ctx.protocol(**extra)
        results.extend({"metric": key, "value": value, "protocol": protocol} for key, value in values.items())
        if detail is not None:
            details[spec.name] = detail
        timings[spec.name] = round(time.perf_counter() - start, 3)
    return {"results": results, "skipped": skipped, "details": details, "timings_s": timings}


def evaluate_run(registry: Registry, run_path: str | Path, metrics: Iterable[str] | None = None,
                 num_samples: int | None = None, feature_extractor: str | None = None,
                 inception_weights: str | Path | None = None, seed: int = 0, device: str = "cpu",
                 num_real: int | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate the run's checkpoint (its EMA generator when kept); writes and returns eval.json."""
    from ganlab.train.api import generate, load_generator
    from ganlab.train.rundir import RunDir, write_json_atomic

    started = time.perf_counter()
    run = RunDir(run_path)
    if not run.is_run():
        raise GanlabError(f"{run.path} is not a ganlab run (no config.json)")
    if num_samples is not None and num_samples <= 0:
        raise GanlabError(f"--num-samples must be positive, got {num_samples}")
    if inception_weights and not feature_extractor:
        feature_extractor = "inception"  # a weights file says which extractor is wanted
    if feature_extractor:
        from ganlab.metrics.extractors import canonical_name, check_extractor

        check_extractor(canonical_name(feature_extractor))  # fail before any work
    loaded = load_generator(registry, run.path, device=device)
    spec = loaded.data_spec
    if feature_extractor and spec.kind == "points":
        raise GanlabError("--feature-extractor/--inception-weights apply to images; 2-D points are "
                          "compared in their own coordinates")
    specs, explicit = select_metrics(registry, metrics, spec.kind)
    n = num_samples or DEFAULT_SAMPLES[spec.kind]
    t_gen = time.perf_counter()
    samples, _ = generate(loaded.generator, n, seed, device=device)
    ctx = EvalContext(registry, loaded.config.dataset, loaded.config.data_options, spec, samples,
                      seed=seed, num_real=num_real, feature_extractor=feature_extractor,
                      inception_weights=str(inception_weights) if inception_weights else None,
                      device=device, checkpoint_step=loaded.step, log=log)
    generate_s = time.perf_counter() - t_gen
    outcome = run_metrics(ctx, specs, explicit)
    outcome["timings_s"] = {"generate": round(generate_s, 3), **outcome["timings_s"],
                            "total": round(time.perf_counter() - started, 3)}
    payload = {"run": str(run.path), "variant": loaded.config.variant, "dataset": loaded.config.dataset,
               "checkpoint_step": loaded.step, "seed": seed, "versions": library_versions(),
               **outcome, **ctx.info}
    write_json_atomic(run.eval_path, payload)
    return payload

