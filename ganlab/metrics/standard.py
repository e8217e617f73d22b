"""The built-in metrics, registered by :mod:`ganlab.builtins` exactly as a plugin registers its own.

Each ``compute(ctx)`` follows the convention of :mod:`ganlab.metrics.context`.
"""

from __future__ import annotations

from typing import Any

import torch

from ganlab.metrics.context import EvalContext, MetricNotApplicable
from ganlab.metrics.featurespace import (density_coverage, frechet_distance, inception_score,
                                         kernel_distance, precision_recall)
from ganlab.metrics.modes import categorical_mode_stats, mixture_mode_stats

THRESHOLD_STD = 3.0  # VEEGAN / PacGAN: a sample within 3 std of a mode is high quality
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # torch-fidelity's defaults (Binkowski et al. 2018)
IS_SPLITS = 10
PRC_K = 3  # Kynkaanniemi et al. 2019
DC_K = 5  # Naeem et al. 2020


def mixture_modes(ctx: EvalContext) -> dict[str, Any]:
    if ctx.kind != "points" or not ctx.data_spec.modes:
        raise MetricNotApplicable(f"dataset {ctx.dataset_name!r} is not a Gaussian mixture with known modes")
    stats = mixture_mode_stats(ctx.samples, ctx.data_spec, THRESHOLD_STD)
    return {"modes_covered": stats["modes_covered"], "high_quality": stats["high_quality"],
            "reverse_kl": stats["reverse_kl"],
            "protocol": {"threshold_std": THRESHOLD_STD, "num_modes": len(ctx.data_spec.modes)},
            "details": {"mode_counts": stats["mode_counts"]}}


def _classifier_protocol(ctx: EvalContext, trained, **extra: Any) -> dict[str, Any]:
    return {"feature_extractor": "ganlab-domain", "feature_extractor_sha256": trained.sha256, **extra}


def class_modes(ctx: EvalContext) -> dict[str, Any]:
    """Classes covered and KL(generated class histogram || real class histogram)."""
    source = ctx.classifier_source()
    if source is None or source[0] != ctx.dataset_name:
        raise MetricNotApplicable(f"dataset {ctx.dataset_name!r} has no class labels of its own")
    trained = ctx.classifier()
    num_classes = int(trained.meta["num_classes"])
    predicted = trained.predict(ctx.samples)[:, 0]
    _, real_labels = ctx.reference()
    real_hist = torch.bincount(real_labels, minlength=num_classes).double()
    stats = categorical_mode_stats(predicted, num_classes, real_hist)
    return {"classes_covered": stats["covered"], "class_kl": stats["kl"],
            "protocol": _classifier_protocol(ctx, trained, num_real=int(real_labels.numel()),
                                             num_modes=num_classes, min_count=1),
            "details": {"class_counts": stats["counts"], "real_class_counts": [int(c) for c in real_hist]}}


def stacked_modes(ctx: EvalContext) -> dict[str, Any]:
    """Stacked MNIST: each channel classified as a digit; modes covered of 10^k, KL vs uniform."""
    source = ctx.classifier_source()
    if source is None or source[0] == ctx.dataset_name:
        raise MetricNotApplicable(f"dataset {ctx.dataset_name!r} is not a stacked-digit dataset")
    trained = ctx.classifier()
    num_classes = int(trained.meta["num_classes"])
    digits = trained.predict(ctx.samples)  # N x channel groups
    groups = digits.shape[1]
    weights = num_classes ** torch.arange(groups - 1, -1, -1)
    modes = (digits * weights).sum(dim=1)
    stats = categorical_mode_stats(modes, num_classes ** groups)
    return {"modes_covered": stats["covered"], "reverse_kl": stats["kl"],
            "protocol": _classifier_protocol(ctx, trained, num_modes=num_classes ** groups, min_count=1,
                                             reference="uniform")}


def fid(ctx: EvalContext) -> dict[str, Any]:
    features = ctx.features()
    return {"fid": frechet_distance(*features.pair("fid")), "protocol": features.protocol}


def kid(ctx: EvalContext) -> dict[str, Any]:
    features = ctx.features()
    mean, std, size = kernel_distance(*features.pair("kid"), KID_SUBSETS, KID_SUBSET_SIZE, ctx.seed)
    return {"kid": mean, "kid_std": std,
            "protocol": {**features.protocol, "kid_subsets": KID_SUBSETS, "kid_subset_size": size,
                         "kid_kernel": "poly3"}}


def inception_score_metric(ctx: EvalContext) -> dict[str, Any]:
    features = ctx.features()
    if features.channel_groups > 1:
        raise MetricNotApplicable("the Inception Score needs one class distribution per image, "
                                  "not one per channel")
    logits, _ = features.pair("isc")
    mean, std = inception_score(logits, IS_SPLITS, ctx.seed)
    return {"is": mean, "is_std": std,
            "protocol": {**features.protocol, "num_real": None, "is_splits": IS_SPLITS}}


def precision_recall_metric(ctx: EvalContext) -> dict[str, Any]:
    features = ctx.features()
    precision, recall = precision_recall(*features.pair("prc"), k=PRC_K)
    return {"precision": precision, "recall": recall, "protocol": {**features.protocol, "k": PRC_K}}


def density_coverage_metric(ctx: EvalContext) -> dict[str, Any]:
    features = ctx.features()
    values = density_coverage(*features.pair("prc"), k=DC_K)
    return {**values, "protocol": {**features.protocol, "k": DC_K}}


def register(registry) -> None:
    add = registry.add_metric
    add("modes", mixture_modes, "2-D mixtures: modes covered, high-quality share, reverse KL "
        "(VEEGAN/PacGAN, 3 std)", kinds=("points",), cheap=True)
    add("classes", class_modes, "labelled images: classes covered and KL of the predicted-class "
        "histogram vs the real one (domain classifier)", kinds=("image",), cheap=True)
    add("stacked_modes", stacked_modes, "Stacked MNIST: modes covered (of 1,000) and KL vs uniform",
        kinds=("image",), cheap=True)
    add("fid", fid, "Frechet distance of feature Gaussians (torch-fidelity)", kinds=("image",))
    add("kid", kid, "kernel (MMD) distance of features, 100 subsets (torch-fidelity)", kinds=("image",))
    add("is", inception_score_metric, "Inception Score of the extractor's class logits (torch-fidelity)",
        kinds=("image",))
    add("precision_recall", precision_recall_metric, "improved precision and recall, k=3 "
        "(torch-fidelity)", kinds=("image",))
    add("density_coverage", density_coverage_metric, "density and coverage, k=5 (Naeem et al. 2020)",
        kinds=("points", "image"))
