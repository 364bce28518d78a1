"""FrameSampler: batch layout, times, and temporal neighbours from the same video within the window."""

from __future__ import annotations

import pytest
import torch

from video2reward.video.dataset import Demonstration
from video2reward.video.frame_sampler import FrameBatch, FrameSampler

torch.set_num_threads(1)


def make_demo(name: str, t: int, fill: int, stride: int = 1) -> Demonstration:
    """Frame k of the demo carries k in pixel (0, 0, 0) and `fill` (the demo's id) elsewhere."""
    frames = torch.full((t, 3, 8, 8), fill, dtype=torch.uint8)
    frames[:, 0, 0, 0] = torch.arange(t, dtype=torch.uint8)
    return Demonstration(name, frames, torch.arange(t).float() * stride, (t - 1) * stride + 1)


DEMOS = [make_demo("a", 30, 100), make_demo("b", 9, 101, stride=3), make_demo("c", 50, 102)]


def test_plain_batch_layout_and_times() -> None:
    sampler = FrameSampler(DEMOS, frames_per_video=5, videos_per_batch=4)
    batch = sampler.sample(torch.Generator().manual_seed(0))
    assert sampler.batch_frames == 20
    assert batch.frames.shape == (20, 3, 8, 8) and batch.frames.dtype == torch.uint8
    assert torch.equal(batch.neighbour, torch.arange(20))  # no neighbours drawn: each is its own
    assert batch.video.dtype == torch.long and batch.time.dtype == torch.float32
    # frames come in groups of frames_per_video from one video, and carry their video's fill value
    assert (batch.video.view(4, 5) == batch.video.view(4, 5)[:, :1]).all()
    assert torch.equal(batch.frames[:, 1, 0, 0].long() - 100, batch.video)
    pos = batch.frames[:, 0, 0, 0].long()
    for i in range(20):
        assert batch.time[i].item() == pytest.approx(DEMOS[int(batch.video[i])].progress[pos[i]].item())
    assert ((batch.time >= 0) & (batch.time <= 1)).all()


@pytest.mark.parametrize("window", [1, 3])
def test_neighbours_are_in_the_same_video_within_the_window(window: int) -> None:
    sampler = FrameSampler(DEMOS, frames_per_video=6, videos_per_batch=5, neighbour_window=window)
    assert sampler.batch_frames == 60
    for seed in range(5):
        batch = sampler.sample(torch.Generator().manual_seed(seed))
        n = batch.frames.shape[0]
        assert n == 60
        idx = torch.arange(n)
        nb = batch.neighbour
        assert torch.equal(nb, torch.cat([idx[30:], idx[:30]]))  # first half <-> second half
        assert torch.equal(nb[nb], idx)
        assert torch.equal(batch.video[nb], batch.video)
        pos = batch.frames[:, 0, 0, 0].long()
        gap = (pos - pos[nb]).abs()
        assert ((gap >= 1) & (gap <= window)).all()  # every demo here is longer than the window
        assert torch.equal(batch.frames[:, 1, 0, 0].long() - 100, batch.video)


def test_neighbours_at_the_ends_and_in_short_videos_stay_inside() -> None:
    demos = [make_demo("short", 2, 100), make_demo("one", 1, 101), make_demo("long", 5, 102)]
    sampler = FrameSampler(demos, frames_per_video=8, videos_per_batch=6, neighbour_window=3)
    batch = sampler.sample(torch.Generator().manual_seed(0))
    pos = batch.frames[:, 0, 0, 0].long()
    lengths = torch.tensor([2, 1, 5])[batch.video]
    assert ((pos >= 0) & (pos < lengths)).all()
    assert torch.equal(batch.video[batch.neighbour], batch.video)
    assert ((pos - pos[batch.neighbour]).abs() <= 3).all()


def test_sampling_is_deterministic_for_a_seed() -> None:
    sampler = FrameSampler(DEMOS, frames_per_video=4, videos_per_batch=3, neighbour_window=2)
    a = sampler.sample(torch.Generator().manual_seed(7))
    b = sampler.sample(torch.Generator().manual_seed(7))
    c = sampler.sample(torch.Generator().manual_seed(8))
    for f in ("frames", "video", "time", "neighbour"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    assert not torch.equal(a.frames, c.frames)
    moved = a.to(torch.device("cpu"))
    assert isinstance(moved, FrameBatch) and torch.equal(moved.time, a.time)


def test_empty_demonstrations_are_dropped_or_refused() -> None:
    empty = Demonstration("empty", torch.zeros(0, 3, 8, 8, dtype=torch.uint8), torch.zeros(0), 0)
    sampler = FrameSampler([empty, DEMOS[0]], frames_per_video=2, videos_per_batch=2)
    assert len(sampler.demos) == 1
    with pytest.raises(ValueError):
        FrameSampler([empty])
