"""WindowSampler: windows are causal and end at their current frame, stay at or after their initial frame, share
their frames, play at the drawn speeds, and carry the progress target of their current frame."""

from __future__ import annotations

import pytest
import torch

from video2reward.rewards.windows import WindowSampler, clip_lattice
from video2reward.testing.synthetic import (
    as_demonstration,
    failed_squares,
    moving_square,
)
from video2reward.video.dataset import Demonstration


def _ids(n: int, t: int = 40) -> list[Demonstration]:
    """Videos whose frame k has every pixel = its own index k (and the video's number in the green channel), so a
    sampled frame tells where it came from."""
    out = []
    for v in range(n):
        frames = torch.zeros(t, 3, 4, 4, dtype=torch.uint8)
        frames[:, 0] = torch.arange(t, dtype=torch.uint8)[:, None, None]
        frames[:, 1] = v
        out.append(Demonstration(f"v{v}", frames, torch.arange(t).float(), t))
    return out


def _decode(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(frame index, video) of every sampled frame."""
    return batch.frames[:, 0, 0, 0].long(), batch.frames[:, 1, 0, 0].long()


def test_windows_are_causal_and_carry_the_progress_of_their_current_frame() -> None:
    sampler = WindowSampler(_ids(3), context=5, windows_per_clip=6, videos_per_batch=4, p_other_goal=0.0)
    for seed in range(5):
        batch = sampler.sample(torch.Generator().manual_seed(seed))
        t, video = _decode(batch)
        win = t[batch.window]  # (W, K) frame indices
        assert batch.window.shape[1] == 5
        assert (win[:, 1:] >= win[:, :-1]).all()  # oldest first, the current frame last
        assert (video[batch.window] == video[batch.initial][:, None]).all()  # one video per window
        assert (win >= t[batch.initial][:, None]).all() and (win[:, -1] <= t[batch.goal]).all()
        expected = (win[:, -1] - t[batch.initial]).float() / (t[batch.goal] - t[batch.initial]).float()
        torch.testing.assert_close(batch.progress, expected)
        torch.testing.assert_close(batch.gap, (t[batch.goal] - t[batch.initial]).float())
        # frames are shared by windows: at most each clip's lattice + its initial and goal, + the goal images
        assert len(t) <= 4 * (sampler.frames_per_video + 2 * sampler.clips_per_video) + 4 < batch.window.numel() / 2


@pytest.mark.parametrize("speed", [0.5, 1.0, 2.0, 3.0])
def test_the_lattice_plays_the_clip_at_its_speed(speed: float) -> None:
    times = torch.arange(100).float()
    lattice = clip_lattice(times, 0, 99, windows=6, context=4, speed=speed, generator=torch.Generator().manual_seed(1))
    assert len(lattice) == 6 + 4 - 1
    steps = lattice.diff().float()
    start = int((lattice == 0).sum()) - 1 if lattice[0] == 0 else 0  # clamped at the initial frame: repeats
    assert steps[start:].mean() == pytest.approx(speed, abs=0.5)
    assert steps.min() >= 0 and steps.max() <= int(speed) + 1
    # clamped at the initial frame: a clip that starts at frame 10 with i = 10 repeats frame 10 before it
    lattice = clip_lattice(times, 10, 99, windows=1, context=4, speed=1.0, generator=torch.Generator().manual_seed(0))
    assert lattice.min() >= 10


def test_speeds_are_drawn_from_the_range() -> None:
    sampler = WindowSampler(_ids(1, 200), context=3, windows_per_clip=10, videos_per_batch=1, clips_per_video=1,
                            speed_min=2.0, speed_max=2.0, p_first=1.0, p_last=1.0)
    batch = sampler.sample(torch.Generator().manual_seed(0))
    t, _ = _decode(batch)
    steps = t[batch.window[:, -1]].diff()
    assert set(steps.tolist()) <= {2} or (t[batch.window[:, -1]] == 199).any()  # every second frame


def test_failed_windows_start_at_their_video_and_aim_at_a_demo_goal() -> None:
    demos = [as_demonstration(moving_square(20 + i, 16), f"d{i}") for i in range(3)]
    failed = [as_demonstration(f, f"f{i}") for i, f in enumerate(failed_squares(2, size=16))]
    sampler = WindowSampler(demos, failed, context=4, windows_per_clip=5, videos_per_batch=2,
                            negative_videos_per_batch=2)
    batch = sampler.sample(torch.Generator().manual_seed(0))
    assert batch.failed.sum() == 2 * 5 and (batch.progress[batch.failed] == 0).all()
    ends = torch.stack([d.frames[-1] for d in demos])
    for goal in batch.goal[batch.failed]:  # a demonstration's last frame
        assert any(torch.equal(batch.frames[goal], e) for e in ends)
    failed_first = torch.stack([f.frames[0] for f in failed])
    for initial in batch.initial[batch.failed]:
        assert any(torch.equal(batch.frames[initial], f) for f in failed_first)


def test_refuses_bad_speeds_and_empty_input() -> None:
    with pytest.raises(ValueError, match="speed"):
        WindowSampler(_ids(1), speed_min=2.0, speed_max=1.0)
    with pytest.raises(ValueError, match="3 or more frames"):
        WindowSampler(_ids(1, t=2))
