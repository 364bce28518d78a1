"""LeRobotDataset v3.0 folders: written by video/lerobot_write.py, read back episode by episode (video/lerobot.py,
io.py's segment decoding) to exactly the frames of the separate episode files, with each bad input one clear
VideoError naming the file or the episode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from video2reward.errors import VideoError
from video2reward.testing.bad_datasets import (
    DATASET_CASES,
    KEYS,
    LENGTHS,
    episode_past_its_mp4,
    make_dataset,
    missing_mp4,
)
from video2reward.video.io import find_videos, iter_frames, probe, read_frames
from video2reward.video.lerobot import DatasetSelection, parse_episodes
from video2reward.video.lerobot_write import EpisodeRecord


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[EpisodeRecord]]:
    return make_dataset(tmp_path_factory.mktemp("lerobot"))


def test_layout_is_lerobot_v3(dataset) -> None:
    root, records = dataset
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 30
    assert info["total_episodes"] == len(LENGTHS) and info["total_frames"] == sum(LENGTHS)
    assert [k for k, f in info["features"].items() if f["dtype"] == "video"] == list(KEYS)
    episodes = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [e["length"] for e in episodes] == list(LENGTHS)
    assert [e["dataset_from_index"] for e in episodes] == list(np.cumsum((0,) + LENGTHS[:-1]))
    files = {e[f"videos/{KEYS[0]}/file_index"] for e in episodes}
    assert len(files) > 1, "the size limit should have started new mp4 files"
    for e in episodes:  # each file's episodes start where the one before ended
        assert e[f"videos/{KEYS[0]}/to_timestamp"] == pytest.approx(e[f"videos/{KEYS[0]}/from_timestamp"]
                                                                    + e["length"] / 30)
    data = pq.read_table(root / "data" / "chunk-000" / "file-000.parquet")
    assert data.num_rows == sum(LENGTHS) and data.column("index").to_pylist() == list(range(sum(LENGTHS)))
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pylist()
    assert [t["task"] for t in tasks] == ["open the drawer", "close the drawer"]


@pytest.mark.parametrize("key", KEYS)
def test_every_episode_decodes_to_its_own_file(dataset, key: str) -> None:
    root, records = dataset
    sources = find_videos([root], DatasetSelection(camera_key=key))
    assert [s.name for s in sources] == [f"{root}/episode_{i:06d}" for i in range(len(LENGTHS))]
    for source, record in zip(sources, records):
        np.testing.assert_array_equal(read_frames(source), read_frames(record.videos[key]))
        np.testing.assert_array_equal(read_frames(source, 32, "crop"), read_frames(record.videos[key], 32, "crop"))
        assert probe(source).fps == 30
    chunks = list(iter_frames(sources[3], 16, chunk=10))  # chunked as the scorer reads it
    assert [len(c) for c in chunks] == [10] * 6 + [3]


def test_selection(dataset) -> None:
    root, _ = dataset
    front = DatasetSelection(camera_key=KEYS[0])

    def episodes(**kw) -> list[int]:
        return [s.segment.episode_index for s in find_videos([root], DatasetSelection(KEYS[0], **kw))]

    assert episodes(episodes="1:3") == [1, 2]
    assert episodes(episodes="0,3:") == [0, 3, 4]
    assert episodes(task="close the drawer") == [1, 3]
    assert episodes(outcome="successful") == [0, 1, 2, 4]
    assert episodes(outcome="failed") == [3]
    assert [s.segment.success for s in find_videos([root], front)] == [True, True, True, False, True]
    with pytest.raises(VideoError, match="no episode selected.*--task 'fly'"):
        episodes(task="fly")
    nested = find_videos([root.parent], front)  # a dataset found inside a folder, its mp4s not read whole
    assert [s.name for s in nested if s.segment] == [f"{root}/episode_{i:06d}" for i in range(len(LENGTHS))]
    assert not [s for s in nested if s.segment is None and root in s.path.parents]


def test_parse_episodes() -> None:
    assert parse_episodes("0:40") == [(0, 40)]
    assert parse_episodes("3") == [(3, 4)]
    assert parse_episodes("0, 3, 7:9, 20:") == [(0, 1), (3, 4), (7, 9), (20, None)]
    for bad in ("a:b", "5:2", "-1", ""):
        with pytest.raises(VideoError, match="--episodes"):
            parse_episodes(bad)


def test_camera_key_missing_or_wrong_lists_the_keys(dataset) -> None:
    root, _ = dataset
    with pytest.raises(VideoError, match=r"2 cameras; pick one with --camera-key.*observation\.images\.front, "
                                         r"observation\.images\.wrist"):
        find_videos([root])
    with pytest.raises(VideoError, match=r"no camera key 'observation\.images\.top'.*observation\.images\.front"):
        find_videos([root], DatasetSelection(camera_key="observation.images.top"))


@pytest.mark.parametrize("case", DATASET_CASES, ids=[c.name for c in DATASET_CASES])
def test_damaged_dataset_is_one_line_naming_file_or_episode(tmp_path: Path, case) -> None:
    root = case.make(tmp_path)
    camera = case.args[1] if case.args else ""
    with pytest.raises(VideoError) as info:
        for source in find_videos([root], DatasetSelection(camera_key=camera)):
            read_frames(source, 16)
    message = str(info.value)
    assert case.error in message and "\n" not in message
    assert message.startswith(str(root))  # the dataset (or its episode) first, then the reason


def test_missing_mp4_leaves_the_other_camera_readable(tmp_path: Path) -> None:
    root = missing_mp4(tmp_path)
    assert len(find_videos([root], DatasetSelection(KEYS[1]))) == len(LENGTHS)


def test_episode_past_its_mp4_says_where(tmp_path: Path) -> None:
    root = episode_past_its_mp4(tmp_path)
    last = find_videos([root], DatasetSelection(KEYS[0]))[-1]
    with pytest.raises(VideoError, match=r"episode_000004 \(episode 4 of ds, file-\d+\.mp4\): the episode's "
                                         r"timestamps run from .* s to .* s \(12 frames\), but .* frames decoded"):
        read_frames(last)
