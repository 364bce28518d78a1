"""Writing a LeRobotDataset v3.0 folder (`v2r demo-data --format lerobot`), with pyarrow and PyAV only.

Each episode is first encoded to an mp4 of its own (as LeRobot does); the episodes of one camera are then
joined into `videos/<key>/chunk-000/file-NNN.mp4` by copying their packets, not re-encoding them (LeRobot's
`concatenate_video_files` does the same with ffmpeg's concat demuxer). The joined file therefore decodes to
exactly the frames of the separate files, and an episode's `from_timestamp` is the sum of the durations before
it. A new file starts when the current one passes `video_file_mb` (LeRobot's video_files_size_in_mb).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from video2reward.video.lerobot import EPISODES_DIR, INFO_FILE

DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot's default)


@dataclass
class EpisodeRecord:
    """One episode to write: its mp4 per camera key (already encoded, same frame count each), its task text,
    and per-frame and per-episode values for the parquet files."""

    videos: dict[str, Path]  # camera key -> an mp4 holding exactly this episode
    length: int
    task: str
    success: bool | None = None
    frame_columns: dict[str, Sequence[float]] = field(default_factory=dict)  # e.g. next.reward: one per frame
    episode_columns: dict[str, Any] = field(default_factory=dict)  # e.g. split, policy


def _video_info(mp4: Path) -> dict[str, Any]:
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        return {"video.height": stream.codec_context.height, "video.width": stream.codec_context.width,
                "video.codec": stream.codec_context.name, "video.pix_fmt": stream.codec_context.pix_fmt,
                "video.is_depth_map": False, "video.fps": float(stream.average_rate or 0), "video.channels": 3,
                "has_audio": False}


class _Joiner:
    """Copies the packets of episode mp4s, one after another, into one output mp4."""

    def __init__(self, path: Path, template: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.out = av.open(str(path), mode="w")
        with av.open(str(template)) as source:
            self.stream = self.out.add_stream_from_template(source.streams.video[0])
        self.seconds = Fraction(0)  # where the next episode starts
        self.bytes = 0  # packet bytes so far (the file on disk lags behind the muxer's buffer)

    def append(self, mp4: Path, frames: int, fps: Fraction) -> tuple[float, float]:
        start = self.seconds
        with av.open(str(mp4)) as source:
            in_stream = source.streams.video[0]
            shift = int(round(start / Fraction(in_stream.time_base)))
            for packet in source.demux(in_stream):
                if packet.dts is None:  # the demuxer's empty flush packet
                    continue
                packet.pts += shift
                packet.dts += shift
                packet.stream = self.stream
                self.bytes += packet.size
                self.out.mux(packet)
        self.seconds = start + frames / fps
        return float(start), float(self.seconds)

    def close(self) -> None:
        self.out.close()


def write_dataset(root: Path, episodes: Sequence[EpisodeRecord], fps: float, robot_type: str = "unknown",
                  video_file_mb: float = 500.0) -> Path:
    """Write `episodes` as a LeRobotDataset v3.0 at `root` (replaced if it exists; written beside it first and
    moved into place, so an interrupted run leaves no half dataset)."""
    if not episodes:
        raise ValueError("write_dataset: no episodes")
    keys = list(episodes[0].videos)
    rate = Fraction(fps).limit_denominator(1001)
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        tasks = list(dict.fromkeys(e.task for e in episodes))
        rows: list[dict[str, Any]] = []
        spans: dict[str, list[tuple[int, float, float]]] = {key: [] for key in keys}
        for key in keys:
            file_index, joiner = 0, None
            for episode in episodes:
                if joiner is not None and joiner.bytes > video_file_mb * 1e6:
                    joiner.close()
                    joiner, file_index = None, file_index + 1
                if joiner is None:
                    path = tmp / VIDEO_PATH.format(video_key=key, chunk_index=file_index // CHUNKS_SIZE,
                                                   file_index=file_index % CHUNKS_SIZE)
                    joiner = _Joiner(path, episode.videos[key])
                start, end = joiner.append(episode.videos[key], episode.length, rate)
                spans[key].append((file_index, start, end))
            joiner.close()
        frames: dict[str, list] = {"index": [], "episode_index": [], "frame_index": [], "timestamp": [],
                                   "task_index": []}
        extra = sorted({c for e in episodes for c in e.frame_columns})
        for c in extra:
            frames[c] = []
        first = 0
        for i, episode in enumerate(episodes):
            n = episode.length
            frames["index"] += range(first, first + n)
            frames["episode_index"] += [i] * n
            frames["frame_index"] += range(n)
            frames["timestamp"] += [float(np.float32(t / float(rate))) for t in range(n)]
            frames["task_index"] += [tasks.index(episode.task)] * n
            for c in extra:
                values = list(episode.frame_columns.get(c, [None] * n))
                if len(values) != n:
                    raise ValueError(f"episode {i}: {c} has {len(values)} values for {n} frames")
                frames[c] += values
            row = {"episode_index": i, "tasks": [episode.task], "length": n, "data/chunk_index": 0,
                   "data/file_index": 0, "dataset_from_index": first, "dataset_to_index": first + n}
            for key in keys:
                file_index, start, end = spans[key][i]
                row.update({f"videos/{key}/chunk_index": file_index // CHUNKS_SIZE,
                            f"videos/{key}/file_index": file_index % CHUNKS_SIZE,
                            f"videos/{key}/from_timestamp": start, f"videos/{key}/to_timestamp": end})
            row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
            if episode.success is not None:
                row["success"] = bool(episode.success)
            row.update(episode.episode_columns)
            rows.append(row)
            first += n
        data = pa.table({
            "index": pa.array(frames["index"], pa.int64()),
            "episode_index": pa.array(frames["episode_index"], pa.int64()),
            "frame_index": pa.array(frames["frame_index"], pa.int64()),
            "timestamp": pa.array(frames["timestamp"], pa.float32()),
            "task_index": pa.array(frames["task_index"], pa.int64()),
            **{c: pa.array(frames[c]) for c in extra},
        })
        (tmp / "data" / "chunk-000").mkdir(parents=True)
        pq.write_table(data, tmp / DATA_PATH.format(chunk_index=0, file_index=0))
        (tmp / EPISODES_DIR / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), tmp / EPISODES_DIR / "chunk-000" / "file-000.parquet")
        pq.write_table(pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()),
                                 "task": pa.array(tasks, pa.string())}), tmp / "meta" / "tasks.parquet")
        features: dict[str, Any] = {
            key: {"dtype": "video", "shape": [info["video.height"], info["video.width"], 3],
                  "names": ["height", "width", "channels"], "info": info}
            for key, info in ((k, _video_info(episodes[0].videos[k])) for k in keys)
        }
        for name, dtype in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                            ("index", "int64"), ("task_index", "int64")):
            features[name] = {"dtype": dtype, "shape": [1], "names": None}
        for c in extra:
            features[c] = {"dtype": str(data.schema.field(c).type).replace("double", "float64").replace(
                "bool", "bool"), "shape": [1], "names": None}
        info = {"codebase_version": "v3.0", "robot_type": robot_type, "total_episodes": len(episodes),
                "total_frames": first, "total_tasks": len(tasks), "chunks_size": CHUNKS_SIZE,
                "data_files_size_in_mb": 100, "video_files_size_in_mb": video_file_mb,
                "fps": int(rate) if rate.denominator == 1 else float(rate),
                "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH, "video_path": VIDEO_PATH,
                "features": features}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=4) + "\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
