"""Per-frame progress as a parquet table (`v2r score ... --out progress.parquet`), one row per decoded frame, in
the layout LeRobot's reward-weighted behaviour cloning (RA-BC) looks frames up in: `index` (the dataset's global
frame index), `episode_index`, `frame_index`, and the progress columns.

    index, episode_index, frame_index : int64   the frame, as in the dataset's data/*.parquet
    timestamp                          : float32 frame_index / fps, seconds from the episode's start
    progress                           : float32 the reward (mu): predicted progress, 0 at the start, 1 at the goal
    progress_sigma                     : float32 its standard deviation
    success_prob                       : float32 the success head's probability (null without one)
    progress_sparse, progress_dense    : float32 progress clipped to [0, 1], under the names LeRobot's RA-BC reads
                                                 (lerobot/rewards/sarm/rabc.py: `progress_{head_mode}`, looked up
                                                 by `index`; either head mode finds it)
    video                              : string  the episode's or video's name, as in the JSONL

For plain video files and frame folders (no dataset), each video is one episode numbered in `find_videos` order
and `index` counts frames across them. Rows are written one video at a time (memory flat in dataset size) to a
temporary file that replaces OUT only when every video is scored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from video2reward.inference.model import RewardModel
from video2reward.inference.scoring import (
    ScoredVideo,
    ScoreReport,
    atomic_output,
    check_output,
    score_videos,
)

SCHEMA = pa.schema([
    ("index", pa.int64()), ("episode_index", pa.int64()), ("frame_index", pa.int64()),
    ("timestamp", pa.float32()), ("progress", pa.float32()), ("progress_sigma", pa.float32()),
    ("success_prob", pa.float32()), ("progress_sparse", pa.float32()), ("progress_dense", pa.float32()),
    ("video", pa.string()),
])


class _Rows:
    """Turns scored videos into row batches; numbers plain videos as episodes in the order they come."""

    def __init__(self) -> None:
        self.next_index = 0
        self.next_episode = 0

    def batch(self, scored: ScoredVideo) -> pa.RecordBatch:
        r, segment = scored.rewards, scored.source.segment
        n = len(r.mu)
        frame = np.arange(n, dtype=np.int64)
        if segment is not None:
            first, episode, fps = segment.first_index, segment.episode_index, segment.fps
        else:
            first, episode, fps = self.next_index, self.next_episode, r.fps
        self.next_index = max(self.next_index, first + n)
        self.next_episode = max(self.next_episode, episode + 1)
        clipped = np.clip(np.asarray(r.mu, np.float32), 0.0, 1.0)
        success = (pa.array(np.asarray(r.success_prob, np.float32)) if r.success_prob is not None
                   else pa.nulls(n, pa.float32()))
        return pa.record_batch([
            pa.array(first + frame), pa.array(np.full(n, episode, np.int64)), pa.array(frame),
            pa.array((frame / fps).astype(np.float32) if fps else np.zeros(n, np.float32)),
            pa.array(np.asarray(r.mu, np.float32)), pa.array(np.asarray(r.sigma, np.float32)), success,
            pa.array(clipped), pa.array(clipped), pa.array([scored.source.name] * n, pa.string()),
        ], schema=SCHEMA)


@contextmanager
def parquet_output(out: str | os.PathLike) -> Iterator[Callable[[ScoredVideo], None]]:
    """`put(scored)` writes one video's rows (one row group) to `out`, atomically (`atomic_output`)."""
    rows = _Rows()
    with atomic_output(Path(out), "the progress table") as tmp, pq.ParquetWriter(tmp, SCHEMA) as writer:
        yield lambda scored: writer.write_batch(rows.batch(scored))


def score_to_parquet(
    model: RewardModel, paths: Sequence[str | os.PathLike], out: str | os.PathLike, **kwargs
) -> ScoreReport:
    """Score videos (as `score_videos`, whose keyword arguments it takes) and write one row per frame to `out`."""
    out = check_output(out, kwargs.get("plot_dir"))
    with parquet_output(out) as put:
        return score_videos(model, paths, on_video=put, **kwargs)
