"""Batched view augmentations: shapes, ranges, determinism, and the exact values of the simple ones."""

from __future__ import annotations

import pytest
import torch

from video2reward.video.views import (
    MultiCrop,
    ViewAugment,
    gaussian_blur,
    horizontal_flip,
    random_color_jitter,
    random_grayscale,
    random_resized_crop,
    solarize,
)

torch.set_num_threads(1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def frames(b: int = 4, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=gen(seed))


def test_resized_crop_of_the_whole_frame_is_the_identity() -> None:
    x = frames(3, 12)
    out = random_resized_crop(x, gen(), 12, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_resized_crop_shapes_and_range() -> None:
    x = frames(5, 16)
    out = random_resized_crop(x, gen(), 10)
    assert out.shape == (5, 3, 10, 10)
    assert out.min() >= 0 and out.max() <= 1
    # a constant frame stays constant whatever the box
    const = torch.full((2, 3, 16, 16), 0.3)
    torch.testing.assert_close(random_resized_crop(const, gen(), 8), torch.full((2, 3, 8, 8), 0.3))


def test_resized_crop_zooms_into_one_box_per_frame() -> None:
    """Scale 1/4 at aspect 1 is a box of half the side: a horizontal ramp comes out twice as shallow,
    constant down each column, and the boxes differ from frame to frame."""
    ramp = torch.arange(16.0).view(1, 1, 1, 16).expand(6, 3, 16, 16) / 15
    out = random_resized_crop(ramp, gen(), 16, scale=(0.25, 0.25), ratio=(1.0, 1.0))
    torch.testing.assert_close(out, out[:, :, :1, :].expand_as(out))
    slope = out[..., 3:13].diff(dim=-1)  # away from the border, where bilinear of a ramp is exact
    torch.testing.assert_close(slope, torch.full_like(slope, 0.5 / 15))
    left = out[:, 0, 0, 0]
    assert left.max() - left.min() > 0.05  # the box moves
    assert (left >= 0).all() and (out[:, 0, 0, -1] <= 1).all()


def test_grayscale_values() -> None:
    x = frames(3)
    out = random_grayscale(x, gen(), p=1.0)
    gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for c in range(3):
        torch.testing.assert_close(out[:, c], gray)
    assert torch.equal(random_grayscale(x, gen(), p=0.0), x)


def test_solarize_values() -> None:
    x = torch.tensor([0.0, 0.2, 0.5, 0.7, 1.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    out = solarize(x, gen(), p=1.0, threshold=0.5)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.0, 0.2, 0.5, 0.3, 0.0]))
    assert torch.equal(solarize(x, gen(), p=0.0), x)


def test_horizontal_flip() -> None:
    x = frames(2)
    assert torch.equal(horizontal_flip(x, gen(), p=1.0), x.flip(-1))
    assert torch.equal(horizontal_flip(x, gen(), p=0.0), x)


def test_gaussian_blur_keeps_constants_and_smooths_noise() -> None:
    const = torch.full((2, 3, 64, 64), 0.4)
    torch.testing.assert_close(gaussian_blur(const, gen(), p=1.0), const)
    noise = torch.rand(2, 3, 64, 64, generator=gen(1))
    out = gaussian_blur(noise, gen(), p=1.0, sigma=(2.0, 2.0))  # 2 px at 224 px = 0.57 px at 64 px
    assert out.shape == noise.shape
    assert out.var() < 0.7 * noise.var()
    torch.testing.assert_close(out.mean(), noise.mean(), atol=5e-3, rtol=0)  # reflect padding: mean ~kept
    assert torch.equal(gaussian_blur(noise, gen(), p=0.0), noise)
    # at 224 px, sigma is in pixels: 2 px averages noise over many more pixels
    big = torch.rand(1, 3, 224, 224, generator=gen(2))
    assert gaussian_blur(big, gen(), p=1.0, sigma=(2.0, 2.0)).var() < 0.2 * big.var()


def test_color_jitter_range_and_probability() -> None:
    x = frames(6)
    out = random_color_jitter(x, gen(), p=1.0)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, x)
    assert torch.equal(random_color_jitter(x, gen(), p=0.0), x)


@pytest.mark.parametrize("flip", [False, True])
def test_view_augment_is_deterministic_for_a_seed(flip: bool) -> None:
    x = frames(4, 32)
    aug = ViewAugment(size=24, flip=flip, solarize_p=0.5)
    a, b, c = aug(x, gen(3)), aug(x, gen(3)), aug(x, gen(4))
    assert a.shape == (4, 3, 24, 24) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_multicrop_views() -> None:
    x = frames(2, 32)
    views = MultiCrop(global_size=24, local_size=16, n_local=3)(x, gen())
    assert [v.shape for v in views] == [(2, 3, 24, 24)] * 2 + [(2, 3, 16, 16)] * 3
    again = MultiCrop(global_size=24, local_size=16, n_local=3)(x, gen())
    assert all(torch.equal(v, w) for v, w in zip(views, again))
