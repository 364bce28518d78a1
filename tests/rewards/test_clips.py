"""Samplers of the non-progress heads (clips, VIP quadruples) and the failed-video triplets of progress."""

from __future__ import annotations

import torch

from video2reward.rewards.clips import ClipSampler, VIPSampler
from video2reward.rewards.triplets import FailedTripletSampler, TripletSampler
from video2reward.video.dataset import Demonstration


def make_demo(name: str, t: int, fill: int) -> Demonstration:
    frames = torch.full((t, 3, 8, 8), fill, dtype=torch.uint8)
    frames[:, 0, 0, 0] = torch.arange(t, dtype=torch.uint8)  # each frame knows its own position
    return Demonstration(name, frames, torch.arange(t).float(), t)


def test_clips_are_sorted_with_first_and_last_and_failed_clips_marked() -> None:
    demos, failed = [make_demo("a", 30, 10), make_demo("b", 12, 20)], [make_demo("f", 9, 99)]
    sampler = ClipSampler(demos, failed, frames_per_video=5, videos_per_batch=3, negative_videos_per_batch=2)
    batch = sampler.sample(torch.Generator().manual_seed(0))
    assert batch.frames.shape[0] == 5 * 5 and batch.video.tolist() == [c for c in range(5) for _ in range(5)]
    assert batch.failed.tolist() == [False] * 15 + [True] * 10
    assert (batch.frames[batch.failed, 1, 0, 0] == 99).all() and (batch.frames[~batch.failed, 1, 0, 0] != 99).all()
    for clip in range(5):
        rows = batch.video == clip
        pos = batch.frames[rows, 0, 0, 0].float()
        length = {10: 30, 20: 12, 99: 9}[int(batch.frames[rows][0, 1, 0, 0])]
        assert pos[0] == 0 and pos[-1] == length - 1 and (pos.diff() > 0).all()
        torch.testing.assert_close(batch.time[rows], pos / (length - 1))
    no_failed = ClipSampler(demos, [], frames_per_video=5, videos_per_batch=3).sample(torch.Generator())
    assert not no_failed.failed.any() and no_failed.frames.shape[0] == 15


def test_vip_quadruples_follow_one_demonstration_forward() -> None:
    sampler = VIPSampler([make_demo("a", 40, 1), make_demo("b", 6, 2)], frames_per_video=6, videos_per_batch=4,
                         quadruples_per_video=30)
    batch = sampler.sample(torch.Generator().manual_seed(1))
    assert batch.frames.shape[0] == 4 * 2 * 6 and batch.start.numel() == 4 * 30
    pos = batch.frames[:, 0, 0, 0].long()
    video = batch.frames[:, 1, 0, 0]
    s, k, nxt, g = pos[batch.start], pos[batch.current], pos[batch.next], pos[batch.goal]
    assert (s <= k).all() and (k < g).all() and (nxt == k + 1).all() and (nxt <= g).all()
    for idx in (batch.current, batch.next, batch.goal):
        assert (video[idx] == video[batch.start]).all()  # all four frames from one demonstration
    assert (batch.reward == -1).all()


def test_failed_triplets_start_at_the_failed_video_and_aim_at_a_demonstration_goal() -> None:
    demos, failed = [make_demo("a", 30, 10)], [make_demo("f", 9, 99)]
    expert = TripletSampler(demos, frames_per_video=5, videos_per_batch=2, triplets_per_video=7, motion_gap=2)
    alone = expert.sample(torch.Generator().manual_seed(0))
    batch = FailedTripletSampler(expert, failed, videos_per_batch=3).sample(torch.Generator().manual_seed(0))
    k = alone.current.numel()
    assert torch.equal(batch.frames[: len(alone.frames)], alone.frames)  # the expert part is unchanged
    assert torch.equal(batch.current[:k], alone.current) and not batch.failed[:k].any()
    assert batch.failed[k:].all() and batch.failed.numel() == k + 3 * 7
    f = batch.failed
    assert (batch.frames[batch.initial[f], 0, 0, 0] == 0).all()  # the failed video's first frame
    assert (batch.frames[batch.current[f], 1, 0, 0] == 99).all() and (batch.frames[batch.current[f], 0, 0, 0] > 0).all()
    assert (batch.frames[batch.goal[f], 0, 0, 0] == 29).all() and (batch.frames[batch.goal[f], 1, 0, 0] == 10).all()
    partner = batch.frames[batch.previous[f], 0, 0, 0].long()
    assert torch.equal(partner, (batch.frames[batch.current[f], 0, 0, 0].long() - 2).clamp(min=0))
