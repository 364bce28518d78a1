"""Training batches of the rank, success, temporal-distance (clips) and goal-distance (VIP quadruples) heads.

`ClipSampler` draws short clips: a few frames of each of a few demonstrations (sorted, always with the first
and last frame, like the triplet sampler), plus clips of failed videos (`--negatives`) when given. The rank,
temporal-distance and success heads encode every frame once and form their pairs or labels from `video`,
`time` and `failed`.

`VIPSampler` draws the (o_0, o_k, o_k+1, g) quadruples of value-implicit pre-training (Ma et al. 2022), as
the reference implementation does (facebookresearch/vip, `VIPBuffer._sample`: a sub-trajectory start s and
end e > s of one demonstration, a frame k in [s, e), its successor k + 1, and the reward r = [k == e] - 1),
except that s, e and k are drawn among a few sampled frames of the video, so that many quadruples share the
frames encoded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from video2reward.rewards.base import BatchPlan
from video2reward.video.dataset import Demonstration


def clip_positions(length: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """min(n, length) distinct sorted positions in [0, length), always with 0 and length - 1 (length >= 2)."""
    n = min(n, length)
    middle = torch.randperm(length - 2, generator=generator)[: n - 2] + 1
    return torch.cat([torch.tensor([0]), middle.sort().values, torch.tensor([length - 1])])


@dataclass
class ClipBatch:
    frames: torch.Tensor  # (N, 3, S, S) uint8 (the caller converts to float in [0, 1] and augments)
    video: torch.Tensor  # (N,) long: which clip of this batch a frame is from (pairs stay within a clip)
    time: torch.Tensor  # (N,) float: normalised time of the frame in its video, in [0, 1]
    failed: torch.Tensor  # (N,) bool: the frame is from a failed video (--negatives), in its failure part
    # (N,) float: a failed frame's ceiling, the demonstration moment it copies (a synthetic near miss), -1 where
    # unknown (a real failed video; the head picks its own); unused for the other frames
    ceiling: torch.Tensor = field(default_factory=lambda: torch.zeros(0))

    def to(self, device: torch.device) -> "ClipBatch":
        return ClipBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


@dataclass
class ClipSampler:
    demos: list[Demonstration]
    negatives: list[Demonstration] = field(default_factory=list)
    frames_per_video: int = 16
    videos_per_batch: int = 8
    negative_videos_per_batch: int = 2  # clips of failed videos per batch (when there are any)

    def __post_init__(self) -> None:
        self.demos = [d for d in self.demos if d.frames.shape[0] >= 2]
        self.negatives = [d for d in self.negatives if d.frames.shape[0] >= 2]
        if not self.demos:
            raise ValueError("ClipSampler needs at least one demonstration with 2 or more frames")

    def sample(self, generator: torch.Generator) -> ClipBatch:
        clips = [(self.demos[v], False) for v in
                 torch.randint(len(self.demos), (self.videos_per_batch,), generator=generator).tolist()]
        if self.negatives and self.negative_videos_per_batch > 0:
            picks = torch.randint(len(self.negatives), (self.negative_videos_per_batch,), generator=generator)
            clips += [(self.negatives[v], True) for v in picks.tolist()]
        frames, video, time, failed, ceiling = [], [], [], [], []
        for index, (demo, is_failed) in enumerate(clips):
            kept = clip_positions(demo.frames.shape[0], self.frames_per_video, generator)  # (F,)
            frames.append(demo.frames[kept])
            video.append(torch.full((len(kept),), index, dtype=torch.long))
            copied = demo.source_progress
            # a synthetic near miss's frames before its failure are its demonstration's, at the time they show
            time.append((copied if copied is not None else demo.progress)[kept].float())
            failed.append(is_failed & (kept >= demo.failed_from))
            ceiling.append(copied[kept].float() if copied is not None else torch.full((len(kept),), -1.0))
        return ClipBatch(torch.cat(frames), torch.cat(video), torch.cat(time), torch.cat(failed), torch.cat(ceiling))


@dataclass
class VIPBatch:
    frames: torch.Tensor  # (N, 3, S, S) uint8: every frame to encode once
    start: torch.Tensor  # (Q,) long: index into frames of o_0 (the sub-trajectory's first frame)
    current: torch.Tensor  # (Q,) long: o_k
    next: torch.Tensor  # (Q,) long: o_k+1, the frame right after o_k in the demonstration
    goal: torch.Tensor  # (Q,) long: g (the sub-trajectory's last frame)
    reward: torch.Tensor  # (Q,) float: r = [o_k == g] - 1 (always -1 here, since k < e)

    def to(self, device: torch.device) -> "VIPBatch":
        return VIPBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


@dataclass
class VIPSampler:
    """Like the triplet sampler, frames are shared: each sampled demonstration gives `frames_per_video`
    sorted frames (first and last included) and the frame right after each, and `quadruples_per_video`
    quadruples are formed among them: s < e among the sampled frames, k with s <= k < e, and k's successor."""

    demos: list[Demonstration]
    frames_per_video: int = 16
    videos_per_batch: int = 4
    quadruples_per_video: int = 48

    def __post_init__(self) -> None:
        self.demos = [d for d in self.demos if d.frames.shape[0] >= 3]
        if not self.demos:
            raise ValueError("VIPSampler needs at least one demonstration with 3 or more frames")

    def sample(self, generator: torch.Generator) -> VIPBatch:
        q = self.quadruples_per_video
        picks = torch.randint(len(self.demos), (self.videos_per_batch,), generator=generator).tolist()
        frames, start, current, nxt, goal = [], [], [], [], []
        offset = 0
        for v in picks:
            demo = self.demos[v]
            length = demo.frames.shape[0]
            kept = clip_positions(length, self.frames_per_video, generator)  # (F,) sorted, first and last
            n = len(kept)
            frames += [demo.frames[kept], demo.frames[(kept + 1).clamp(max=length - 1)]]  # frames, successors
            u = torch.rand(q, 3, generator=generator)
            s = (u[:, 0] * (n - 1)).long()  # start rank in [0, n - 2]
            e = s + 1 + (u[:, 1] * (n - 1 - s)).long()  # end rank in [s + 1, n - 1]
            k = s + (u[:, 2] * (e - s)).long()  # o_k rank in [s, e - 1]
            start.append(offset + s)
            goal.append(offset + e)
            current.append(offset + k)
            nxt.append(offset + n + k)  # k's successor, at or before the goal frame
            offset += 2 * n
        k_all = torch.cat(current)
        reward = -torch.ones(k_all.shape)  # r = [o_k == g] - 1, and o_k is never g (k < e)
        return VIPBatch(torch.cat(frames), torch.cat(start), k_all, torch.cat(nxt), torch.cat(goal), reward)


def clip_sampler(options: object, plan: BatchPlan, demos: Sequence[Demonstration],
                 negatives: Sequence[Demonstration]) -> ClipSampler:
    """Clips of the demonstrations (and of failed videos, when given): the rank, success and temporal-distance
    heads' batches (the heads' options do not change them)."""
    return ClipSampler(list(demos), list(negatives), frames_per_video=plan.frames_per_video,
                       videos_per_batch=max(1, plan.batch_size // plan.frames_per_video),
                       negative_videos_per_batch=plan.negative_videos)


def vip_sampler(options: object, plan: BatchPlan, demos: Sequence[Demonstration],
                negatives: Sequence[Demonstration]) -> VIPSampler:
    """VIP quadruples of the demonstrations: the goal-distance head's batches (it learns from no failed video)."""
    per_video = 2 * plan.frames_per_video  # each sampled frame and the frame after it
    return VIPSampler(list(demos), frames_per_video=plan.frames_per_video,
                      videos_per_batch=max(1, plan.batch_size // per_video),
                      quadruples_per_video=plan.items_per_video)
