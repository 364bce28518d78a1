"""Synchronised views for multi-view time-contrastive learning (TCN, Sermanet et al. 2018).

`v2r pretrain --method tcn --views DIR1 DIR2 ...`: each DIR holds the same episodes filmed by another camera,
matched by file name (DIR1/ep_000.mp4 and DIR2/ep_000.mp4 are one episode seen twice, frame t of one at the
same moment as frame t of the other). Multi-view TCN makes the two views of one moment agree and moments of the
same episode apart: what is left in the embedding is *what happens*, not where the camera stands.

`MultiViewSampler` draws `FrameBatch`es that the single-view `TCN` objective reads unchanged: for each drawn
(episode, moment) one view is the anchor and the same moment in another view (drawn per frame) is its
`neighbour`, stored in the second half of the batch; `video` is the episode (so the episode's other moments,
from any view, and all other episodes are the negatives) and `time` its normalised time. Views of one episode
with different frame counts (a camera at another frame rate) are matched by normalised time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from video2reward.errors import ConfigError
from video2reward.video.dataset import Demonstration
from video2reward.video.frame_sampler import FrameBatch


def group_views(views: Sequence[Sequence[Demonstration]], folders: Sequence[str | os.PathLike]) -> list[list[Demonstration]]:
    """Episodes as lists of their views: demonstrations of each view folder matched by file name (path relative
    to that folder). Every folder must hold the same names; errors name the folder and the file that is missing."""
    if len(views) < 2:
        raise ConfigError("--views needs two or more folders of the same episodes, one folder per camera")
    keyed = []
    for demos, folder in zip(views, folders):
        by_name = {}
        for d in demos:  # d.name is the folder as given joined with the file's path inside it
            by_name[Path(os.path.relpath(d.name, folder)).as_posix()] = d
        keyed.append(by_name)
    names = sorted(keyed[0])
    for by_name, folder in zip(keyed[1:], folders[1:]):
        missing = sorted(set(names) ^ set(by_name))
        if missing:
            raise ConfigError(f"--views: {folder} and {folders[0]} do not hold the same episodes ({missing[0]} is in "
                              f"only one of them); give each camera's folder the same file names")
    return [[by_name[name] for by_name in keyed] for name in names]


@dataclass
class MultiViewSampler:
    """Batches of (anchor view, other view) pairs of the same moments; see the module docstring."""

    episodes: list[list[Demonstration]]  # episode -> its views (two or more, same moments)
    frames_per_video: int = 8
    videos_per_batch: int = 8

    def __post_init__(self) -> None:
        if not self.episodes or any(len(views) < 2 for views in self.episodes):
            raise ValueError("MultiViewSampler needs episodes with two or more views each")
        if any(v.frames.shape[0] < 1 for views in self.episodes for v in views):
            raise ValueError("MultiViewSampler: every view needs at least one frame")

    @property
    def batch_frames(self) -> int:
        return 2 * self.frames_per_video * self.videos_per_batch

    @staticmethod
    def _index_at(view: Demonstration, time: float) -> int:
        """The kept frame of `view` nearest to normalised time `time`."""
        return int((view.progress - time).abs().argmin())

    def sample(self, generator: torch.Generator) -> FrameBatch:
        picks = torch.randint(len(self.episodes), (self.videos_per_batch,), generator=generator).tolist()
        anchors, twins, episode, times = [], [], [], []
        for e in picks:
            views = self.episodes[e]
            first = torch.randint(len(views), (self.frames_per_video,), generator=generator)
            # the other view: one of the remaining len(views) - 1, uniformly
            other = (first + torch.randint(1, len(views), (self.frames_per_video,), generator=generator)) % len(views)
            for a, b in zip(first.tolist(), other.tolist()):
                t_index = int(torch.randint(views[a].frames.shape[0], (1,), generator=generator))
                t = float(views[a].progress[t_index])
                anchors.append(views[a].frames[t_index])
                twins.append(views[b].frames[self._index_at(views[b], t)])
                episode.append(e)
                times.append(t)
        n = len(anchors)
        frames = torch.stack(anchors + twins)  # (2N, 3, S, S) uint8: anchors, then their twins
        video = torch.tensor(episode + episode, dtype=torch.long)  # (2N,)
        time = torch.tensor(times + times, dtype=torch.float32)  # (2N,)
        neighbour = torch.cat([torch.arange(n) + n, torch.arange(n)])  # (2N,): i <-> its other view
        return FrameBatch(frames, video, time, neighbour)
