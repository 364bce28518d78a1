"""`v2r score --workers N`: decoding in DataLoader worker processes gives byte-identical JSONL to decoding in
process, streams bounded chunks (memory flat in video length), and handles a bad video like in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from video2reward.cli import main
from video2reward.testing.synthetic import moving_square, write_square_dataset
from video2reward.video.chunk_loader import iter_chunks
from video2reward.video.io import find_videos, write_video

TINY = ["--steps", "8", "--image-size", "32", "--batch-size", "32", "--frames-per-video", "8", "--warmup-steps", "2",
        "--pretrain", "none", "--quiet"]


@pytest.fixture(scope="module")
def model_and_videos(tmp_path_factory) -> tuple[Path, Path]:
    root = write_square_dataset(tmp_path_factory.mktemp("workers") / "data", n_train=3)
    videos = root.parent / "videos"
    write_video(videos / "long.mp4", moving_square(150, 48), fps=25)  # 3 chunks of the scorer's 64 frames
    write_video(videos / "wide.mp4", moving_square(70, 40)[:, 4:36, :], fps=12)  # not square
    write_video(videos / "frames", moving_square(9, 32))  # a folder of png frames
    for i, t in enumerate((5, 66, 30)):
        write_video(videos / "more" / f"ep_{i}.mp4", moving_square(t, 32, stop=0.3 * (i + 1)), fps=10)
    model = root.parent / "model"
    assert main(["train", str(root / "train"), "--out", str(model), *TINY]) == 0
    return model, videos


def test_workers_write_exactly_what_in_process_scoring_writes(model_and_videos, tmp_path: Path) -> None:
    model, videos = model_and_videos
    outputs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}.jsonl"
        assert main(["score", str(model), str(videos), "--out", str(out), "--workers", str(workers), "--quiet"]) == 0
        outputs[workers] = out.read_bytes()
    assert outputs[0] == outputs[2]
    records = [json.loads(line) for line in outputs[0].decode().splitlines()]
    assert [len(r["rewards"]) for r in records] == [9, 150, 5, 66, 30, 70]  # find_videos order, every frame


def test_workers_stream_bounded_chunks_and_interleave_videos(model_and_videos) -> None:
    _, videos = model_and_videos
    sources = find_videos([videos / "long.mp4", videos / "more" / "ep_1.mp4"])
    items = list(iter_chunks(sources, size=32, fit="pad", chunk=64, workers=2))
    sizes = {0: [len(i.frames) for i in items if i.index == 0 and not i.done],
             1: [len(i.frames) for i in items if i.index == 1 and not i.done]}
    assert sizes == {0: [64, 64, 22], 1: [64, 2]}  # no item holds more than one chunk of a video
    assert [i.index for i in items][:2] == [0, 1]  # both workers' videos arrive side by side
    ends = [i for i in items if i.done]
    assert sorted(i.index for i in ends) == [0, 1] and ends[0].fps in (pytest.approx(25), pytest.approx(10))
    assert all(i.frames.dtype == np.uint8 and i.frames.shape[1:] == (32, 32, 3) for i in items)


def test_a_bad_video_in_a_worker_stops_with_its_name_or_is_skipped(model_and_videos, tmp_path: Path,
                                                                   capsys) -> None:
    model, videos = model_and_videos
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a_broken.mp4").write_bytes(b"\x00\x01garbage" * 100)
    (folder / "b_good.mp4").write_bytes((videos / "long.mp4").read_bytes())
    out = tmp_path / "r.jsonl"
    assert main(["score", str(model), str(folder), "--out", str(out), "--workers", "2", "--quiet"]) == 2
    assert "a_broken.mp4" in capsys.readouterr().err and not out.exists()
    assert main(["score", str(model), str(folder), "--out", str(out), "--workers", "2", "--skip-bad",
                 "--quiet"]) == 0
    assert "a_broken.mp4" in capsys.readouterr().err
    assert [json.loads(line)["video"] for line in out.read_text().splitlines()] == [str(folder / "b_good.mp4")]


def test_negative_workers_is_a_clear_error(model_and_videos, tmp_path: Path, capsys) -> None:
    model, videos = model_and_videos
    assert main(["score", str(model), str(videos), "--out", str(tmp_path / "x.jsonl"), "--workers", "-1"]) == 2
    assert "--workers -1" in capsys.readouterr().err
