"""DiffAugment (Zhao et al. 2020): each transform's defining property, gradients, policies."""

from __future__ import annotations

import pytest
import torch

from ganlab.augment import DiffAugment, brightness, contrast, cutout, saturation, translation
from ganlab.errors import GanlabError


def images(n: int = 16, c: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    # Strictly positive, distinct values, so zeros can only come from padding or cutout.
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) + 1.0


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """One image (C, H, W) moved by (dy, dx) pixels, zeros where nothing moved in (by slicing)."""
    out = torch.zeros_like(x)
    h, w = x.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_translation_shifts_each_image_by_at_most_one_eighth():
    x = images(64, size=16)  # shift range: round(16 / 8) = 2 pixels
    out = translation(x, torch.Generator().manual_seed(1))
    seen = set()
    for xi, oi in zip(x, out):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(oi, shifted(xi, dy, dx))]
        assert len(matches) == 1, "every output is exactly one shifted copy"
        seen.add(matches[0])
    assert len(seen) > 10, "shifts vary from image to image"


def test_cutout_zeroes_one_square_of_half_the_side():
    x = images(64, c=2, size=8)
    out = cutout(x, torch.Generator().manual_seed(2))
    for xi, oi in zip(x, out):
        zero = oi[0] == 0
        assert torch.equal(zero, oi[1] == 0), "the same square in every channel"
        assert torch.equal(oi[:, ~zero], xi[:, ~zero]), "pixels outside the square are untouched"
        rows, cols = zero.any(dim=1).nonzero().flatten(), zero.any(dim=0).nonzero().flatten()
        assert 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4  # side round(8 / 2) = 4, clipped at borders
        assert zero.sum() == len(rows) * len(cols), "the zeroed pixels form one rectangle"
        assert torch.equal(rows, torch.arange(rows[0], rows[0] + len(rows))), "contiguous rows"
    full = sum(int((oi[0] == 0).sum() == 16) for oi in out)
    assert full > 10, "squares away from the border keep their full 4x4 size"


def test_brightness_adds_one_offset_per_image_in_half_unit_range():
    x = images()
    delta = brightness(x, torch.Generator().manual_seed(3)) - x
    per_image = delta.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)
    assert (per_image.abs() <= 0.5).all() and per_image[:, 0].std() > 0.1


def test_saturation_scales_distance_from_channel_mean():
    x = images()
    out = saturation(x, torch.Generator().manual_seed(4))
    mean = x.mean(dim=1, keepdim=True)
    assert torch.allclose(out.mean(dim=1, keepdim=True), mean, atol=1e-6), "grey level kept"
    factor = (out - mean).flatten(1) / (x - mean).flatten(1)
    assert torch.allclose(factor, factor[:, :1].expand_as(factor), atol=1e-3)
    assert (factor >= 0).all() and (factor < 2).all()
    grey = images(c=1)
    assert torch.allclose(saturation(grey), grey), "one channel: nothing to saturate"


def test_contrast_keeps_the_mean_and_scales_by_half_to_three_halves():
    x = images()
    out = contrast(x, torch.Generator().manual_seed(5))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(out.mean(dim=(1, 2, 3), keepdim=True), mean, atol=1e-5)
    factor = ((out - mean).flatten(1) / (x - mean).flatten(1))
    assert torch.allclose(factor, factor[:, :1].expand_as(factor), atol=1e-3)
    assert (factor >= 0.5 - 1e-4).all() and (factor < 1.5 + 1e-4).all()


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_gradients_flow_through_every_policy(policy):
    x = images(4).requires_grad_(True)
    out = DiffAugment(policy, torch.Generator().manual_seed(6))(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_translation_gradient_is_one_where_a_pixel_stays_in_view():
    x = images(8, size=8).requires_grad_(True)
    out = translation(x, torch.Generator().manual_seed(7))
    out.sum().backward()
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(x.grad.flatten(1).sum(1), (out != 0).flatten(1).sum(1).float())


def test_policies_are_reproducible_under_a_seed_and_random_across_calls():
    x = images()
    a = DiffAugment("color,translation,cutout", torch.Generator().manual_seed(8))
    b = DiffAugment("color,translation,cutout", torch.Generator().manual_seed(8))
    first = a(x)
    assert torch.equal(first, b(x))
    assert not torch.equal(first, a(x)), "each call draws new transforms"
    torch.manual_seed(0)
    g1 = DiffAugment("translation")(x)
    torch.manual_seed(0)
    assert torch.equal(g1, DiffAugment("translation")(x)), "without rng: torch's seeded global stream"


def test_policy_order_and_spacing():
    assert DiffAugment(" cutout , color ").policy == ["cutout", "color"]


@pytest.mark.parametrize("policy", ["zoom", "color,zoom", "", " , "])
def test_unknown_or_empty_policies_are_refused(policy):
    with pytest.raises(GanlabError, match="diffaugment policy"):
        DiffAugment(policy)


def test_points_are_refused():
    with pytest.raises(GanlabError, match="image batches"):
        DiffAugment("color")(torch.zeros(4, 2))
