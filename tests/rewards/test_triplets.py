"""Triplet sampling: ordering, targets, shared frames, goal swaps; augmentations keep shapes and ranges."""

from __future__ import annotations

import torch

from video2reward.rewards.triplets import TripletSampler, motion_partners
from video2reward.video.augment import FrameAugment, random_shift
from video2reward.video.dataset import Demonstration, even_subsample


def make_demo(name: str, t: int, fill: int, stride: int = 1) -> Demonstration:
    frames = torch.full((t, 3, 8, 8), fill, dtype=torch.uint8)
    frames[:, 0, 0, 0] = torch.arange(t, dtype=torch.uint8)  # each frame knows its own position
    return Demonstration(name, frames, torch.arange(t).float() * stride, (t - 1) * stride + 1)


def test_triplets_are_ordered_and_targets_exact() -> None:
    demos = [make_demo("a", 30, 10), make_demo("b", 7, 20, stride=3)]
    sampler = TripletSampler(demos, frames_per_video=6, videos_per_batch=4, triplets_per_video=40)
    batch = sampler.sample(torch.Generator().manual_seed(0))
    n_sampled = 4 * 6
    assert batch.frames.shape[0] == n_sampled + 4  # sampled frames + one end frame per video as goal images
    assert (batch.initial < batch.current).all()
    own_goal = batch.goal < n_sampled
    assert (batch.current[own_goal] < batch.goal[own_goal]).all()
    assert ((batch.progress > 0) & (batch.progress < 1)).all()
    # progress = (t_c - t_i) / (t_g - t_i), recomputed from the positions each frame carries
    pos = batch.frames[:, 0, 0, 0].float()
    stride = torch.where(batch.frames[:, 1, 0, 0] == 20, 3.0, 1.0)
    t = pos * stride
    t_i, t_c = t[batch.initial], t[batch.current]
    ok = own_goal
    expected = (t_c[ok] - t_i[ok]) / (t[batch.goal][ok] - t_i[ok])
    torch.testing.assert_close(batch.progress[ok], expected)
    # swapped goals point at other demonstrations' last frames
    assert (~own_goal).any()
    swapped = batch.goal[~own_goal]
    assert (swapped >= n_sampled).all()


def test_first_and_last_frames_are_always_drawn() -> None:
    sampler = TripletSampler([make_demo("a", 50, 1)], frames_per_video=5, videos_per_batch=1)
    batch = sampler.sample(torch.Generator().manual_seed(3))
    pos = batch.frames[:5, 0, 0, 0].tolist()
    assert pos[0] == 0 and pos[-1] == 49 and pos == sorted(pos)


def test_sampling_is_deterministic_with_a_seed() -> None:
    sampler = TripletSampler([make_demo("a", 20, 1), make_demo("b", 9, 2)])
    a = sampler.sample(torch.Generator().manual_seed(7))
    b = sampler.sample(torch.Generator().manual_seed(7))
    assert torch.equal(a.frames, b.frames) and torch.equal(a.progress, b.progress)


def test_even_subsample_keeps_ends() -> None:
    idx = even_subsample(1000, 11)
    assert idx[0] == 0 and idx[-1] == 999 and len(idx) == 11
    assert list(even_subsample(5, 10)) == [0, 1, 2, 3, 4]


def test_augment_keeps_shape_range_and_is_seeded() -> None:
    frames = torch.rand(6, 3, 32, 32)
    aug = FrameAugment()
    a = aug(frames, torch.Generator().manual_seed(1))
    b = aug(frames, torch.Generator().manual_seed(1))
    assert a.shape == frames.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, frames)


def test_random_shift_moves_content_by_whole_pixels() -> None:
    frames = torch.zeros(20, 1, 9, 9)
    frames[:, :, 4, 4] = 1.0  # one bright pixel in the centre
    out = random_shift(frames, torch.Generator().manual_seed(0), pad=2)
    assert torch.equal(out.sum(dim=(1, 2, 3)), torch.ones(20))  # the pixel moved, never blurred or lost
    assert torch.equal(random_shift(frames, torch.Generator(), pad=0), frames)


def test_motion_partners_are_gap_frames_earlier_in_original_time() -> None:
    times = torch.tensor([0.0, 1, 2, 3, 4, 5, 6, 7])
    assert motion_partners(times, torch.arange(8), 2).tolist() == [0, 0, 0, 1, 2, 3, 4, 5]
    strided = torch.tensor([0.0, 3, 6, 9])  # every third frame kept: the partner is at or before t - gap
    assert motion_partners(strided, torch.arange(4), 2).tolist() == [0, 0, 1, 2]


def test_sampled_previous_frames_are_the_motion_partners() -> None:
    sampler = TripletSampler([make_demo("a", 40, 1)], frames_per_video=6, videos_per_batch=2, motion_gap=3)
    batch = sampler.sample(torch.Generator().manual_seed(5))
    pos = batch.frames[:, 0, 0, 0].long()
    assert torch.equal(pos[batch.previous], (pos[batch.current] - 3).clamp(min=0))
    assert (batch.goal[batch.goal < 24] % 12 < 6).all()  # own goals never point into a partner block
