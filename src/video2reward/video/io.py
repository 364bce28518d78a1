"""Pixels in and out: streaming decode of video files and frame folders (PyAV, Pillow), each frame fitted to
the model's square size (frame_fit.py: letterbox pad, center crop or stretch), and encoding frames to a file.

Decoding never holds a whole video: `iter_frames` yields fixed-size chunks, so memory stays flat in
video length. Every failure raises `VideoError` naming the file and what to do about it, including a file that
decodes without error but stops well short of the length its header announces (cut off), and a pipe or device
given as a video (opening one could wait forever). What each bad input gives: the docs, "Troubleshooting".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from video2reward.errors import VideoError
from video2reward.video.frame_fit import FITS, fit_dims, fit_square, to_square
from video2reward.video.lerobot import (
    DatasetSelection,
    Segment,
    episode_segments,
    is_dataset,
)

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mov", ".mkv", ".m4v", ".gif", ".mpg", ".mpeg", ".ogv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
FRAME_FOLDER_FPS = 30.0  # a folder of images carries no frame rate; this is what we report for it
_FIX = "re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4), remove it, or pass --skip-bad"


@dataclass(frozen=True)
class VideoSource:
    """One video: a file, a folder of image frames, or one episode of a LeRobotDataset (`segment`: which part
    of the mp4 at `path` it is). `name` is the path as the user named it (GIVEN/episode_NNNNNN for an
    episode)."""

    path: Path
    name: str
    segment: Segment | None = None

    def relative_name(self, root: str | os.PathLike) -> str:
        """Its path relative to the folder `root` (the key of labels.json): ep_000.mp4 relative to its data folder,
        or DATASET/episode_NNNNNN for an episode (its mp4 holds others)."""
        path = self.path if self.segment is None else self.segment.dataset / f"episode_{self.segment.episode_index:06d}"
        return Path(os.path.relpath(path.resolve(), Path(root).resolve())).as_posix()

    @property
    def is_frame_folder(self) -> bool:
        return self.segment is None and self.path.is_dir() or self.path.suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int


def _natural_key(name: str) -> list:
    """frame_2.png sorts before frame_10.png."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _image_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: _natural_key(p.name))


def find_videos(paths: Sequence[str | os.PathLike], select: DatasetSelection | None = None) -> list[VideoSource]:
    """Every video under `paths`, in a stable order. A path may be a video file, a single image (a 1-frame
    video), a folder of image frames, a LeRobotDataset v3 folder (each selected episode of one camera is a video;
    `select` says which: video/lerobot.py), or a folder searched recursively for all of these."""
    select = select or DatasetSelection()
    sources: list[VideoSource] = []
    for given in paths:
        given_str = os.fspath(given)
        path = Path(given_str)
        if not path.exists():
            raise VideoError(f"{given_str}: no such file or folder")
        if not path.is_dir():  # a file (or a pipe or device, refused when opened)
            suffix = path.suffix.lower()
            if suffix not in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
                raise VideoError(
                    f"{given_str}: not a video or image file (known: {', '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)})"
                )
            sources.append(VideoSource(path, given_str))
            continue
        found = _walk_folder(path, given_str, select)
        if not found:
            raise VideoError(
                f"{given_str}: no videos found (looked recursively for {', '.join(VIDEO_SUFFIXES)} files "
                f"and folders of {', '.join(IMAGE_SUFFIXES)} frames)"
            )
        sources.extend(found)
    return sources


def _walk_folder(folder: Path, given: str, select: DatasetSelection) -> list[VideoSource]:
    if is_dataset(folder):  # its mp4s hold several episodes each: never read them whole
        return [VideoSource(mp4, name, segment) for mp4, name, segment in episode_segments(folder, given, select)]
    if _image_files(folder):  # a folder holding frames is one video
        return [VideoSource(folder, given)]
    found: list[VideoSource] = []
    for child in sorted(folder.iterdir(), key=lambda p: _natural_key(p.name)):
        child_name = os.path.join(given, child.name)
        if child.is_dir():
            found.extend(_walk_folder(child, child_name, select))
        elif child.suffix.lower() in VIDEO_SUFFIXES:
            found.append(VideoSource(child, child_name))
    return found


def _as_source(video: VideoSource | str | os.PathLike) -> VideoSource:
    if isinstance(video, VideoSource):
        return video
    return VideoSource(Path(os.fspath(video)), os.fspath(video))


_NOT_A_FILE = "not a regular file (a pipe or device: reading it could wait forever); save the video to a file"


def _open_container(source: VideoSource):
    if not source.path.exists():
        raise VideoError(f"{source.name}: no such file; check the path")
    if not source.path.is_file():
        raise VideoError(f"{source.name}: {_NOT_A_FILE}")
    try:
        if source.path.stat().st_size == 0:
            raise VideoError(f"{source.name}: file is empty (0 bytes); {_FIX}")
        container = av.open(str(source.path), mode="r")
    except VideoError:
        raise
    except av.error.InvalidDataError as exc:
        raise VideoError(f"{source.name}: cannot open as a video ({exc.strerror}: truncated, damaged, or not a "
                         f"video file); {_FIX}") from exc
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError(f"{source.name}: cannot open as a video ({exc}); {_FIX}") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"{source.name}: has no video stream (audio only or not a video); {_FIX}")
    return container


def probe(video: VideoSource | str | os.PathLike) -> VideoInfo:
    """Frame rate and size without decoding the whole video."""
    source = _as_source(video)
    if source.is_frame_folder:
        files = _image_files(source.path) if source.path.is_dir() else [source.path]
        if not files:
            raise VideoError(f"{source.name}: folder holds no image frames")
        with _open_image(files[0], source) as img:
            return VideoInfo(FRAME_FOLDER_FPS, img.width, img.height)
    with _open_container(source) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else FRAME_FOLDER_FPS
        if source.segment is not None:  # the dataset's own frame rate, as its timestamps use
            fps = source.segment.fps
        return VideoInfo(fps, stream.codec_context.width, stream.codec_context.height)


def _open_image(file: Path, source: VideoSource) -> Image.Image:
    if not file.is_file():
        raise VideoError(f"{source.name}: frame {file.name} is {_NOT_A_FILE}")
    try:
        img = Image.open(file)
        img.load()
        return img
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise VideoError(f"{source.name}: cannot read frame {file.name} ({exc}); {_FIX}") from exc


def _image_to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode (8/16-bit gray, RGBA, palette, ...) -> (H, W, 3) uint8."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float32)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "F":
        gray = np.clip(np.asarray(img) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


def _iter_folder_frames(source: VideoSource, size: int | None, fit: str) -> Iterator[np.ndarray]:
    files = _image_files(source.path) if source.path.is_dir() else [source.path]
    if not files:
        raise VideoError(f"{source.name}: folder holds no image frames")
    first_shape = None
    for file in files:
        with _open_image(file, source) as img:
            rgb = _image_to_rgb(img)
        if size is None:  # native size: every frame must agree
            first_shape = first_shape or rgb.shape
            if rgb.shape != first_shape:
                raise VideoError(
                    f"{source.name}: frame {file.name} is {rgb.shape[1]}x{rgb.shape[0]}, the first frame is "
                    f"{first_shape[1]}x{first_shape[0]}; give a size to crop and resize every frame"
                )
        yield fit_square(rgb, size, fit)


def _to_rgb(reformatter: VideoReformatter, frame: av.VideoFrame, size: int | None, fit: str) -> np.ndarray:
    """A decoded frame as (H, W, 3) uint8 at native size, or resized in swscale then made square (`fit`)."""
    if size is None:
        return reformatter.reformat(frame, format="rgb24").to_ndarray()
    w, h = fit_dims(frame.width, frame.height, size, fit)
    return to_square(reformatter.reformat(frame, width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray(),
                     size)


def _iter_file_frames(source: VideoSource, size: int | None, fit: str) -> Iterator[np.ndarray]:
    with _open_container(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # One swscale context for the whole video: frame.reformat / to_ndarray(format=...) set one up per frame,
        # which cost 0.28 ms of CPU per 128x96 frame against 0.05 ms reused (same pixels), 5x the decoding itself.
        reformatter = VideoReformatter()
        count, first, end = 0, None, None  # when the first frame starts and the last one ends, seconds
        rate = stream.average_rate or stream.guessed_rate
        frame_seconds = 1 / float(rate) if rate else 0.0
        try:
            for frame in container.decode(stream):
                first = frame.time if first is None else first
                if frame.time is not None:  # a frame held long (screen recordings) counts with its own duration
                    held = frame.duration and frame.time_base and float(frame.duration * frame.time_base)
                    end = frame.time + (held or frame_seconds)
                count += 1
                yield _to_rgb(reformatter, frame, size, fit)
        except av.error.FFmpegError as exc:
            reason = exc.strerror or exc  # not str(exc): that names FFmpeg's function, not the file
            if count == 0:
                raise VideoError(f"{source.name}: cannot decode any frame ({reason}); {_FIX}") from exc
            raise VideoError(
                f"{source.name}: decoding failed after {count} frames ({reason}); the file is probably "
                f"truncated or damaged; {_FIX}"
            ) from exc
        if count == 0:
            raise VideoError(f"{source.name}: decoded 0 frames; {_FIX}")
        _check_complete(source, stream, count, first, end)


def _iter_segment_frames(source: VideoSource, size: int | None, fit: str) -> Iterator[np.ndarray]:
    """The frames of one LeRobotDataset episode: seek to the keyframe before `segment.start`, decode, keep the
    frames whose time lies in [start, end) (half a frame of tolerance each side, as LeRobot's own lookup allows),
    at most `segment.length` of them. Decoding stops at the episode's end, so an episode costs its own frames plus
    at most one GOP before it, whatever the size of the file that holds it."""
    seg = source.segment
    where = f"{source.name} (episode {seg.episode_index} of {seg.dataset.name}, {source.path.name})"
    tolerance = 0.5 / seg.fps
    with _open_container(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        reformatter = VideoReformatter()  # one swscale context per episode (see _iter_file_frames)
        if seg.start > tolerance and stream.time_base:
            container.seek(int((seg.start - tolerance) / stream.time_base), stream=stream, backward=True)
        count, last = 0, None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                last = frame.time
                if frame.time < seg.start - tolerance:
                    continue
                if frame.time >= seg.end - tolerance or count == seg.length:
                    break
                count += 1
                yield _to_rgb(reformatter, frame, size, fit)
        except av.error.FFmpegError as exc:
            raise VideoError(f"{where}: decoding failed after {count} of its {seg.length} frames "
                             f"({exc.strerror or exc}); the mp4 is probably truncated or damaged: restore it from "
                             f"the dataset's source") from exc
        if count < seg.length:
            ends = f"its last frame is at {last:.2f} s" if last is not None else "it holds no frame"
            raise VideoError(f"{where}: the episode's timestamps run from {seg.start:.2f} s to {seg.end:.2f} s "
                             f"({seg.length} frames), but {ends}: {count} frames decoded; the mp4 is truncated "
                             f"or the metadata belongs to another file: restore it from the dataset's source, or "
                             f"leave the episode out with --episodes")


def _announced_seconds(stream) -> float | None:
    """The video stream's length as the file's header states it (mp4, avi: the stream duration; mkv, webm: the
    DURATION tag the muxer writes when it finishes), or None when the header does not say."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    hours, _, rest = stream.metadata.get("DURATION", "").partition(":")
    minutes, _, secs = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(secs)
    except ValueError:
        return None


def _check_complete(source: VideoSource, stream, count: int, first: float | None, end: float | None) -> None:
    """A cut-off mkv/webm/avi decodes its first part without any FFmpeg error; decoding a prefix silently would
    make a demonstration end before its goal (wrong progress labels), so a video that stops well before the
    length its header announces is an error."""
    announced = _announced_seconds(stream)
    if announced is None or first is None or end is None:
        return
    decoded = end - first
    if decoded < 0.9 * announced and announced - decoded > 0.5:
        raise VideoError(f"{source.name}: decoded {count} frames ({decoded:.1f} s) of the {announced:.1f} s its "
                         f"header announces: the file is truncated; {_FIX}")


def iter_frames(
    video: VideoSource | str | os.PathLike, size: int | None = None, chunk: int = 256, fit: str = "pad"
) -> Iterator[np.ndarray]:
    """Yield (N, S, S, 3) uint8 chunks of at most `chunk` frames, in decode order; S = `size` (made square
    as `fit` says, see `fit_square`), or the native (H, W) when `size` is None. Every frame PyAV decodes
    appears exactly once."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    source = _as_source(video)
    if source.segment is not None:
        reader = _iter_segment_frames
    else:
        reader = _iter_folder_frames if source.is_frame_folder else _iter_file_frames
    frames = reader(source, size, fit)
    buffer: list[np.ndarray] = []
    for frame in frames:
        buffer.append(frame)
        if len(buffer) == chunk:
            yield np.stack(buffer)
            buffer = []
    if buffer:
        yield np.stack(buffer)


def read_frames(video: VideoSource | str | os.PathLike, size: int | None = None, fit: str = "pad") -> np.ndarray:
    """The whole video as (T, S, S, 3) uint8. For long videos prefer `iter_frames`."""
    return np.concatenate(list(iter_frames(video, size, fit=fit)), axis=0)


_CODECS = {  # suffix -> (codec, pixel format)
    ".mp4": ("libx264", "yuv420p"),
    ".m4v": ("libx264", "yuv420p"),
    ".mov": ("libx264", "yuv420p"),
    ".mkv": ("libx264", "yuv420p"),
    ".avi": ("mpeg4", "yuv420p"),
    ".webm": ("libvpx-vp9", "yuv420p"),
    ".gif": ("gif", "rgb8"),
}


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 30.0) -> int:
    """Encode (H, W, 3) uint8 frames to `path`; the codec follows the suffix (.mp4 is H.264 at high quality).
    A path without a suffix becomes a folder of numbered PNG frames. Odd sizes are padded by edge
    replication to even (the chroma subsampling of yuv420p needs it). Returns the number of frames."""
    path = Path(path)
    if path.suffix == "":
        path.mkdir(parents=True, exist_ok=True)
        n = 0
        for n, frame in enumerate(frames, start=1):
            Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(path / f"frame_{n - 1:06d}.png")
        return n
    suffix = path.suffix.lower()
    if suffix not in _CODECS:
        raise VideoError(f"{path}: cannot write {suffix} (known: {', '.join(_CODECS)})")
    codec, pix_fmt = _CODECS[suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            frame = np.asarray(frame, dtype=np.uint8)
            if frame.ndim == 2:
                frame = np.repeat(frame[..., None], 3, axis=2)
            if pix_fmt == "yuv420p" and (frame.shape[0] % 2 or frame.shape[1] % 2):
                frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
            if stream is None:
                stream = container.add_stream(codec, rate=_rate(fps))
                stream.width, stream.height = frame.shape[1], frame.shape[0]
                stream.pix_fmt = pix_fmt
                if codec == "libx264":
                    # no-mbtree: x264's macroblock-tree rate control is not deterministic run to run
                    stream.options = {"crf": "18", "preset": "veryfast", "x264-params": "no-mbtree=1"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame[..., :3], format="rgb24")):
                container.mux(packet)
            n += 1
        if stream is None:
            raise VideoError(f"{path}: no frames to write")
        for packet in stream.encode():
            container.mux(packet)
    return n


def _rate(fps: float):
    return Fraction(fps).limit_denominator(1001)
