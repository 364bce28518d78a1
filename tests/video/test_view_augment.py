"""`--view-augment` (video/view_augment.py): the geometry is right, it is seeded, and it preserves labels: the
progress targets (and every index of a training batch) are the same with it, without it and with the default
augmentation; only the pixels change."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from video2reward.rewards.triplets import TripletSampler
from video2reward.testing.synthetic import square_demonstrations
from video2reward.training.config import TrainConfig
from video2reward.training.train import _batches
from video2reward.video.view_augment import (
    ViewAugment,
    random_blur,
    random_homographies,
    warp,
)

IDENTITY = ViewAugment(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), rotate=0.0, shear=0.0, perspective=0.0,
                       flip_p=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, gray_p=0.0, blur_p=0.0,
                       noise_std=0.0)


def _frames(n: int = 6, size: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_identity_parameters_leave_frames_unchanged():
    x = _frames()
    torch.testing.assert_close(IDENTITY(x, torch.Generator().manual_seed(0)), x, atol=1e-5, rtol=0)


def test_flip_is_an_exact_mirror():
    x = _frames()
    flipped = replace(IDENTITY, flip_p=1.0)(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(flipped, x.flip(-1), atol=1e-5, rtol=0)


def test_crop_zooms_in():
    """A crop of half the side around the centre shows the centre pixels twice as large."""
    x = torch.zeros(1, 3, 16, 16)
    x[..., 6:10, 6:10] = 1.0  # a 4 px square in the middle
    h = torch.diag(torch.tensor([0.5, 0.5, 1.0]))[None]  # output [-1, 1] -> input [-0.5, 0.5]
    out = warp(x, h)
    assert out[0, 0].sum().item() == pytest.approx(4 * 16, abs=1.0)  # the square now covers 8 x 8 px
    assert out[0, 0, 5:11, 5:11].min().item() == pytest.approx(1.0)  # bilinear: only its edge pixels are partial
    assert out[0, 0, :3].max().item() == 0.0


def test_homographies_stay_inside_the_frame():
    h = random_homographies(500, torch.Generator().manual_seed(0), "cpu", (0.55, 1.0), (0.75, 4 / 3), 0.0, 0.0,
                            0.0, 0.0)
    corners = torch.tensor([[-1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, -1.0, 1.0]])
    mapped = corners @ h.transpose(1, 2)  # (500, 4, 3)
    assert (mapped[..., :2].abs() <= 1 + 1e-5).all()  # a crop never reaches past the frame's border


def test_seeded_in_range_and_strong():
    x = _frames(32, 24)
    a = ViewAugment()(x, torch.Generator().manual_seed(0))
    b = ViewAugment()(x, torch.Generator().manual_seed(0))
    c = ViewAugment()(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, b)
    assert (a - c).abs().mean() > 0.05
    assert (a - x).abs().mean() > 0.1


def test_blur_keeps_flat_frames_and_smooths_noise():
    flat = torch.full((4, 3, 12, 12), 0.3)
    torch.testing.assert_close(random_blur(flat, torch.Generator().manual_seed(0), 1.0, (0.5, 1.5)), flat)
    noise = _frames(4, 24)
    assert random_blur(noise, torch.Generator().manual_seed(0), 1.0, (1.0, 1.5)).std() < 0.6 * noise.std()


@pytest.mark.parametrize("other", [dict(view_augment=False), dict(augment=False)])
def test_view_augment_leaves_progress_targets_unchanged(other):
    """The documented label-preserving augmentation: the same sampler draws give the same triplets and the
    same progress targets whatever the augmentation; the frames differ."""
    sampler = TripletSampler(square_demonstrations(n=3, size=16), frames_per_video=6, videos_per_batch=3,
                             triplets_per_video=12, motion_gap=2)
    strong = _batches(sampler, replace(TrainConfig(), view_augment=True), torch.device("cpu"))
    plain = _batches(sampler, replace(TrainConfig(), **other), torch.device("cpu"))
    a, b = strong(torch.Generator().manual_seed(5)), plain(torch.Generator().manual_seed(5))
    for name in ("initial", "current", "goal", "previous", "progress", "gap"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.frames.shape == b.frames.shape and not torch.allclose(a.frames, b.frames)


def test_pretrain_applies_it(tmp_path):
    """`v2r pretrain --view-augment`: the sampled frames are augmented before the method's own views (the weights
    after the same steps from the same seed differ), and the encoder's config records it."""
    from video2reward.testing.synthetic import write_square_dataset
    from video2reward.training.config import PretrainConfig
    from video2reward.training.pretrain import pretrain_encoder

    data = write_square_dataset(tmp_path / "data", n_train=2, n_test=1, t=10, size=16)
    base = replace(PretrainConfig(), steps=2, batch_size=8, frames_per_video=4, warmup_steps=1, image_size=16,
                   threads=1)
    weights = {}
    for flag in (False, True):
        result = pretrain_encoder([data / "train"], tmp_path / f"enc{flag}", replace(base, view_augment=flag),
                                  progress=False)
        weights[flag] = torch.cat([p.detach().flatten() for p in result.encoder.parameters()])
        saved = (tmp_path / f"enc{flag}" / "config.json").read_text()
        assert f'"view_augment": {str(flag).lower()}' in saved
    assert not torch.equal(weights[False], weights[True])
