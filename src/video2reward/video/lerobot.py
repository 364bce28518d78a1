"""LeRobotDataset v3.0 folders as input: each episode of one camera becomes one video, cut out of the mp4 that
holds it (several episodes per file) by the episode's from/to timestamps.

The layout, as LeRobot writes it (`lerobot/datasets/utils.py`, `lerobot_dataset.py`)::

    ROOT/meta/info.json                                codebase_version "v3.0", fps, features, path templates
    ROOT/meta/tasks.parquet                            task text -> task_index
    ROOT/meta/episodes/chunk-000/file-000.parquet     one row per episode: episode_index, tasks, length,
                                                       dataset_from_index, dataset_to_index,
                                                       videos/<camera key>/{chunk_index,file_index,
                                                       from_timestamp,to_timestamp}, ...
    ROOT/data/chunk-000/file-000.parquet               one row per frame: index, episode_index, frame_index,
                                                       timestamp, task_index, ...
    ROOT/videos/<camera key>/chunk-000/file-000.mp4    several episodes, one after another

Frame i of an episode sits at `from_timestamp + i / fps` in its mp4 (LeRobot's `_query_videos` adds the episode's
from_timestamp to the frame's own timestamp). This module reads only metadata (pyarrow); decoding a segment is
video/io.py's. Nothing here needs the `lerobot` package (which needs torchvision). Every problem raises
`VideoError` naming the dataset, the file or the episode, and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from video2reward.errors import VideoError

INFO_FILE = Path("meta") / "info.json"
EPISODES_DIR = Path("meta") / "episodes"
READ_VERSIONS = ("v3.0",)
_SUCCESS_COLUMNS = ("success", "is_success", "episode_success")  # an episode-level flag in meta/episodes


@dataclass(frozen=True)
class DatasetSelection:
    """Which part of a LeRobotDataset a command reads: `--camera-key`, `--episodes`, `--task`. Ignored for
    plain video files and frame folders."""

    camera_key: str = ""  # a video feature of meta/info.json; "" = the only one there is
    episodes: str = ""  # "0:40", "3", "0,3,7:9"; "" = all
    task: str = ""  # only episodes with this task text; "" = all
    outcome: str = ""  # "successful": drop episodes the dataset marks failed (demonstrations); "failed": keep
    # only those (negatives), or every episode when the dataset marks none; "": all

    def with_default_camera(self, camera_key: str) -> DatasetSelection:
        """This selection, reading `camera_key` when none was given (a model reads the camera it learned from)."""
        return self if self.camera_key or not camera_key else replace(self, camera_key=camera_key)


@dataclass(frozen=True)
class Segment:
    """One episode of one camera: frames from `start` (s, included) to `end` (s, excluded) of its mp4."""

    dataset: Path
    camera_key: str
    episode_index: int
    start: float
    end: float
    length: int  # frames, as the episode's metadata states
    fps: float
    first_index: int  # the global frame index (data parquet's `index`) of the episode's first frame
    task: str = ""
    success: bool | None = None  # None: the dataset says nothing


def is_dataset(path: Path) -> bool:
    """A folder holding meta/info.json is a LeRobotDataset."""
    return path.is_dir() and (path / INFO_FILE).is_file()


def read_info(root: Path, given: str) -> dict[str, Any]:
    """meta/info.json, checked: a v3.0 dataset with a frame rate and a video path template."""
    path = root / INFO_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VideoError(f"{given}/{INFO_FILE.as_posix()}: cannot read it ({exc}); restore the file from the "
                         f"dataset's source") from None
    if not isinstance(info, dict):
        raise VideoError(f"{given}/{INFO_FILE.as_posix()}: not a JSON object; restore the file from the dataset's "
                         f"source")
    version = str(info.get("codebase_version", "unknown"))
    if version.startswith(("v1", "v2")):
        raise VideoError(
            f"{given}: a LeRobotDataset {version} folder (one mp4 per episode, meta/episodes.jsonl); v2r reads "
            f"v3.0. Convert it with LeRobot's converter (lerobot.datasets.v30.convert_dataset_v21_to_v30), "
            f"or pass its videos/<camera key>/ folder to read each episode's mp4 as one video")
    if version not in READ_VERSIONS:
        raise VideoError(f"{given}: LeRobotDataset codebase_version {version!r}; v2r reads "
                         f"{', '.join(READ_VERSIONS)}")
    for key in ("fps", "features", "video_path"):
        if key not in info:
            raise VideoError(f"{given}/{INFO_FILE.as_posix()}: has no {key!r}; restore the file from the dataset's "
                             f"source")
    return info


def camera_keys(info: dict[str, Any]) -> list[str]:
    """The video features of info.json, in its order."""
    return [key for key, feature in info["features"].items()
            if isinstance(feature, dict) and feature.get("dtype") == "video"]


def choose_camera(info: dict[str, Any], given: str, wanted: str) -> str:
    keys = camera_keys(info)
    if not keys:
        raise VideoError(f"{given}: the dataset has no video feature (its features: "
                         f"{', '.join(info['features']) or 'none'}); v2r scores camera images")
    if wanted:
        if wanted not in keys:
            raise VideoError(f"{given}: no camera key {wanted!r}; the dataset's camera keys: {', '.join(keys)} "
                             f"(--camera-key KEY)")
        return wanted
    if len(keys) > 1:
        raise VideoError(f"{given}: the dataset has {len(keys)} cameras; pick one with --camera-key KEY "
                         f"(its camera keys: {', '.join(keys)})")
    return keys[0]


def parse_episodes(text: str, given: str = "--episodes") -> list[tuple[int, int | None]]:
    """'0:40' / '3' / '0,3,7:9' / '20:' -> [(start, stop)] with stop excluded (None: to the end)."""
    ranges: list[tuple[int, int | None]] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                lo, _, hi = part.partition(":")
                start, stop = int(lo) if lo.strip() else 0, int(hi) if hi.strip() else None
            else:
                start = int(part)
                stop = start + 1
        except ValueError:
            raise VideoError(f"{given}: cannot read {text!r} as episodes; give START:STOP (STOP excluded), one "
                             f"index, or a comma list of both, e.g. 0:40 or 0,3,7:9") from None
        if start < 0 or (stop is not None and stop < start):
            raise VideoError(f"{given}: bad episode range {part!r} (indices start at 0; STOP after START)")
        ranges.append((start, stop))
    return ranges


def _wanted(index: int, ranges: list[tuple[int, int | None]]) -> bool:
    return any(start <= index and (stop is None or index < stop) for start, stop in ranges)


def read_table(path: Path, root: Path, given: str, what: str, columns: list[str] | None = None) -> pa.Table:
    """A parquet file of the dataset, or a VideoError naming it (truncated, damaged, missing columns)."""
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise VideoError(f"{given}: cannot read {what} {path.relative_to(root).as_posix()} ({exc}); the file is "
                         f"truncated or damaged: restore it from the dataset's source") from None


def read_episodes(root: Path, given: str) -> list[dict[str, Any]]:
    """Every row of meta/episodes/chunk-*/file-*.parquet, in episode order."""
    files = sorted((root / EPISODES_DIR).glob("chunk-*/file-*.parquet"))
    if not files:
        raise VideoError(f"{given}: no episode metadata (meta/episodes/chunk-*/file-*.parquet); the dataset is "
                         f"incomplete: download or copy it again")
    rows: list[dict[str, Any]] = []
    for file in files:
        rows.extend(read_table(file, root, given, "episode metadata").to_pylist())
    for row in rows:
        if "episode_index" not in row:
            raise VideoError(f"{given}: meta/episodes has no episode_index column; the dataset is not LeRobot v3.0")
    return sorted(rows, key=lambda r: int(r["episode_index"]))


def _episode_success(row: dict[str, Any]) -> bool | None:
    for column in _SUCCESS_COLUMNS:
        if row.get(column) is not None:
            return bool(row[column])
    return None


def _task_text(row: dict[str, Any]) -> str:
    tasks = row.get("tasks")
    if isinstance(tasks, (list, tuple)):
        return " | ".join(str(t) for t in tasks)
    return "" if tasks is None else str(tasks)


def episode_segments(root: Path, given: str, select: DatasetSelection) -> Iterator[tuple[Path, str, Segment]]:
    """(mp4 path, name, segment) for every selected episode of `select.camera_key`: what `find_videos` makes
    into one video each. Names are GIVEN/episode_NNNNNN."""
    info = read_info(root, given)
    key = choose_camera(info, given, select.camera_key)
    fps = float(info["fps"])
    ranges = parse_episodes(select.episodes) if select.episodes else None
    rows = read_episodes(root, given)
    columns = [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    found = False
    any_flag = any(_episode_success(row) is not None for row in rows)
    for row in rows:
        index = int(row["episode_index"])
        if ranges is not None and not _wanted(index, ranges):
            continue
        task = _task_text(row)
        if select.task and select.task not in (row.get("tasks") or [task]):
            continue
        success = _episode_success(row)
        if select.outcome == "successful" and success is False:
            continue
        if select.outcome == "failed" and success is not False and any_flag:
            continue
        missing = [c for c in columns + ["length"] if row.get(c) is None]
        if missing:
            raise VideoError(f"{given}: episode {index} has no {', '.join(missing)} in meta/episodes; the "
                             f"dataset is incomplete or not LeRobot v3.0")
        chunk, file, start, end = (row[c] for c in columns)
        mp4 = root / info["video_path"].format(video_key=key, chunk_index=int(chunk), file_index=int(file))
        if not mp4.is_file():
            raise VideoError(f"{given}: episode {index}'s video {mp4.relative_to(root).as_posix()} is missing; "
                             f"download or copy the dataset again, or leave the episode out with --episodes")
        first = int(row.get("dataset_from_index") or 0)
        found = True
        yield mp4, f"{given.rstrip('/')}/episode_{index:06d}", Segment(
            root, key, index, float(start), float(end), int(row["length"]), fps, first, task, success)
    if not found:
        asked = [f"--episodes {select.episodes}"] * bool(select.episodes) + [f"--task {select.task!r}"] * bool(
            select.task)
        tasks = sorted({_task_text(r) for r in rows})
        asked += [f"{select.outcome} episodes only"] * bool(select.outcome)
        raise VideoError(f"{given}: no episode selected ({len(rows)} episodes; {', '.join(asked)}"
                         f"; its tasks: {'; '.join(tasks[:5])}{' ...' if len(tasks) > 5 else ''})")
