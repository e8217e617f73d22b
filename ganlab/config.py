"""Hyperparameters: the common defaults, how layers of defaults resolve, ``--set`` parsing.

Resolution order (later wins): :data:`COMMON_HPARAMS` < the dataset's suggestions
(e.g. batch 512 on 2-D mixtures) < the variant's own defaults (its paper's) < ``--set``.
A key that is in none of the first three is an error, so typos never pass silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ganlab.errors import GanlabError, UnknownNameError
from ganlab.interfaces import DataSpec, VariantSpec

# name: (default, one-line meaning). Commented defaults, nanoGPT-style.
COMMON_HPARAMS: dict[str, tuple[Any, str]] = {
    "batch_size": (64, "real samples per D update"),
    "lr_g": (2e-4, "generator learning rate (set lr_g != lr_d for TTUR)"),
    "lr_d": (2e-4, "discriminator learning rate"),
    "beta1": (0.5, "Adam beta1 (DCGAN)"),
    "beta2": (0.999, "Adam beta2"),
    "optimizer": ("adam", "adam, rmsprop or sgd"),
    "n_critic": (1, "D updates per G update"),
    "fake_per_real": (1, "generated samples shown to D per real one in the D phase"),
    "latent_dim": (64, "size of the noise vector z"),
    "hidden": (128, "MLP width (2-D data)"),
    "depth": (2, "MLP hidden layers (2-D data)"),
    "base_channels": (32, "CNN width (images)"),
    "d_norm": ("batch", "D normalisation for CNNs: batch, layer or none"),
    "spectral_norm": (False, "spectral normalisation on every D layer"),
    "mbstd_group": (0, "minibatch-std group size in D (0 = off)"),
    # No common `pack`: only the pacgan variant packs D's inputs (its objective does), so
    # `--set pack=2` on another variant is an unknown key, not a shape error mid-training.
    "conditional": (False, "class-conditional G and projection D on labelled data"),
    "ema": (0.0, "EMA decay of generator weights for sampling/eval (0 = off, e.g. 0.999)"),
    "diffaugment": ("", "DiffAugment policy for images: comma list of color,translation,cutout"),
}

_POSITIVE = {"batch_size", "lr_g", "lr_d", "n_critic", "fake_per_real", "latent_dim", "hidden",
             "depth", "base_channels", "pack"}


def common_defaults() -> dict[str, Any]:
    return {k: v for k, (v, _) in COMMON_HPARAMS.items()}


def parse_value(text: str, like: Any, key: str, option: str = "--set") -> Any:
    """Parse ``text`` to the type of the default ``like``; a clear error otherwise."""
    try:
        if isinstance(like, bool):
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(like, int):
            try:
                return int(text)  # exact, even beyond 2**53
            except ValueError:
                as_float = float(text)  # "1e3" is a fine way to write 1000
            if not as_float.is_integer():  # also rejects inf and nan
                raise ValueError
            return int(as_float)
        if isinstance(like, float):
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
        if isinstance(like, (list, dict)):
            value = json.loads(text)
            if not isinstance(value, type(like)):
                raise ValueError
            return value
        return text
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        kind = "true/false" if isinstance(like, bool) else type(like).__name__
        raise GanlabError(f"{option} {key}={_shorten(text)!r}: expected {kind}") from None


def coerce_value(value: Any, like: Any, key: str, option: str = "--set") -> Any:
    """An override given as text is parsed; a typed one (from Python) must fit the default's type."""
    if isinstance(value, str):
        return parse_value(value, like, key, option)
    if like is None or isinstance(like, str):
        ok = like is None  # a None default takes anything; a str default only text (above)
    elif isinstance(like, bool):
        ok = isinstance(value, bool)
    elif isinstance(like, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(like, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(like))
    if not ok:
        kind = "true/false" if isinstance(like, bool) else type(like).__name__
        raise GanlabError(f"{option} {key}={_shorten(repr(value))}: expected {kind}")
    return value


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def parse_assignments(items: Iterable[str], option: str = "--set") -> dict[str, str]:
    """``['a=1', 'b=x']`` -> ``{'a': '1', 'b': 'x'}``; values stay text until typed."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise GanlabError(f"{option} {item!r}: expected key=value")
        out[key] = value
    return out


def resolve_hparams(variant: VariantSpec, data: DataSpec, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The final hyperparameters for one run (``overrides`` may hold text or typed values)."""
    resolved = common_defaults()
    resolved.update(data.suggested_hparams)
    resolved.update(variant.hparams)
    for key, value in overrides.items():
        if key not in resolved:
            raise UnknownNameError("hyperparameter", key, resolved)
        resolved[key] = coerce_value(value, resolved[key], key)
    validate_hparams(resolved)
    return resolved


# Sizes beyond this overflow torch's index types long before they could fit in memory.
_MAX_SIZE = 2**31 - 1


def validate_hparams(hp: Mapping[str, Any]) -> None:
    for key in sorted(_POSITIVE & hp.keys()):
        if not hp[key] > 0:
            raise GanlabError(f"hyperparameter {key} must be positive, got {hp[key]}")
        if isinstance(hp[key], int) and hp[key] > _MAX_SIZE:
            raise GanlabError(f"hyperparameter {key}={hp[key]} is too large (at most {_MAX_SIZE})")
    if "pack" in hp and "batch_size" in hp and hp["batch_size"] % hp["pack"]:
        raise GanlabError(f"hyperparameter batch_size ({hp['batch_size']}) must be a multiple of "
                          f"pack ({hp['pack']}): D sees the samples in packs")
    if not 0.0 <= float(hp.get("ema", 0.0)) < 1.0:
        raise GanlabError(f"hyperparameter ema must be in [0, 1), got {hp['ema']}")
    for key in ("beta1", "beta2"):
        if key in hp and not 0.0 <= float(hp[key]) < 1.0:
            raise GanlabError(f"hyperparameter {key} must be in [0, 1), got {hp[key]}")


def resolve_data_options(spec_options: Mapping[str, Any], overrides: Mapping[str, str],
                         dataset: str) -> dict[str, Any]:
    """Typed ``--data-opt`` values for a dataset, checked against the options it declares."""
    resolved = dict(spec_options)
    for key, value in overrides.items():
        if key not in resolved:
            raise UnknownNameError(f"option of dataset {dataset}", key, resolved)
        resolved[key] = parse_value(value, resolved[key], key, "--data-opt")
    return resolved
