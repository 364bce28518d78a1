"""Demonstrations in memory: every training video decoded once at the model's size into a uint8 tensor,
with the time index each kept frame had in the original video."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from video2reward.core.progress import progress_bar
from video2reward.errors import ConfigError, VideoError
from video2reward.video.io import VideoSource, find_videos, iter_frames, probe
from video2reward.video.lerobot import DatasetSelection


@dataclass
class Demonstration:
    name: str
    frames: torch.Tensor  # (T, 3, S, S) uint8
    times: torch.Tensor  # (T,) float: original frame index of each kept frame
    num_frames: int  # frames in the original video
    fps: float = 0.0  # the video's frame rate (0: not known)
    width: int = 0  # native frame size, before fitting to the model's square
    height: int = 0
    # A failed video's frames from this kept position on are the failure (0: all of them; a synthetic near miss
    # starts as its demonstration did, training/synthetic_negatives.py)
    failed_from: int = 0
    # (T,) the moment of a demonstration each frame shows, in normalised time (synthetic near misses only)
    source_progress: torch.Tensor | None = None

    @property
    def progress(self) -> torch.Tensor:
        """(T,) normalised time in [0, 1]: 0 at the first frame, 1 at the last."""
        return self.times / max(self.num_frames - 1, 1)


def even_subsample(num_frames: int, keep: int) -> np.ndarray:
    """Indices of `keep` frames spread evenly over `num_frames`, always including the first and last."""
    if num_frames <= keep:
        return np.arange(num_frames)
    return np.unique(np.round(np.linspace(0, num_frames - 1, keep)).astype(np.int64))


def load_video_tensor(source: VideoSource, size: int, max_frames: int, fit: str = "pad") -> Demonstration:
    """Decode `source` at `size` (small: 12 KB a frame at 64 px), then keep at most `max_frames` evenly
    spaced frames."""
    chunks = [torch.from_numpy(chunk) for chunk in iter_frames(source, size, fit=fit)]
    frames = torch.cat(chunks).permute(0, 3, 1, 2).contiguous()  # (T, 3, S, S)
    total = frames.shape[0]
    keep = even_subsample(total, max_frames)
    info = probe(source)
    return Demonstration(source.name, frames[keep], torch.from_numpy(keep).float(), total, info.fps, info.width,
                         info.height)


def load_demonstrations(
    paths: Sequence[str | os.PathLike],
    size: int,
    max_frames: int = 400,
    skip_bad: bool = False,
    progress: bool = True,
    fit: str = "pad",
    select: DatasetSelection | None = None,
) -> tuple[list[Demonstration], list[tuple[str, str]]]:
    """All videos under `paths` (LeRobotDataset episodes as `select` says) as demonstrations; returns (demos,
    skipped) where skipped lists (video, reason) for files that failed to decode when `skip_bad` is set."""
    sources = find_videos(paths, select)
    demos: list[Demonstration] = []
    skipped: list[tuple[str, str]] = []
    for source in progress_bar(sources, desc="decoding videos", unit="video", disable=not progress, leave=False):
        try:
            demos.append(load_video_tensor(source, size, max_frames, fit))
        except VideoError as exc:
            if not skip_bad:
                raise
            skipped.append((source.name, str(exc)))
    usable = [d for d in demos if d.frames.shape[0] >= 3]
    if not usable:
        raise ConfigError(
            f"no usable demonstration in {', '.join(map(str, paths))}: training needs at least one video "
            f"with 3 or more frames (found {len(demos)} video(s), {len(skipped)} skipped)"
        )
    return demos, skipped
