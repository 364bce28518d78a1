"""Every bad or unusual input of video2reward.testing.bad_videos either decodes to the right frames or fails with one
line that names the file and the reason; `v2r score --skip-bad` scores the good ones and lists the rest at the end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from video2reward.cli import main
from video2reward.errors import VideoError
from video2reward.testing.bad_videos import (
    CASES,
    Case,
    four_k,
    mixed_resolutions,
    rgb48_png_folder,
    variable_frame_rate,
)
from video2reward.testing.synthetic import write_square_dataset
from video2reward.video.io import find_videos, probe, read_frames


def decode_all(path: Path, size: int | None = 32) -> list[np.ndarray]:
    return [read_frames(source, size) for source in find_videos([path])]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decodes_or_fails_with_one_line_naming_the_file(tmp_path: Path, case: Case) -> None:
    path = case.make(tmp_path)
    if case.frames is None:
        with pytest.raises(VideoError) as info:
            decode_all(path)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and case.error in message
        assert "\n" not in message and "Traceback" not in message
    else:
        videos = decode_all(path)
        assert [v.shape for v in videos] == [(case.frames, 32, 32, 3)]


def test_variable_frame_rate_keeps_every_frame_in_order(tmp_path: Path) -> None:
    path = variable_frame_rate(tmp_path)
    frames = read_frames(path, 32).astype(float)
    x = [(f.mean(axis=(0, 2)) * np.arange(32)).sum() / f.mean(axis=(0, 2)).sum() for f in frames]
    assert all(a < b for a, b in zip(x, x[1:]))  # the square moves right in every decoded frame: none dropped
    assert 5 < probe(path).fps < 20  # 20 frames over 1.66 s: the average rate, not the 1000 Hz time base


def test_four_k_frame_is_letterboxed_like_any_other(tmp_path: Path) -> None:
    frame = read_frames(four_k(tmp_path), 32)[0]  # 3840x2160 -> 32x18, 7 black rows above and below
    assert (frame[:6] == 0).all() and (frame[-6:] == 0).all()
    assert frame[16, 10].min() > 200 and frame[16, 25].max() < 50  # the white block, left of centre


def test_sixteen_bit_rgb_keeps_the_high_byte(tmp_path: Path) -> None:
    frames = read_frames(rgb48_png_folder(tmp_path), 8, fit="crop")  # 40000 of 65535 -> 156 of 255
    np.testing.assert_allclose(frames.astype(int), 156, atol=1)


def test_mixed_resolutions_need_a_size(tmp_path: Path) -> None:
    folder = mixed_resolutions(tmp_path)
    assert read_frames(folder, 16).shape == (4, 16, 16, 3)
    with pytest.raises(VideoError, match="frame_1.png is 640x480, the first frame is 32x24; give a size"):
        read_frames(folder)


def test_score_skip_bad_scores_the_good_and_lists_the_bad_at_the_end(tmp_path: Path, capsys) -> None:
    data = write_square_dataset(tmp_path / "data", n_train=2, n_test=1)
    model = tmp_path / "model"
    assert main(["train", str(data / "train"), "--out", str(model), "--pretrain", "none", "--steps", "3",
                 "--image-size", "32", "--batch-size", "16", "--frames-per-video", "8", "--warmup-steps", "1",
                 "--threads", "1", "--quiet"]) == 0
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.mp4").write_bytes((data / "test_expert" / "ep_0.mp4").read_bytes())
    bad = [make(folder).name for make in (CASES[0].make, CASES[1].make, CASES[5].make)]
    (folder / "more").mkdir()
    good_frames = CASES[-1].make(folder / "more")  # the unicode path, five frames
    capsys.readouterr()
    out = tmp_path / "rewards.jsonl"
    assert main(["score", str(model), str(folder), "--out", str(out), "--quiet"]) == 2  # stops at the first bad
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: " in err and not out.exists()
    assert main(["score", str(model), str(folder), "--out", str(out), "--skip-bad", "--quiet"]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["video"] for r in records) == sorted([str(folder / "good.mp4"), str(good_frames)])
    assert [len(r["rewards"]) for r in records if r["video"] == str(good_frames)] == [5]
    listing = captured.err.splitlines()
    assert listing[0] == f"skipped {len(bad)} bad video(s):"
    assert sorted(line.split(": ")[0].strip() for line in listing[1:]) == sorted(str(folder / b) for b in bad)
    assert "scored 2 videos" in captured.out
