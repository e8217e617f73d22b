"""The domain classifier: accuracy, caching, and its place in torch-fidelity's registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.errors import GanlabError
from ganlab.metrics.classifier import EXTRACTOR_NAME, domain_classifier

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANLAB_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="module")
def digits_classifier(registry, cache):
    before = torch.get_rng_state()
    trained = domain_classifier(registry, "digits", {"image_size": 8, "split": "all"}, seed=0)
    assert torch.equal(before, torch.get_rng_state()), "training moved the global RNG"
    return trained


def test_digits_classifier_is_accurate_on_the_held_out_split(digits_classifier):
    meta = digits_classifier.meta
    print(f"digits classifier: {meta['accuracy']:.4f} held-out accuracy, {meta['train_seconds']} s")
    assert meta["accuracy"] >= 0.95
    assert meta["held_out"] == "the dataset's test split"
    assert (meta["n_train"], meta["n_test"]) == (1437, 360)


def test_the_classifier_is_cached_by_dataset_options_and_seed(registry, cache, digits_classifier):
    path = digits_classifier.path
    assert path.parent == cache / "classifiers"
    stamp = path.stat().st_mtime_ns
    again = domain_classifier(registry, "digits", {"image_size": 8, "split": "train"}, seed=0)
    assert again.path == path and path.stat().st_mtime_ns == stamp  # split is not part of the key
    assert again.sha256 == digits_classifier.sha256
    from ganlab.metrics.classifier import classifier_path

    assert classifier_path("digits", {"image_size": 8}, 1) != path
    assert classifier_path("digits", {"image_size": 16}, 0) != path


def test_predictions_agree_with_labels_on_real_digits(registry, digits_classifier):
    from ganlab.data.images import digits

    test = digits(split="test")
    predicted = digits_classifier.predict(test.images)
    assert predicted.shape == (360, 1)
    assert (predicted[:, 0] == test.labels).double().mean() >= 0.95


def test_registered_with_torch_fidelity_and_built_by_it(digits_classifier):
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
    from torch_fidelity.utils import create_feature_extractor

    from ganlab.metrics.classifier import DomainFeatureExtractor

    assert FEATURE_EXTRACTORS_REGISTRY[EXTRACTOR_NAME] is DomainFeatureExtractor
    extractor = create_feature_extractor(EXTRACTOR_NAME, ["features", "logits"], cuda=False, verbose=False,
                                         feature_extractor_weights_path=str(digits_classifier.path))
    images = torch.randint(0, 256, (7, 1, 8, 8), dtype=torch.uint8)
    out = extractor(images)
    assert isinstance(out, tuple) and out[0].shape == (7, 128) and out[1].shape == (7, 10)
    # torch-fidelity's own loop over a dataset of bare tensors
    from torch_fidelity.utils import get_featuresdict_from_dataset

    from ganlab.metrics.extractors import Uint8Images

    feats = get_featuresdict_from_dataset(Uint8Images(images), extractor, 4, False, True, False)
    assert torch.allclose(feats["features"], out[0], atol=1e-5)
    with pytest.raises(GanlabError, match="needs a trained classifier file"):
        create_feature_extractor(EXTRACTOR_NAME, ["features"], cuda=False, verbose=False)


def test_unlabelled_data_cannot_train_a_classifier(registry, cache):
    with pytest.raises(GanlabError, match="no class labels"):
        domain_classifier(registry, "ring8", {}, seed=0)


@pytest.mark.slow
@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="MNIST IDX files not on this machine")
def test_stacked_mnist_real_data_covers_the_1000_modes(registry, cache, monkeypatch):
    """Stacked MNIST's own samples, read by the MNIST classifier channel by channel, cover
    (nearly) all 1,000 modes with a small KL to uniform: the metric's known answer."""
    from ganlab.metrics.context import EvalContext
    from ganlab.metrics.standard import stacked_modes
    from ganlab.train.setup import load_dataset

    monkeypatch.setenv("GANLAB_DATA_DIR", str(MNIST_DIR.parent))
    data, options = load_dataset(registry, "stacked-mnist", {})
    assert data.spec.shape == (3, 28, 28)
    samples, _ = data.batch(10_000, torch.Generator().manual_seed(3))
    ctx = EvalContext(registry, "stacked-mnist", options, data.spec, samples, dataset=data)
    out = stacked_modes(ctx)
    print(f"stacked MNIST real data: {out['modes_covered']} modes, KL {out['reverse_kl']:.4f}, "
          f"classifier accuracy {ctx.info['classifier']['accuracy']:.4f}")
    assert ctx.info["classifier"]["accuracy"] >= 0.95
    assert out["modes_covered"] >= 990  # 10,000 uniform draws leave ~0.05 of 1,000 modes empty
    assert out["reverse_kl"] < 0.15
    collapsed = EvalContext(registry, "stacked-mnist", options, data.spec, samples[:1].repeat(500, 1, 1, 1),
                            dataset=data)
    assert stacked_modes(collapsed)["modes_covered"] == 1
