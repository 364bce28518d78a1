"""Video I/O: round trips per format, odd sizes, grayscale/RGBA/16-bit frames, 1-frame videos, bad files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from video2reward.errors import VideoError
from video2reward.video.frame_fit import fit_square
from video2reward.video.io import (
    find_videos,
    iter_frames,
    probe,
    read_frames,
    write_video,
)


def ramp_frames(t: int = 12, h: int = 40, w: int = 56) -> list[np.ndarray]:
    """Frame k is a flat gray of level 20 * k: easy to recognise after lossy coding."""
    return [np.full((h, w, 3), (20 * k) % 250, np.uint8) for k in range(t)]


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".avi", ".mov", ".mkv", ".gif", ""])
def test_round_trip_keeps_every_frame_in_order(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"clip{suffix or '_frames'}"
    frames = ramp_frames()
    assert write_video(path, frames, fps=10) == len(frames)
    decoded = read_frames(path)
    assert decoded.shape[0] == len(frames)
    levels = decoded.astype(float).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(levels, [f.mean() for f in frames], atol=4)
    assert probe(path).fps > 0


@pytest.mark.parametrize("h, w", [(37, 51), (51, 37), (17, 17), (240, 360)])
def test_odd_sizes_are_cropped_and_resized_to_square(tmp_path: Path, h: int, w: int) -> None:
    path = tmp_path / "odd.mp4"
    write_video(path, ramp_frames(5, h, w), fps=5)
    out = read_frames(path, size=32)
    assert out.shape == (5, 32, 32, 3) and out.dtype == np.uint8


def test_one_frame_video(tmp_path: Path) -> None:
    path = tmp_path / "one.mp4"
    write_video(path, ramp_frames(1), fps=30)
    assert read_frames(path, size=16).shape == (1, 16, 16, 3)


def test_frame_folder_modes_gray_rgba_16bit(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(np.full((20, 30), 100, np.uint8), mode="L").save(folder / "f_1.png")
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba, mode="RGBA").save(folder / "f_2.png")
    Image.fromarray(np.full((20, 30), 65535, np.uint16)).save(folder / "f_10.png")  # 16-bit gray
    out = read_frames(folder, size=8, fit="crop")
    assert out.shape == (3, 8, 8, 3)
    np.testing.assert_array_equal(out[0], 100)  # gray -> three equal channels
    np.testing.assert_array_equal(out[1][..., 0], 200)  # alpha dropped, red kept
    np.testing.assert_array_equal(out[2], 255)  # 16-bit full scale -> 255, natural order puts f_10 last


def test_crop_takes_the_center_square() -> None:
    frame = np.zeros((10, 30, 3), np.uint8)
    frame[:, 10:20] = 255  # the centre 10x10 square is white, the sides black
    np.testing.assert_array_equal(fit_square(frame, 5, "crop"), 255)


def test_pad_keeps_the_whole_frame_and_stretch_fills_the_square() -> None:
    frame = np.full((10, 30, 3), 255, np.uint8)
    frame[:, :3] = 0  # a black left edge that a center crop would lose
    padded = fit_square(frame, 15, "pad")  # 30x10 -> 15x5, letterboxed with 5 black rows above and below
    np.testing.assert_array_equal(padded[:5], 0)
    np.testing.assert_array_equal(padded[10:], 0)
    assert (padded[5:10, 0] < 128).all() and (padded[5:10, 2:] == 255).all()
    stretched = fit_square(frame, 15, "stretch")
    assert stretched.shape == (15, 15, 3) and (stretched[:, 0] < 128).all() and (stretched[:, 5:] == 255).all()


@pytest.mark.parametrize("fit", ["pad", "crop", "stretch"])
def test_decoded_and_array_paths_fit_frames_the_same_way(tmp_path: Path, fit: str) -> None:
    frame = np.zeros((40, 64, 3), np.uint8)
    frame[:, :16] = 200  # a bright band on the left
    path = tmp_path / "frames"
    write_video(path, [frame], fps=1)  # png: lossless
    decoded = read_frames(path, size=16, fit=fit)[0].astype(int)
    np.testing.assert_allclose(decoded, fit_square(frame, 16, fit).astype(int), atol=2)


def test_iter_frames_streams_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    write_video(path, ramp_frames(25, 16, 16), fps=25)
    sizes = [len(c) for c in iter_frames(path, 16, chunk=8)]
    assert sizes == [8, 8, 8, 1]


def test_empty_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4.*empty"):
        read_frames(path)


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="corrupt.mp4"):
        read_frames(path)


def test_truncated_file_decodes_a_prefix_or_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "whole.mp4"
    write_video(path, ramp_frames(30, 32, 32), fps=10)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    try:
        frames = read_frames(cut)
    except VideoError as exc:
        assert "cut.mp4" in str(exc)
    else:
        assert 0 < len(frames) <= 30


def test_find_videos_names_files_as_given(tmp_path: Path) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    write_video(tmp_path / "data" / "b.mp4", ramp_frames(2), fps=5)
    write_video(tmp_path / "data" / "sub" / "a.gif", ramp_frames(2), fps=5)
    write_video(tmp_path / "data" / "sub" / "frames", ramp_frames(2), fps=5)
    (tmp_path / "data" / "notes.txt").write_text("not a video")
    given = os.path.join(str(tmp_path), "data")
    names = [s.name for s in find_videos([given])]
    assert names == [os.path.join(given, "b.mp4"), os.path.join(given, "sub", "a.gif"),
                     os.path.join(given, "sub", "frames")]
    assert [s.name for s in find_videos([names[0]])] == [names[0]]


def test_find_videos_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="empty.*no videos found"):
        find_videos([tmp_path / "empty"])
    with pytest.raises(VideoError, match="missing.mp4.*no such file"):
        find_videos([tmp_path / "missing.mp4"])
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(VideoError, match="a.txt.*not a video"):
        find_videos([tmp_path / "a.txt"])


def test_unicode_and_space_paths(tmp_path: Path) -> None:
    path = tmp_path / "vidéos à tester" / "épisode 1.mp4"
    write_video(path, ramp_frames(3), fps=5)
    assert read_frames(path, size=8).shape == (3, 8, 8, 3)


@pytest.mark.parametrize("codec, pix_fmt, suffix", [("ffv1", "gray", ".mkv"), ("png", "rgba", ".mov"),
                                                    ("ffv1", "gray16le", ".mkv")])
def test_grayscale_rgba_and_16bit_video_streams(tmp_path: Path, codec: str, pix_fmt: str, suffix: str) -> None:
    from video2reward.testing.bad_videos import (
        coded_stream,  # 4 flat frames of gray 0, 60, 120, 180 stored in pix_fmt
    )

    path = coded_stream(tmp_path / f"clip{suffix}", codec, pix_fmt)
    out = read_frames(path, size=16)
    assert out.shape == (4, 16, 16, 3)
    np.testing.assert_allclose(out.astype(float).mean(axis=(1, 2, 3)), [0, 60, 120, 180], atol=3)


def test_a_missing_file_is_named_as_missing(tmp_path):
    from video2reward.errors import VideoError
    from video2reward.video.io import read_frames

    with pytest.raises(VideoError, match=r"nothere\.mp4: no such file"):
        read_frames(tmp_path / "nothere.mp4")
