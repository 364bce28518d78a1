"""LeRobotDataset v3.0 folders: written by video/lerobot_write.py, read back episode by episode (video/lerobot.py,
io.py's segment decoding) to exactly the frames of the separate episode files, with each bad input one clear
VideoError naming the file or the episode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from video2reward.errors import VideoError
from video2reward.video.io import find_videos, iter_frames, probe, read_frames, write_video
from video2reward.video.lerobot import DatasetSelection, parse_episodes
from video2reward.video.lerobot_write import EpisodeRecord, write_dataset

KEYS = ("observation.images.front", "observation.images.wrist")
LENGTHS = (17, 40, 5, 63, 12)


def _frames(n: int, seed: int) -> np.ndarray:
    """A moving bright bar over noise: every frame differs, so a frame off by one is seen."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 40, (n, 48, 64, 3)).astype(np.uint8)
    for t in range(n):
        frames[t, :, (t * 3) % 64] = 255
    return frames


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[EpisodeRecord]]:
    root = tmp_path_factory.mktemp("lerobot")
    records = []
    for i, n in enumerate(LENGTHS):
        videos = {}
        for k, key in enumerate(KEYS):
            videos[key] = root / "episodes" / key / f"ep_{i}.mp4"
            write_video(videos[key], _frames(n, 10 * i + k), fps=30)
        records.append(EpisodeRecord(videos, n, "open the drawer" if i % 2 == 0 else "close the drawer",
                                     success=i != 3, frame_columns={"next.reward": list(np.linspace(0, 1, n))}))
    # a tiny file limit: each camera's episodes spread over several mp4s, as a large dataset's do
    write_dataset(root / "ds", records, fps=30, video_file_mb=0.02)
    return root / "ds", records


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


def _damaged(dataset, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(dataset[0], copy)
    return copy


def test_camera_key_missing_or_wrong_lists_the_keys(dataset) -> None:
    root, _ = dataset
    with pytest.raises(VideoError, match=r"2 cameras; pick one with --camera-key.*observation\.images\.front, "
                                         r"observation\.images\.wrist"):
        find_videos([root])
    with pytest.raises(VideoError, match=r"no camera key 'observation\.images\.top'.*observation\.images\.front"):
        find_videos([root], DatasetSelection(camera_key="observation.images.top"))


def test_missing_mp4_names_the_episode_and_file(dataset, tmp_path: Path) -> None:
    copy = _damaged(dataset, tmp_path)
    (copy / "videos" / KEYS[1] / "chunk-000" / "file-001.mp4").unlink()
    find_videos([copy], DatasetSelection(KEYS[0]))  # the other camera is whole
    with pytest.raises(VideoError, match=r"episode \d's video videos/observation\.images\.wrist/chunk-000/"
                                         r"file-001\.mp4 is missing"):
        find_videos([copy], DatasetSelection(KEYS[1]))


def test_truncated_episodes_parquet_names_it(dataset, tmp_path: Path) -> None:
    copy = _damaged(dataset, tmp_path)
    path = copy / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VideoError, match=r"cannot read episode metadata meta/episodes/chunk-000/file-000\.parquet"
                                         r".*truncated or damaged"):
        find_videos([copy], DatasetSelection(KEYS[0]))


def test_episode_running_past_its_mp4(dataset, tmp_path: Path) -> None:
    """The last episode's mp4 cut short (its first half of packets copied): decoding says which episode, where
    its timestamps run and where the file ends."""
    copy = _damaged(dataset, tmp_path)
    sources = find_videos([copy], DatasetSelection(KEYS[0]))
    last = sources[-1]
    with av.open(str(dataset[0] / last.path.relative_to(copy))) as src, av.open(str(last.path), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(src.streams.video[0]) if p.dts is not None]
        for packet in packets[: len(packets) // 2]:
            packet.stream = stream
            dst.mux(packet)
    with pytest.raises(VideoError, match=r"episode_000004 \(episode 4 of copy, file-\d+\.mp4\): the episode's "
                                         r"timestamps run from .* s to .* s \(12 frames\), but .* frames decoded"):
        read_frames(last)


def test_v21_folder_says_version_and_what_to_do(dataset, tmp_path: Path) -> None:
    copy = _damaged(dataset, tmp_path)
    info = json.loads((copy / "meta" / "info.json").read_text())
    (copy / "meta" / "info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(VideoError, match=r"LeRobotDataset v2\.1 folder .* v2r reads v3\.0\. Convert it with "
                                         r"LeRobot .* or pass its videos/<camera key>/ folder"):
        find_videos([copy])
