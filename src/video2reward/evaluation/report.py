"""`v2r report MODEL VIDEOS... --out report/`: one self-contained HTML page to look at a reward model.

The page opens with an overview: every video's reward over normalised time on one chart (expert, failed and
near-miss videos in their own colours, each group's mean in bold). Then every video plays next to its reward
curve (mu, the mu +- sigma band, the success probability when the model has a detector, the environment's dense
signal when labels have it) with a cursor that follows playback; clicking or dragging on a curve seeks the
video, and the player's buttons sit below it, never over the picture. Every curve is drawn on the model's fixed
reward axis (inference/reward_axis.py), the band clipped to it. When the videos come with a labels.json (as
`v2r demo-data` writes: DATA/labels.json next to DATA/test_expert/ ...), the page starts with the evaluation
table of evaluation.py (VOC, success AUROC, dense Spearman, near-miss AUROC, each explained) and tags every
video with its group and final reward (and an expert video with its VOC).

The page needs nothing but itself: the videos are re-encoded small (H.264 in mp4, which every major
browser plays; VP9 in webm when this PyAV has no H.264 encoder) and embedded as base64 data URIs, the data
as JSON, the curves are drawn by the page's own script as SVG (report_page.html). Frame i of an embedded
video is shown from i / fps to (i + 1) / fps, exactly the reward's frame i: every decoded frame is encoded
once, at the source's frame rate.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from video2reward.errors import ConfigError, V2RError
from video2reward.evaluation.metrics import (
    LABELS_FILE,
    PARTIAL_SPLIT,
    EvalResult,
    evaluate,
    load_labels,
    spearman,
)
from video2reward.inference.model import RewardModel
from video2reward.inference.reward_axis import plot_title, reward_axis
from video2reward.inference.scoring import ScoredVideo, score_videos
from video2reward.video.io import VideoSource, iter_frames
from video2reward.video.lerobot import DatasetSelection

# (PyAV encoder, container format, MIME type), in order of preference: H.264 plays in Chrome, Edge, Safari and
# Firefox; VP9 in Chrome, Edge, Firefox and recent Safari, and in Chromium builds without H.264.
BROWSER_CODECS = (("libx264", "mp4", "video/mp4"), ("libvpx-vp9", "webm", "video/webm"),
                  ("libvpx", "webm", "video/webm"))


@dataclass
class ReportResult:
    path: Path
    videos: int
    skipped: list[tuple[str, str]]
    eval: EvalResult | None
    bytes: int


def browser_codec() -> tuple[str, str, str]:
    """The first of BROWSER_CODECS this PyAV can encode."""
    for codec, container, mime in BROWSER_CODECS:
        if codec in av.codecs_available:
            return codec, container, mime
    raise V2RError("this PyAV build has neither an H.264 nor a VP9 encoder, so the report cannot embed videos a "
                   "browser plays; install the PyAV wheel from PyPI (pip install --force-reinstall av), which has both")


def _display_size(width: int, height: int, target: int) -> tuple[int, int]:
    """Width `target` (or less for a smaller video), aspect kept, both even (yuv420p needs it)."""
    scale = min(1.0, target / width)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def encode_for_browser(source: VideoSource, fps: float, width: int, quality: int) -> tuple[bytes, str, int, int]:
    """Every frame of `source`, resized to `width` pixels wide, as a small browser-playable video in memory:
    (bytes, MIME type, width, height). Streams: one frame in memory at a time."""
    codec, container_format, mime = browser_codec()
    buffer = io.BytesIO()
    size = None
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.pix_fmt = "yuv420p"
        for chunk in iter_frames(source, None, chunk=32):
            for frame in chunk:
                if size is None:
                    size = _display_size(frame.shape[1], frame.shape[0], width)
                    stream.width, stream.height = size
                    stream.options = ({"crf": str(quality), "preset": "veryfast", "x264-params": "no-mbtree=1"}
                                      if codec == "libx264"  # no-mbtree: the same page for the same video
                                      else {"crf": str(quality), "b": "0", "deadline": "realtime"})
                image = Image.fromarray(frame).resize(size, Image.BILINEAR)
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue(), mime, size[0], size[1]


def find_labels(paths: Sequence[str | os.PathLike]) -> Path | None:
    """The labels.json that goes with the videos: in a given folder, or one or two levels above a given path
    (DATA/labels.json for DATA/test_expert or DATA/test_expert/ep_000.mp4)."""
    for given in paths:
        path = Path(given).resolve()
        folders = [path, path.parent, path.parent.parent] if path.is_dir() else [path.parent, path.parent.parent]
        for folder in folders:
            if (folder / LABELS_FILE).is_file():
                return folder / LABELS_FILE
    return None


def _label_key(source: VideoSource, labels_dir: Path) -> str:
    return source.relative_name(labels_dir)


def label_videos(videos: Sequence[ScoredVideo], labels_file: Path | None) -> tuple[EvalResult | None, dict[str, dict]]:
    """Evaluate the videos that labels.json knows: expert (success true), failed (false) and near miss (split
    test_partial); returns the EvalResult (None when no video has a label) and, per video name, its group, its
    final reward (the mean of its last `last_k` frames, which the AUROCs compare), its VOC when it is an expert
    video, and the Spearman correlation of its reward with its dense signal."""
    labels = (load_labels(labels_file.parent) if labels_file else None) or {"videos": {}}
    groups: dict[str, dict[str, np.ndarray]] = {"expert": {}, "failed": {}, "near miss": {}}
    per_video: dict[str, dict] = {}
    for video in videos:
        entry = labels["videos"].get(_label_key(video.source, labels_file.parent)) if labels_file else None
        if entry is None and video.source.segment is not None and video.source.segment.success is not None:
            entry = {"success": video.source.segment.success}  # a LeRobotDataset's own flag
        if entry is None:
            continue
        group = ("near miss" if entry.get("split") == PARTIAL_SPLIT
                 else "expert" if entry.get("success") else "failed")
        groups[group][video.source.name] = video.rewards.mu
        dense = entry.get("dense")
        rho = spearman(video.rewards.mu, dense) if dense and len(dense) == len(video.rewards) else float("nan")
        per_video[video.source.name] = {"group": group, "dense": dense if dense and len(dense) == len(video.rewards)
                                        else None, "dense_spearman": None if math.isnan(rho) else rho}
    if not per_video:
        return None, {}
    dense = {name: per_video[name]["dense"] for name in per_video if per_video[name]["dense"] is not None}
    result = evaluate(groups["expert"], groups["failed"], dense or None, partial=groups["near miss"] or None)
    for row in result.per_video:
        if row["video"] in per_video:
            label = per_video[row["video"]]
            label["final"], label["last_k"] = row["score_last_k"], result.last_k  # what the AUROCs compare
            if label["group"] == "expert":  # VOC scores the order of a success; a failure's is no score of it
                label["voc"] = None if math.isnan(row["voc"]) else row["voc"]
    return result, per_video


def _shown(path: Path) -> str:
    """`path` as the page names it: relative to the working folder when it lies below it, else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _values(x: np.ndarray | None) -> list[float] | None:
    return None if x is None else [float(f"{v:.5g}") for v in np.asarray(x, dtype=np.float64)]


def render_page(title: str, data: dict[str, Any]) -> str:
    """report_page.html with the title and the data (JSON, made safe to sit inside a <script> element)."""
    template = resources.files("video2reward.evaluation").joinpath("report_page.html").read_text(encoding="utf-8")
    payload = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    return template.replace("__TITLE__", html.escape(title)).replace("__DATA__", payload)


def write_report(
    model: RewardModel, model_path: str | os.PathLike, paths: Sequence[str | os.PathLike], out: str | os.PathLike,
    labels: str | os.PathLike | None = None, width: int = 320, quality: int = 30, skip_bad: bool = False,
    workers: int = 0, progress: bool = True, select: DatasetSelection | None = None,
) -> ReportResult:
    """Score the videos under `paths` and write OUT/index.html (see the module docstring). `labels`: a
    labels.json (or its folder); default: found next to the videos (`find_labels`), none is fine."""
    if width < 16 or not 0 <= quality <= 51:
        raise ConfigError(f"--width {width} / --quality {quality}: use a width of at least 16 pixels and a quality "
                          f"(crf) from 0 (lossless, large) to 51 (smallest)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: is a file; --out names a folder, where index.html is written")
    labels_file = Path(labels) if labels else find_labels(paths)
    if labels_file is not None and labels_file.is_dir():
        labels_file = labels_file / LABELS_FILE
    if labels and not labels_file.is_file():
        raise ConfigError(f"--labels {labels}: no such file; give a labels.json (or the folder holding one)")
    scored = score_videos(model, paths, skip_bad=skip_bad, progress=progress, workers=workers, select=select)
    result, per_video = label_videos(scored.videos, labels_file)
    videos = []
    for video in scored.videos:
        fps = video.rewards.fps or 30.0
        data, mime, w, h = encode_for_browser(video.source, fps, width, quality)
        label = per_video.get(video.source.name)
        videos.append({
            "name": video.source.name, "fps": fps, "mime": mime, "width": w, "height": h,
            "data": base64.b64encode(data).decode("ascii"),
            "mu": _values(video.rewards.mu), "sigma": _values(video.rewards.sigma),
            "success_prob": _values(video.rewards.success_prob),
            "dense": label["dense"] if label else None,
            "label": {k: v for k, v in label.items() if k != "dense"} if label else None,
        })
    page = render_page(f"v2r report: {Path(model_path).name}", {
        "model": str(model_path), "model_description": model.describe(),
        "heading": plot_title(model, [video.source.path for video in scored.videos]),
        "axis": reward_axis(model.config).to_dict(),  # every curve of the page on the model's fixed reward axis
        "written": time.strftime("%Y-%m-%d %H:%M:%S"), "videos": videos,
        "eval": result.to_dict() if result is not None else None,
        "labels_file": _shown(labels_file) if result is not None else None,
    })
    out.mkdir(parents=True, exist_ok=True)
    path, tmp = out / "index.html", out / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)  # a reader sees the old page or the new one, never half of one
    return ReportResult(path, len(videos), scored.skipped, result, len(page.encode("utf-8")))
