"""A small LeRobotDataset v3.0 and hand-damaged copies of it, with what v2r must say of each: a piece of its
one-line error. tests/video/test_lerobot.py checks every case; bench/bad_inputs.py runs each through `v2r score`
and writes the troubleshooting page's table."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from video2reward.video.io import write_video
from video2reward.video.lerobot_write import EpisodeRecord, write_dataset

KEYS = ("observation.images.front", "observation.images.wrist")
LENGTHS = (17, 40, 5, 63, 12)
FPS = 30


def episode_frames(n: int, seed: int) -> np.ndarray:
    """A moving bright bar over noise: every frame differs, so a frame off by one is seen."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 40, (n, 48, 64, 3)).astype(np.uint8)
    for t in range(n):
        frames[t, :, (t * 3) % 64] = 255
    return frames


def make_dataset(folder: Path, file_mb: float = 0.02) -> tuple[Path, list[EpisodeRecord]]:
    """FOLDER/ds: five episodes of two cameras, tasks alternating, episode 3 marked failed; the tiny file size
    limit spreads each camera's episodes over several mp4s, as a large dataset's are. Returns (root, records),
    the records naming each episode's own mp4 under FOLDER/episodes/."""
    records = []
    for i, n in enumerate(LENGTHS):
        videos = {}
        for k, key in enumerate(KEYS):
            videos[key] = folder / "episodes" / key / f"ep_{i}.mp4"
            write_video(videos[key], episode_frames(n, 10 * i + k), fps=FPS)
        records.append(EpisodeRecord(videos, n, "open the drawer" if i % 2 == 0 else "close the drawer",
                                     success=i != 3, frame_columns={"next.reward": list(np.linspace(0, 1, n))}))
    return write_dataset(folder / "ds", records, fps=FPS, video_file_mb=file_mb), records


def _fresh(folder: Path) -> Path:
    return make_dataset(folder)[0]


def missing_mp4(folder: Path) -> Path:
    root = _fresh(folder)
    (root / "videos" / KEYS[0] / "chunk-000" / "file-001.mp4").unlink()
    return root


def truncated_episodes_parquet(folder: Path) -> Path:
    root = _fresh(folder)
    path = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return root


def episode_past_its_mp4(folder: Path) -> Path:
    """The last mp4 of the first camera holds only the first half of its packets: the last episode's timestamps
    run past the end of the file."""
    root = _fresh(folder)
    files = sorted((root / "videos" / KEYS[0] / "chunk-000").glob("file-*.mp4"))
    whole = files[-1].with_name("whole.tmp")
    files[-1].rename(whole)
    with av.open(str(whole)) as src, av.open(str(files[-1]), "w", format="mp4") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(src.streams.video[0]) if p.dts is not None]
        for packet in packets[: len(packets) // 2]:
            packet.stream = stream
            dst.mux(packet)
    whole.unlink()
    return root


def version_21(folder: Path) -> Path:
    root = _fresh(folder)
    info = json.loads((root / "meta" / "info.json").read_text())
    (root / "meta" / "info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    shutil.rmtree(root / "meta" / "episodes")
    return root


@dataclass(frozen=True)
class DatasetCase:
    name: str  # the row of the troubleshooting table
    make: Callable[[Path], Path]  # writes the dataset under a folder, returns its root
    args: tuple[str, ...]  # what the command adds (the camera key)
    error: str  # a piece of the one-line message


DATASET_CASES = [
    DatasetCase("LeRobotDataset: an episode's mp4 is missing", missing_mp4, ("--camera-key", KEYS[0]),
                "'s video videos/observation.images.front/chunk-000/file-001.mp4 is missing"),
    DatasetCase("LeRobotDataset: meta/episodes parquet cut in half", truncated_episodes_parquet,
                ("--camera-key", KEYS[0]), "cannot read episode metadata meta/episodes/chunk-000/file-000.parquet"),
    DatasetCase("LeRobotDataset: a camera key it does not have", _fresh, ("--camera-key", "observation.images.top"),
                "no camera key 'observation.images.top'; the dataset's camera keys: observation.images.front, "
                "observation.images.wrist"),
    DatasetCase("LeRobotDataset with two cameras, no --camera-key", _fresh, (),
                "the dataset has 2 cameras; pick one with --camera-key KEY"),
    DatasetCase("LeRobotDataset: an episode's timestamps run past its mp4", episode_past_its_mp4,
                ("--camera-key", KEYS[0]), "episode_000004 (episode 4 of ds"),
    DatasetCase("LeRobotDataset v2.1 folder", version_21, (), "a LeRobotDataset v2.1 folder"),
]
