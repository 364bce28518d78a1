"""Training batches of frame windows for the temporal head (rewards/temporal.py): windows of K frames at random
offsets and random playback speeds, sharing their frames.

One clip of a demonstration: a playback speed s drawn log-uniformly from [speed_min, speed_max] (frame-skip
augmentation: s = 2 shows every second frame, as a demonstrator twice as fast would; s = 0.5 shows each frame
twice, as one half as fast would) and `windows_per_clip` consecutive current frames c_j = t_0 + j s at a random
offset t_0, each with the window c_j - (K-1) s, ..., c_j - s, c_j. All those windows lie on one lattice of
`windows_per_clip + K - 1` frames, so a clip's frames are encoded once and every window indexes into them.
Each window then gets its own initial frame i <= c and goal g >= c among the frames the video already gave
(its clips' frames, its first and last frame: the first / last half of the time each, as the triplet sampler
does), so a batch holds as many (initial, goal) pairs as windows at no extra encoding. Window frames before
the initial frame are the initial frame (scoring pads a video's first frames with its first frame the same
way). A window's target is the progress of its current frame between i and g: p = (t_c - t_i) / (t_g - t_i),
in original frame indices, whatever the speed.

Failed videos (`--negatives`) give windows from their own first frame to their end, with a demonstration's
last frame as the goal, marked `failed` for the push-back term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from video2reward.video.dataset import Demonstration


@dataclass
class WindowBatch:
    frames: torch.Tensor  # (N, 3, S, S) uint8: every frame to encode once
    window: torch.Tensor  # (W, K) long: indices into frames, oldest first, the current frame last
    initial: torch.Tensor  # (W,) long
    goal: torch.Tensor  # (W,) long
    progress: torch.Tensor  # (W,) float target in [0, 1] (0 and unused for failed windows)
    gap: torch.Tensor  # (W,) float: t_g - t_i in original frames (the target std shrinks with it)
    failed: torch.Tensor  # (W,) bool: the window is from a failed video

    def to(self, device: torch.device) -> "WindowBatch":
        return WindowBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def clip_lattice(times: torch.Tensor, i: int, g: int, windows: int, context: int, speed: float,
                 generator: torch.Generator) -> torch.Tensor:
    """Positions (windows + context - 1,) of kept frames on one clip's lattice t_0 + m s, m = -(K-1) .. W-1,
    between kept positions i and g of a video whose kept frames have original indices `times` (sorted).
    Each lattice time is rounded down to the last kept frame at or before it and clamped to [i, g]."""
    t_i, t_g = float(times[i]), float(times[g])
    room = max(t_g - t_i - (windows - 1) * speed, 0.0)  # the currents c_j = t_0 + j s stay within [t_i, t_g]
    t0 = t_i + float(torch.rand((), generator=generator)) * room
    m = torch.arange(-(context - 1), windows, dtype=torch.float64)
    target = (t0 + m * speed).clamp(t_i, t_g)  # (W + K - 1,)
    position = torch.searchsorted(times.double(), target, right=True) - 1  # last kept frame at or before
    return position.clamp(i, g)


@dataclass
class WindowSampler:
    demos: list[Demonstration]
    negatives: list[Demonstration] = field(default_factory=list)
    context: int = 8  # K frames per window
    clips_per_video: int = 2
    windows_per_clip: int = 8  # consecutive current frames per clip (their windows share frames)
    videos_per_batch: int = 4
    negative_videos_per_batch: int = 2  # failed videos per batch (when there are any), one clip each
    speed_min: float = 0.5  # playback speeds are drawn log-uniformly from [speed_min, speed_max]
    speed_max: float = 2.0
    p_first: float = 0.5  # chance that the initial frame is the video's first frame
    p_last: float = 0.5  # chance that the goal is the video's last frame
    p_other_goal: float = 0.5  # chance that a last-frame goal is swapped for another demo's last frame

    def __post_init__(self) -> None:
        self.demos = [d for d in self.demos if d.frames.shape[0] >= 3]
        self.negatives = [d for d in self.negatives if d.frames.shape[0] >= 2]
        if not self.demos:
            raise ValueError("WindowSampler needs at least one demonstration with 3 or more frames")
        if not 0 < self.speed_min <= self.speed_max:
            raise ValueError(f"need 0 < speed_min <= speed_max, got {self.speed_min}, {self.speed_max}")

    def _speed(self, generator: torch.Generator) -> float:
        lo, hi = math.log(self.speed_min), math.log(self.speed_max)
        return math.exp(lo + float(torch.rand((), generator=generator)) * (hi - lo))

    def _span(self, kept: torch.Tensor, c: int, last: int, generator: torch.Generator) -> tuple[int, int]:
        """(i, g) for a window whose current frame is at kept position c: i <= c among the clip frames already
        sampled (the video's first frame with chance p_first), g >= c, g > i (its last frame with chance p_last),
        so that every window has its own (initial, goal) pair and no extra frame to encode."""
        u = torch.rand(4, generator=generator).tolist()
        lower = kept[kept < c] if c > 0 else kept[:1]
        i = 0 if u[0] < self.p_first else int(lower[int(u[1] * len(lower))])
        upper = kept[(kept >= c) & (kept > i)]
        g = last if u[2] < self.p_last or len(upper) == 0 else int(upper[int(u[3] * len(upper))])
        return i, g

    def sample(self, generator: torch.Generator) -> WindowBatch:
        frames, window, initial, goal, is_last, progress, gap, failed = [], [], [], [], [], [], [], []
        offset = 0
        clips: list[tuple[Demonstration, bool]] = [(self.demos[v], False) for v in torch.randint(
            len(self.demos), (self.videos_per_batch,), generator=generator).tolist()]
        if self.negatives and self.negative_videos_per_batch > 0:
            clips += [(self.negatives[v], True) for v in torch.randint(
                len(self.negatives), (self.negative_videos_per_batch,), generator=generator).tolist()]
        for video, is_failed in clips:
            length, times = video.frames.shape[0], video.times
            lattices = [clip_lattice(times, 0, length - 1, self.windows_per_clip, self.context,
                                     self._speed(generator), generator)
                        for _ in range(1 if is_failed else self.clips_per_video)]
            kept, inverse = torch.unique(torch.cat([torch.tensor([0, length - 1]), *lattices]), return_inverse=True)
            frames.append(video.frames[kept])  # each frame of the video's clips once
            local = dict(zip(kept.tolist(), range(offset, offset + len(kept))))
            for win in (lattice.unfold(0, self.context, 1) for lattice in lattices):  # (W, K) kept positions
                for row in win.tolist():
                    c = row[-1]
                    if is_failed and c < video.failed_from:  # a synthetic near miss before its failure
                        continue
                    i, g = (0, length - 1) if is_failed else self._span(kept, c, length - 1, generator)
                    window.append([local[max(p, i)] for p in row])  # frames before the initial are the initial
                    initial.append(local[i])
                    goal.append(local[g])
                    is_last.append(g == length - 1 and not is_failed)
                    t_i, t_g = float(times[i]), float(times[g])
                    progress.append(0.0 if is_failed else (float(times[c]) - t_i) / (t_g - t_i))  # (t_c-t_i)/(t_g-t_i)
                    gap.append(t_g - t_i)
                    failed.append(is_failed)
            offset += len(kept)
        goal_t, failed_t = torch.tensor(goal), torch.tensor(failed)
        # Final frames of random demonstrations, appended after the sampled frames, as goal images: a failed
        # window's goal always, a demonstration window's last-frame goal with chance p_other_goal.
        ends = torch.randint(len(self.demos), (self.videos_per_batch,), generator=generator).tolist()
        frames.append(torch.stack([self.demos[e].frames[-1] for e in ends]))
        swap = failed_t | (torch.tensor(is_last) & (torch.rand(goal_t.shape, generator=generator) < self.p_other_goal))
        other = offset + torch.randint(len(ends), goal_t.shape, generator=generator)
        return WindowBatch(torch.cat(frames), torch.tensor(window), torch.tensor(initial),
                           torch.where(swap, other, goal_t), torch.tensor(progress), torch.tensor(gap), failed_t)

    @property
    def frames_per_video(self) -> int:
        """Frames one demonstration contributes to a batch at most: its clips' lattices and its first and last
        frame (fewer when they coincide)."""
        return self.clips_per_video * (self.windows_per_clip + self.context - 1) + 2
