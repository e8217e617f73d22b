"""What a metric sees, and how it reports: :class:`EvalContext` and the output convention.

A metric (built-in or from a plugin) is registered with::

    registry.add_metric("my_metric", compute, "one line", kinds=("image",), cheap=False)

and ``compute(ctx: EvalContext)`` returns a dict: each number under its own name
(``{"fid": 12.3}``), plus optionally ``"protocol"`` (a dict of the settings that made the
numbers, merged over :meth:`EvalContext.protocol`) and ``"details"`` (any JSON data, e.g. a
histogram, stored beside the results). A metric that does not fit the data raises
:class:`MetricNotApplicable`: it is skipped when the user did not ask for it by name.

The context gives generated samples (``ctx.samples``, CPU, images in [-1, 1]), the real
reference set (``ctx.reference()``), the dataset's domain classifier
(``ctx.classifier()``) and features of both sets in one feature space
(``ctx.features()``), each computed once and shared by every metric of one evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ganlab.errors import GanlabError
from ganlab.interfaces import DataSpec

#: The real reference set is drawn with this fixed seed, whatever the eval seed: every
#: evaluation of one dataset compares against the same real samples (and cache entry).
REFERENCE_SEED = 0
#: Largest real reference set drawn by default from a finite dataset.
MAX_DEFAULT_REAL = 10_000
IDENTITY = "identity"  # the "feature extractor" of 2-D points: raw coordinates


class MetricNotApplicable(GanlabError):
    """This metric does not apply to this data (no modes, no labels, ...)."""


@dataclass
class FeatureSet:
    """Features of the generated and the real reference samples, by layer name."""

    extractor: str
    sha256: str | None
    generated: dict[str, Tensor]
    real: dict[str, Tensor]
    layers: dict[str, str]  # metric kind (fid, kid, prc, isc) -> layer name
    channel_groups: int = 1
    cache_hit: bool = False

    def pair(self, metric: str) -> tuple[Tensor, Tensor]:
        """(generated, real) features in the layer ``metric`` (fid, kid, prc, isc) reads."""
        layer = self.layers.get(metric) or self.layers.get("fid")
        if layer is None:
            raise MetricNotApplicable(f"feature extractor {self.extractor!r} has no layer for {metric}")
        return self.generated[layer], self.real[layer]

    @property
    def protocol(self) -> dict[str, Any]:
        real = next(iter(self.real.values()))
        return {"feature_extractor": self.extractor, "feature_extractor_sha256": self.sha256,
                "num_real": int(real.shape[0])}


class EvalContext:
    def __init__(self, registry, dataset_name: str, data_options: dict[str, Any], data_spec: DataSpec,
                 samples: Tensor, *, seed: int = 0, num_real: int | None = None,
                 feature_extractor: str | None = None, inception_weights: str | None = None,
                 device: str = "cpu", dataset: Any = None, classifier_seed: int = 0,
                 checkpoint_step: int | None = None, log: Callable[[str], None] | None = None):
        self.registry = registry
        self.dataset_name = dataset_name
        self.data_options = dict(data_options)
        self.data_spec = data_spec
        self.samples = samples.detach().cpu()
        self.seed = seed
        self.requested_real = num_real
        self.requested_extractor = feature_extractor
        self.inception_weights = inception_weights
        self.device = device
        self.classifier_seed = classifier_seed
        self.checkpoint_step = checkpoint_step
        self.log = log or (lambda message: None)
        self._dataset = dataset
        self._memo: dict[str, Any] = {}
        #: Facts about this evaluation that are not protocol (timings, cache hits, accuracy).
        self.info: dict[str, Any] = {}

    # ---- basics ----------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.data_spec.kind

    @property
    def num_generated(self) -> int:
        return int(self.samples.shape[0])

    def protocol(self, **extra: Any) -> dict[str, Any]:
        """The settings every number shares; metrics add their own (and override num_real,
        feature_extractor when they use real data or features)."""
        options = {k: v for k, v in self.data_options.items() if k != "data_dir"}  # paths differ per machine
        base = {"dataset": self.dataset_name, "data_options": options,
                "real_split": self.data_options.get("split"), "num_generated": self.num_generated,
                "num_real": None, "seed": self.seed, "feature_extractor": None,
                "feature_extractor_sha256": None, "checkpoint_step": self.checkpoint_step,
                "versions": protocol_versions()}
        base.update(extra)
        return base

    # ---- real data ---------------------------------------------------------------------------
    def real_data(self):
        if self._dataset is None:
            from ganlab.train.setup import load_dataset

            self._dataset, _ = load_dataset(self.registry, self.dataset_name, self.data_options)
        return self._dataset

    def reference_size(self) -> int:
        size = len(self.real_data())
        if self.requested_real is not None:
            if self.requested_real <= 0:
                raise GanlabError(f"the number of real samples must be positive, got {self.requested_real}")
            return min(self.requested_real, size) if size else self.requested_real
        if size:
            return min(size, MAX_DEFAULT_REAL)
        return self.num_generated  # unbounded data (mixtures, Stacked MNIST): as many as generated

    def reference(self) -> tuple[Tensor, Tensor | None]:
        """The real reference samples (and labels), a fixed draw with :data:`REFERENCE_SEED`:
        without replacement from an in-memory set, else from the dataset's own sampler."""
        if "reference" not in self._memo:
            data, n = self.real_data(), self.reference_size()
            rng = torch.Generator().manual_seed(REFERENCE_SEED)
            if len(data) and hasattr(data, "images"):
                images, labels = data.images, data.labels  # finite sets are TensorImages
                idx = torch.randperm(len(data), generator=rng)[:n].to(images.device)
                real = images[idx].cpu()
                labels = labels[idx].cpu() if labels is not None else None
            else:
                real, labels = _draw(data, n, rng)
            self._memo["reference"] = (real, labels)
        return self._memo["reference"]

    # ---- the domain classifier -------------------------------------------------------------
    def classifier_source(self) -> tuple[str, dict[str, Any]] | None:
        """(dataset, options) a domain classifier for this data trains on, or None."""
        if self.kind != "image":
            return None
        source = getattr(self.real_data(), "classifier_source", None)
        if source is not None:
            return source[0], dict(source[1])
        if self.data_spec.num_classes or getattr(self.real_data(), "labels", None) is not None:
            return self.dataset_name, self.data_options
        return None

    def classifier(self):
        """The trained (cached) domain classifier; see :mod:`ganlab.metrics.classifier`."""
        if "classifier" not in self._memo:
            from ganlab.metrics.classifier import domain_classifier

            source = self.classifier_source()
            if source is None:
                raise MetricNotApplicable(f"dataset {self.dataset_name!r} has no labels to train a "
                                          f"domain classifier on")
            start = time.perf_counter()
            trained = domain_classifier(self.registry, source[0], source[1], self.classifier_seed, self.log)
            self.info["classifier"] = {**trained.describe(), "load_seconds": round(time.perf_counter() - start, 3)}
            self._memo["classifier"] = trained
        return self._memo["classifier"]

    # ---- features ----------------------------------------------------------------------------
    def extractor_name(self) -> str:
        from ganlab.metrics.extractors import INCEPTION, canonical_name, check_extractor

        if self.kind == "points":
            return IDENTITY
        if self.requested_extractor:
            name = canonical_name(self.requested_extractor)
            check_extractor(name)
            return name
        return "ganlab-domain" if self.classifier_source() is not None else INCEPTION

    def features(self) -> FeatureSet:
        """Generated and real features in one space, the real ones cached on disk."""
        if "features" not in self._memo:
            self._memo["features"] = self._compute_features()
        return self._memo["features"]

    def _compute_features(self) -> FeatureSet:
        from ganlab.metrics import extractors
        from ganlab.metrics.cache import cache_dir, key_hash, load_entry, save_atomic

        name = self.extractor_name()
        real, _ = self.reference()
        if name == IDENTITY:
            flat = {"points": self.samples.flatten(1).float()}
            return FeatureSet(IDENTITY, None, flat, {"points": real.flatten(1).float()},
                              {m: "points" for m in ("fid", "kid", "prc")})
        start = time.perf_counter()
        groups = 1
        if name == "ganlab-domain":
            trained = self.classifier()
            weights, sha = trained.path, trained.sha256
            groups = self.data_spec.shape[0] // int(trained.meta["in_channels"])
        elif name == extractors.INCEPTION:
            weights = extractors.inception_weights(self.inception_weights)
            sha = extractors.weights_sha256(weights)
        else:  # another registered extractor: its own default weights
            weights, sha = None, None
        layers = extractors.default_layers(name)
        extractor = extractors.Extractor(name, weights, layers.values(), self.device)
        # The key covers everything the real features depend on, unlike torch-fidelity's
        # own cache, which trusts the name alone.
        key = {"dataset": self.dataset_name, "options": self.data_options, "num_real": len(real),
               "reference_seed": REFERENCE_SEED, "extractor": name, "weights_sha256": sha,
               "layers": sorted(set(layers.values())), "format": 1}
        path = cache_dir() / "real_features" / f"{self.dataset_name}-{name}-{len(real)}-{key_hash(key)}.pt"
        cached = load_entry(path) if sha is not None else None
        hit = isinstance(cached, dict) and set(cached) == set(extractor.layers)
        if hit:
            real_features = cached
        else:
            self.log(f"extracting {name} features of {len(real)} real samples (cached for next time)")
            real_features = extractor(real)
            if sha is not None:  # without a weights hash the entry could go stale: never cache it
                save_atomic(real_features, path)
        generated = extractor(self.samples)
        self.info["features"] = {"extractor": name, "real_cache": "hit" if hit else "miss",
                                 "cache_file": str(path) if sha is not None else None,
                                 "seconds": round(time.perf_counter() - start, 3)}
        return FeatureSet(name, sha, generated, real_features, layers, groups, hit)


def protocol_versions() -> dict[str, str]:
    """The versions that can change a number: ganlab (classifier recipe, metric code),
    torch and torch-fidelity (the formulas and extractors)."""
    import torch_fidelity

    from ganlab import __version__

    return {"ganlab": __version__, "torch": torch.__version__, "torch_fidelity": torch_fidelity.__version__}


def _draw(data, n: int, rng: torch.Generator) -> tuple[Tensor, Tensor | None]:
    """n samples from an unbounded dataset with a CPU generator, in chunks."""
    chunks, labels = [], []
    for start in range(0, n, 4096):
        x, y = data.batch(min(4096, n - start), rng)
        chunks.append(x.cpu())
        if y is not None:
            labels.append(y.cpu())
    return torch.cat(chunks), (torch.cat(labels) if labels else None)
