"""Training batches of (initial, current, goal) frame triplets that share their frames.

One batch draws a few frames from each of a few demonstrations; the model encodes those frames once and
forms many triplets i < c < g from them by indexing. The progress target of a triplet is the normalised
time of the current frame between the initial and the goal:  p = (t_c - t_i) / (t_g - t_i).

At scoring time the initial frame is the scored video's first frame and the goal is the end of a
successful demonstration, so triplets start at the first frame and end at the last frame often, and
a goal at the last frame is sometimes swapped for the last frame of *another* demonstration (which
teaches the model that 'goal' means 'the task done', not 'this exact image').
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from video2reward.rewards.base import earlier_frames
from video2reward.video.dataset import Demonstration


@dataclass
class TripletBatch:
    frames: torch.Tensor  # (N, 3, S, S) uint8: every frame to encode once
    initial: torch.Tensor  # (K,) long: index into frames
    current: torch.Tensor  # (K,) long
    goal: torch.Tensor  # (K,) long
    previous: torch.Tensor  # (K,) long: the frame `motion_gap` frames before current (its motion partner)
    progress: torch.Tensor  # (K,) float target in [0, 1]
    gap: torch.Tensor  # (K,) float: t_g - t_i in original frames (the target std shrinks with it)
    # (K,) bool: the triplet's current frame is from a failed video (see FailedTripletSampler); empty: none is
    failed: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))

    def to(self, device: torch.device) -> "TripletBatch":
        return TripletBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


@dataclass
class TripletSampler:
    demos: list[Demonstration]
    frames_per_video: int = 16
    videos_per_batch: int = 8
    triplets_per_video: int = 48
    p_first: float = 0.5  # chance that the initial frame is the video's first frame
    p_last: float = 0.5  # chance that the goal is the video's last frame
    p_other_goal: float = 0.5  # chance that a last-frame goal is swapped for another demo's last frame
    motion_gap: int = 0  # > 0: also draw, for every frame, the frame this many (original) frames earlier

    def __post_init__(self) -> None:
        self.demos = [d for d in self.demos if d.frames.shape[0] >= 3]
        if not self.demos:
            raise ValueError("TripletSampler needs at least one demonstration with 3 or more frames")

    def sample(self, generator: torch.Generator) -> TripletBatch:
        picks = torch.randint(len(self.demos), (self.videos_per_batch,), generator=generator).tolist()
        frames, initial, current, previous, goal, is_last, progress, gap = [], [], [], [], [], [], [], []
        offset = 0
        for v in picks:
            demo = self.demos[v]
            kept = self._frame_positions(demo.frames.shape[0], generator)  # sorted, includes first and last
            frames.append(demo.frames[kept])
            times = demo.times[kept]  # (F,)
            i, c, g = self._triplets(len(kept), generator)  # (K,) positions into kept, i < c < g
            initial.append(offset + i)
            current.append(offset + c)
            goal.append(offset + g)
            is_last.append(g == len(kept) - 1)
            if self.motion_gap > 0:  # motion partners of the kept frames, stored right after them
                frames.append(demo.frames[motion_partners(demo.times, kept, self.motion_gap)])
                previous.append(offset + len(kept) + c)
            else:
                previous.append(offset + c)
            t_i, t_c, t_g = times[i], times[c], times[g]
            progress.append((t_c - t_i) / (t_g - t_i))  # p = (t_c - t_i) / (t_g - t_i)
            gap.append(t_g - t_i)
            offset += len(kept) * (2 if self.motion_gap > 0 else 1)
        goal_t = torch.cat(goal)
        # Final frames of random demonstrations, appended after the sampled frames, as goal images.
        ends = torch.randint(len(self.demos), (self.videos_per_batch,), generator=generator).tolist()
        frames.append(torch.stack([self.demos[e].frames[-1] for e in ends]))
        swap = torch.cat(is_last) & (torch.rand(goal_t.shape, generator=generator) < self.p_other_goal)
        other = offset + torch.randint(len(ends), goal_t.shape, generator=generator)
        goal_t = torch.where(swap, other, goal_t)
        return TripletBatch(torch.cat(frames), torch.cat(initial), torch.cat(current), goal_t, torch.cat(previous),
                            torch.cat(progress), torch.cat(gap))

    def _frame_positions(self, length: int, generator: torch.Generator) -> torch.Tensor:
        """`frames_per_video` distinct sorted positions in [0, length), always with 0 and length - 1."""
        n = min(self.frames_per_video, length)
        middle = torch.randperm(length - 2, generator=generator)[: n - 2] + 1
        return torch.cat([torch.tensor([0]), middle.sort().values, torch.tensor([length - 1])])

    def _triplets(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """K position triplets i < c < g among n sorted positions."""
        k = self.triplets_per_video
        ranks = torch.rand(k, n, generator=generator).argsort(dim=1)[:, :3].sort(dim=1).values  # (K, 3)
        i, c, g = ranks.unbind(dim=1)
        first = torch.rand(k, generator=generator) < self.p_first
        last = torch.rand(k, generator=generator) < self.p_last
        i = torch.where(first, torch.zeros_like(i), i)  # position 0 is the video's first frame
        g = torch.where(last, torch.full_like(g, n - 1), g)  # position n-1 is the video's last frame
        # Re-draw the current frame strictly between i and g (both may have moved outward).
        c = i + 1 + (torch.rand(k, generator=generator) * (g - i - 1)).long()
        return i, c, g


def kept_earlier_frames(times: torch.Tensor, positions: torch.Tensor, motion_gap: int, context: int = 1
                        ) -> torch.Tensor | None:
    """For frames at `positions` of a video whose kept frames have original indices `times` (sorted), the
    positions of the earlier frames their rewards read (`earlier_frames`, the rule scoring uses), each the last
    kept frame at or before it, clamped at the first frame: (F,) with a motion gap, (F, K-1) with a context K > 1,
    None without either. On a video with every frame kept, exactly the frames scoring reads."""
    target = earlier_frames(times[positions], motion_gap, context)
    if target is None:
        return None
    partner = torch.searchsorted(times, target.clamp(min=0).reshape(-1), right=True) - 1  # last kept at or before
    return partner.clamp(min=0).reshape(target.shape)


def motion_partners(times: torch.Tensor, positions: torch.Tensor, gap: int) -> torch.Tensor:
    """The motion partner, `gap` frames earlier, of the frames at `positions` (see kept_earlier_frames)."""
    return kept_earlier_frames(times, positions, gap)


@dataclass
class FailedTripletSampler:
    """The triplets of `expert`, plus triplets from failed videos (`--negatives`), marked in `failed`: the
    failed video's first frame as the initial frame (as at scoring time), one of its later frames as the
    current frame, and the last frame of a random demonstration (one of the batch's goal images) as the
    goal. Their `progress` is 0 and unused: the progress head pushes their prediction down instead. A video
    whose failure starts later (`failed_from`, a synthetic near miss) gives current frames from its failure only."""

    expert: TripletSampler
    negatives: list[Demonstration]
    videos_per_batch: int = 2  # failed videos per batch; each gives expert.triplets_per_video triplets

    def __post_init__(self) -> None:
        self.negatives = [d for d in self.negatives if d.frames.shape[0] >= 2]
        if not self.negatives:
            raise ValueError("FailedTripletSampler needs at least one failed video with 2 or more frames")

    def sample(self, generator: torch.Generator) -> TripletBatch:
        batch = self.expert.sample(generator)
        k_expert = batch.current.numel()
        n_goals = self.expert.videos_per_batch  # the batch's last frames are its goal images
        offset = batch.frames.shape[0]
        gap = self.expert.motion_gap
        frames, initial, current, previous, goal = [batch.frames], [], [], [], []
        k = self.expert.triplets_per_video
        for v in torch.randint(len(self.negatives), (self.videos_per_batch,), generator=generator).tolist():
            video = self.negatives[v]
            kept = self.expert._frame_positions(video.frames.shape[0], generator)  # (F,) with first and last
            frames.append(video.frames[kept])
            failing = (kept >= max(1, video.failed_from)).nonzero().squeeze(1)  # the failure: after the first frame
            if failing.numel() == 0:
                failing = torch.tensor([len(kept) - 1])
            c = failing[torch.randint(len(failing), (k,), generator=generator)]  # (k,) kept positions
            initial.append(torch.full((k,), offset))
            current.append(offset + c)
            if gap > 0:  # motion partners of the kept frames, stored right after them
                frames.append(video.frames[motion_partners(video.times, kept, gap)])
                previous.append(offset + len(kept) + c)
            else:
                previous.append(offset + c)
            goal.append(batch.frames.shape[0] - n_goals + torch.randint(n_goals, (k,), generator=generator))
            offset += len(kept) * (2 if gap > 0 else 1)
        k_failed = sum(len(c) for c in current)
        return TripletBatch(
            torch.cat(frames), torch.cat([batch.initial, *initial]), torch.cat([batch.current, *current]),
            torch.cat([batch.goal, *goal]), torch.cat([batch.previous, *previous]),
            torch.cat([batch.progress, torch.zeros(k_failed)]),
            torch.cat([batch.gap, torch.ones(k_failed)]),  # unused for failed triplets
            torch.cat([torch.zeros(k_expert, dtype=torch.bool), torch.ones(k_failed, dtype=torch.bool)]),
        )
