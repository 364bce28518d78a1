"""Batches of single frames for self-supervised pretraining, with where each frame came from.

One batch draws `frames_per_video` frames at random times from each of `videos_per_batch` random
demonstrations. With `neighbour_window` > 0 every drawn frame also brings a *temporal neighbour*: a frame of
the same video at most that many (kept) frames away, stored in the second half of the batch. Objectives that
need time (time-contrastive learning) read `video`, `time` and `neighbour`; the others use the frames only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from video2reward.video.dataset import Demonstration


@dataclass
class FrameBatch:
    frames: torch.Tensor  # (N, 3, S, S) uint8
    video: torch.Tensor  # (N,) long: which demonstration each frame is from
    time: torch.Tensor  # (N,) float: the frame's normalised time in its video, in [0, 1]
    neighbour: torch.Tensor  # (N,) long: index of a temporal neighbour in this batch (itself when none drawn)

    def to(self, device: torch.device) -> "FrameBatch":
        return FrameBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


@dataclass
class FrameSampler:
    demos: list[Demonstration]
    frames_per_video: int = 16
    videos_per_batch: int = 8
    neighbour_window: int = 0  # > 0: each frame also brings a neighbour 1..window kept frames away

    def __post_init__(self) -> None:
        self.demos = [d for d in self.demos if d.frames.shape[0] >= 1]
        if not self.demos:
            raise ValueError("FrameSampler needs at least one demonstration with a frame")

    @property
    def batch_frames(self) -> int:
        return self.frames_per_video * self.videos_per_batch * (2 if self.neighbour_window > 0 else 1)

    def sample(self, generator: torch.Generator) -> FrameBatch:
        picks = torch.randint(len(self.demos), (self.videos_per_batch,), generator=generator).tolist()
        positions, videos = [], []
        for v in picks:
            length = self.demos[v].frames.shape[0]
            positions.append(torch.randint(length, (self.frames_per_video,), generator=generator))
            videos.append(torch.full((self.frames_per_video,), v, dtype=torch.long))
        pos = torch.cat(positions)  # (N,)
        vid = torch.cat(videos)  # (N,)
        n = pos.numel()
        neighbour = torch.arange(n)
        if self.neighbour_window > 0:
            lengths = torch.tensor([self.demos[v].frames.shape[0] for v in vid.tolist()])
            step = torch.randint(1, self.neighbour_window + 1, (n,), generator=generator)
            sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1, 1)
            other = pos + sign * step
            other = torch.where((other < 0) | (other >= lengths), pos - sign * step, other)  # reflect at the ends
            other = other.clamp(torch.zeros_like(lengths), lengths - 1)
            pos = torch.cat([pos, other])
            vid = torch.cat([vid, vid])
            neighbour = torch.cat([torch.arange(n) + n, torch.arange(n)])
        frames = torch.stack([self.demos[v].frames[p] for v, p in zip(vid.tolist(), pos.tolist())])
        time = torch.stack([self.demos[v].progress[p] for v, p in zip(vid.tolist(), pos.tolist())]).float()
        return FrameBatch(frames, vid, time, neighbour)
