"""Bad and unusual video inputs, generated on the fly, with what v2r must make of each: the frames it decodes,
or the reason in its one-line error. tests/video/test_bad_inputs.py checks every case; bench/bad_inputs.py
runs each through `v2r score` and prints the README's table."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from video2reward.testing.synthetic import moving_square
from video2reward.video.io import write_video


@dataclass(frozen=True)
class Case:
    name: str  # the row of the README table
    make: Callable[[Path], Path]  # writes the input under a folder, returns the path to give v2r
    frames: int | None  # frames it decodes to, or None: it must fail
    error: str = ""  # for a failing case: a piece of the one-line message, after the file's name


def _good_mp4(path: Path, t: int = 30, size: int = 32, fps: float = 10) -> Path:
    write_video(path, moving_square(t, size), fps=fps)
    return path


def zero_bytes(folder: Path) -> Path:
    (path := folder / "empty.mp4").write_bytes(b"")
    return path


def text_file(folder: Path) -> Path:
    (path := folder / "notes.mp4").write_text("these are my notes, not a video\n")
    return path


def truncated_mp4(folder: Path) -> Path:
    data = _good_mp4(folder / "whole.mp4").read_bytes()
    (path := folder / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) at the end is lost
    (folder / "whole.mp4").unlink()
    return path


def truncated_mkv(folder: Path) -> Path:
    write_video(folder / "whole.mkv", moving_square(300, 32), fps=30)
    data = (folder / "whole.mkv").read_bytes()
    (path := folder / "cut.mkv").write_bytes(data[: len(data) // 2])  # the first ~4 s of 10 still decode
    (folder / "whole.mkv").unlink()
    return path


def damaged_frames(folder: Path) -> Path:
    data = bytearray(_good_mp4(folder / "whole.mp4").read_bytes())
    start = data.find(b"mdat") + 400  # scramble the coded pictures, keep the container intact
    for k in range(start, start + 500):
        data[k] = (data[k] * 7 + 3) % 256
    (path := folder / "damaged.mp4").write_bytes(bytes(data))
    (folder / "whole.mp4").unlink()
    return path


def encode_all(container, stream, frames) -> None:
    """Encode every frame of `frames` into `stream`, flush the encoder, and mux all packets into `container`."""
    for frame in frames:
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():  # the frames the encoder still holds
        container.mux(packet)


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frames = []
        for k in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, k * 1024
            frames.append(frame)
        encode_all(container, stream, frames)
    return path


def audio_only_mp4(folder: Path) -> Path:
    return _audio_only(folder / "speech.mp4")


def audio_only_mkv(folder: Path) -> Path:
    return _audio_only(folder / "speech.mkv")


VFR_GAPS_MS = (10, 33, 100, 250)  # frame k lasts VFR_GAPS_MS[k % 4] milliseconds


def variable_frame_rate(folder: Path) -> Path:
    path = folder / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        frames, pts = [], 0
        for k, rgb in enumerate(moving_square(20, 32)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += VFR_GAPS_MS[k % 4]
            frames.append(frame)
        encode_all(container, stream, frames)
    return path


def one_frame(folder: Path) -> Path:
    return _good_mp4(folder / "one.mp4", t=1)


def four_k(folder: Path) -> Path:
    frame = np.zeros((2160, 3840, 3), np.uint8)
    frame[800:1400, 1000:1600] = 255
    write_video(path := folder / "uhd.mp4", [frame, frame[::-1]], fps=30)
    return path


def coded_stream(path: Path, codec: str, pix_fmt: str) -> Path:
    """4 frames of flat gray 0, 60, 120, 180, stored in `pix_fmt` (gray, gray16le, rgba, ...)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, pix_fmt
        encode_all(container, stream, [
            av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * k, np.uint8), format="rgb24").reformat(format=pix_fmt)
            for k in range(4)])
    return path


def gray_video(folder: Path) -> Path:
    return coded_stream(folder / "gray.mkv", "ffv1", "gray")


def gray16_video(folder: Path) -> Path:
    return coded_stream(folder / "gray16.mkv", "ffv1", "gray16le")


def rgba_video(folder: Path) -> Path:
    return coded_stream(folder / "rgba.mov", "png", "rgba")


def _frame_folder(folder: Path, images: list[Image.Image]) -> Path:
    (path := folder / "frames").mkdir()
    for k, image in enumerate(images):
        image.save(path / f"frame_{k}.png")
    return path


def gray_png_folder(folder: Path) -> Path:
    return _frame_folder(folder, [Image.fromarray(np.full((24, 32), 40 * k, np.uint8), mode="L") for k in range(3)])


def rgba_png_folder(folder: Path) -> Path:
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    return _frame_folder(folder, [Image.fromarray(rgba, mode="RGBA")] * 3)


def gray16_png_folder(folder: Path) -> Path:
    return _frame_folder(folder, [Image.fromarray(np.full((24, 32), 20000 * k, np.uint16)) for k in range(3)])


def rgb48_png(path: Path, value: int = 40000) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one; FFmpeg's png encoder can)."""
    frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), value, np.uint16), format="rgb48le")
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = 32, 24, "rgb48be"
        encode_all(container, stream, [frame.reformat(format="rgb48be")])


def rgb48_png_folder(folder: Path) -> Path:
    (path := folder / "frames48").mkdir()
    for k in range(3):
        rgb48_png(path / f"frame_{k}.png")
    return path


def mixed_resolutions(folder: Path) -> Path:
    sizes = [(24, 32), (480, 640), (17, 9), (64, 64)]  # (h, w)
    return _frame_folder(folder, [Image.fromarray(np.full((h, w, 3), 90, np.uint8)) for h, w in sizes])


def unreadable_frame(folder: Path) -> Path:
    path = gray_png_folder(folder)
    (path / "frame_1.png").write_bytes(b"\x89PNG but then nothing")
    return path


def unicode_spaces(folder: Path) -> Path:
    (sub := folder / "vidéos d'été" / "日本 語").mkdir(parents=True)
    return _good_mp4(sub / "épisode 1 (final).mp4", t=5)


def named_pipe(folder: Path) -> Path:
    os.mkfifo(path := folder / "camera.mp4")  # av.open on it would wait for a writer forever
    return path


CASES = [
    Case("zero-byte .mp4", zero_bytes, None, "file is empty (0 bytes)"),
    Case("text file named .mp4", text_file, None, "cannot open as a video"),
    Case("truncated .mp4 (first half of the file)", truncated_mp4, None, "truncated, damaged, or not a video"),
    Case("truncated .mkv (first half: 4 of 10 s decode)", truncated_mkv, None, "the file is truncated"),
    Case(".mp4 with scrambled picture data", damaged_frames, None, "cannot decode any frame"),
    Case("audio-only .mp4", audio_only_mp4, None, "has no video stream"),
    Case("audio-only .mkv", audio_only_mkv, None, "has no video stream"),
    Case("named pipe (FIFO) called .mp4", named_pipe, None, "not a regular file (a pipe or device"),
    Case("png folder with one unreadable frame", unreadable_frame, None, "cannot read frame frame_1.png"),
    Case("variable frame rate .mp4 (10-250 ms per frame)", variable_frame_rate, 20),
    Case("1-frame .mp4", one_frame, 1),
    Case("4K .mp4 (3840x2160, 2 frames)", four_k, 2),
    Case("grayscale video (ffv1 gray, .mkv)", gray_video, 4),
    Case("16-bit grayscale video (ffv1 gray16le)", gray16_video, 4),
    Case("RGBA video (png codec, .mov)", rgba_video, 4),
    Case("grayscale png folder", gray_png_folder, 3),
    Case("RGBA png folder", rgba_png_folder, 3),
    Case("16-bit grayscale png folder", gray16_png_folder, 3),
    Case("16-bit RGB png folder (48 bits a pixel)", rgb48_png_folder, 3),
    Case("png folder of mixed resolutions (32x24, 640x480, 9x17, 64x64)", mixed_resolutions, 4),
    Case("unicode and spaces in the path", unicode_spaces, 5),
]
