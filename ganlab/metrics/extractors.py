"""Feature extraction through torch-fidelity's feature-extractor registry.

Names: ``ganlab-domain`` (ganlab's classifier, see :mod:`ganlab.metrics.classifier`),
``inception-v3-compat`` (torch-fidelity's Inception-v3, the standard for FID), or any other
name registered with ``torch_fidelity.register_feature_extractor`` (a plugin may add one).

Inception's weights: ``--inception-weights PATH``, else torch hub's cached copy, else a
download when the machine is online; offline with neither, a one-line error says how to
get the file. Every extractor's weights are identified by the sha256 of their file.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ganlab.data.base import unit_to_uint8
from ganlab.errors import GanlabError
from ganlab.metrics.cache import file_sha256

INCEPTION = "inception-v3-compat"
ALIASES = {"domain": "ganlab-domain", "classifier": "ganlab-domain", "inception": INCEPTION,
           "inception-v3": INCEPTION}
OFFLINE_ENV = "GANLAB_OFFLINE"  # "1": never try the network (tests, air-gapped machines)


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def registered_extractors() -> list[str]:
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    import ganlab.metrics.classifier  # noqa: F401  (registers ganlab-domain)

    return sorted(FEATURE_EXTRACTORS_REGISTRY)


def check_extractor(name: str) -> None:
    known = registered_extractors()
    if name not in known:
        raise GanlabError(f"unknown feature extractor {name!r}; known: {', '.join(known)} "
                          f"(aliases: {', '.join(sorted(ALIASES))})")


# ---- Inception weights -----------------------------------------------------------------------
def inception_url() -> str:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return URL_INCEPTION_V3


def hub_weights_path() -> Path:
    """Where torch hub (and so torch-fidelity) keeps the downloaded Inception weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(inception_url())


def _online(host: str = "github.com", timeout: float = 3.0) -> bool:
    if os.environ.get(OFFLINE_ENV, "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def offline_message() -> str:
    return (f"Inception-v3 weights are not on this machine and it is offline: on a machine with "
            f"internet download {inception_url()} and pass --inception-weights PATH "
            f"(or copy the file to {hub_weights_path()})")


def inception_weights(given: str | os.PathLike | None) -> Path:
    """The Inception weights file to use, checked to hold only tensors."""
    if given:
        path = Path(given)
        if not path.is_file():
            raise GanlabError(f"--inception-weights {path}: no such file")
    else:
        path = hub_weights_path()
        if not path.is_file():
            if not _online():
                raise GanlabError(offline_message())
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(inception_url(), str(path), progress=False)
            except Exception:
                raise GanlabError(offline_message()) from None
    # torch-fidelity unpickles the file with weights_only=False; refuse anything a safe
    # load would not accept, so a tampered file cannot run code.
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise GanlabError(f"Inception weights {path} are not a plain state dict of tensors ({first})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise GanlabError(f"Inception weights {path} are not a state dict of tensors")
    return path


# ---- extraction -------------------------------------------------------------------------------
class Uint8Images(Dataset):
    """Bare uint8 tensors, as torch-fidelity's loaders want them (no (image, label) pairs)."""

    def __init__(self, images: Tensor):
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i]


def to_uint8_for(name: str, images: Tensor) -> Tensor:
    """[-1, 1] floats -> uint8, grey images repeated to RGB for extractors that need 3 channels."""
    out = unit_to_uint8(images.detach().cpu())
    if name != "ganlab-domain" and out.shape[1] == 1:
        out = out.repeat(1, 3, 1, 1)
    return out


class Extractor:
    """One torch-fidelity feature extractor, built once and applied to several image sets."""

    def __init__(self, name: str, weights_path: Path | None, layers: Iterable[str], device: str = "cpu"):
        from torch_fidelity.utils import create_feature_extractor

        self.name, self.weights_path, self.layers = name, weights_path, sorted(set(layers))
        self.cuda = str(device).startswith("cuda")
        try:
            self.module = create_feature_extractor(
                name, self.layers, cuda=self.cuda, verbose=False,
                feature_extractor_weights_path=str(weights_path) if weights_path else None)
        except GanlabError:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            where = f" from {weights_path}" if weights_path else ""
            raise GanlabError(f"cannot build feature extractor {name!r}{where}: {first}") from None

    def __call__(self, images: Tensor, batch_size: int = 64) -> dict[str, Tensor]:
        from torch_fidelity.utils import get_featuresdict_from_dataset

        data = Uint8Images(to_uint8_for(self.name, images))
        # save_cpu_ram: no loader worker processes (two cores here), as DESIGN.md notes.
        features = get_featuresdict_from_dataset(data, self.module, batch_size, self.cuda,
                                                 save_cpu_ram=True, verbose=False)
        return {k: v.float() for k, v in features.items()}


def default_layers(name: str) -> dict[str, str]:
    """The layer each feature-space metric reads, as the extractor itself declares."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    cls = FEATURE_EXTRACTORS_REGISTRY[name]
    layers = {}
    for metric in ("fid", "kid", "prc", "isc"):
        try:
            layers[metric] = cls.get_default_feature_layer_for_metric(metric)
        except Exception:  # an extractor without a layer for this metric
            continue
    return layers


def weights_sha256(path: Path | None) -> str | None:
    return file_sha256(path) if path else None
