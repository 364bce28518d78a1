"""Relative goal progress: a reward read from a goal image taken with the scoring camera, for a camera move.

A reward model's head learned what the task looks like from the demonstrations' camera; from another camera its
reading can fail (even turn around: docs/guides, "Camera moves"). What does carry over is a comparison
made *inside* the new camera's pictures, between the video's own first frame o_0, the current frame o_t and a
goal picture g taken with that camera, in the model's encoder features phi (no head). Two readings:

* `projection` (the default): progress as the progress head defines it, (current - initial) / (goal - initial), taken
  along the line from the first frame's features to the goal's,

      r_t = <phi(o_t) - phi(o_0), phi(g) - phi(o_0)> / ||phi(g) - phi(o_0)||^2     (0 at o_0, 1 at g)

  Only movement *towards* the goal counts: a change at right angles to that line (an arm waving elsewhere, a
  different object position in the goal picture's episode) adds nothing, a step away from it subtracts.
* `distance`: r_t = 1 - ||phi(o_t) - phi(g)|| / ||phi(o_0) - phi(g)||   (0 at o_0, 1 at g). Every way of
  differing from the goal picture counts, so a goal picture from another episode (other object positions) keeps
  d_t from reaching 0 and its noise sits in every frame's reward.

phi is the encoder's last feature map, flattened, where the encoder has one (`spatial`: cnn, efficientnet-lite0;
it keeps where things are in the new camera's picture), else the pooled vector the head reads. It needs features
that see the scene rather than the pixels (ImageNet features, or a CNN trained with `--view-augment`) and a goal
image from the new camera (`--goal`); how well each reading carries is measured by bench/camera_views.py.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.video.io import find_videos, probe, read_frames
from video2reward.video.lerobot import DatasetSelection

EPS = 1e-8
READINGS = ("projection", "distance")
FEATURES = ("auto", "map", "pooled")  # auto: the feature map where the encoder has one (cnn, efficientnet-lite0)


def use_feature_map(model: RewardModel, features: str = "auto") -> bool:
    """Whether the relative reading of `model` compares flattened feature maps (True) or pooled vectors."""
    if features not in FEATURES:
        raise ValueError(f"relative features must be one of {', '.join(FEATURES)}, got {features!r}")
    return model.has_feature_map if features == "auto" else features == "map"


def relative_progress(features: torch.Tensor, goal: torch.Tensor, reading: str = "projection") -> np.ndarray:
    """(T, D) frame features and (D,) goal features -> (T,) relative goal progress, 0 at the first frame.
    projection: <z_t - z_0, g - z_0> / ||g - z_0||^2;  distance: 1 - d_t / d_0 with d_t = ||z_t - g||."""
    z, g = features.float(), goal.float()  # (T, D), (D,)
    if reading == "projection":
        line = g - z[0]  # (D,) from the first frame to the goal
        return ((z - z[0]) @ line / (line @ line).clamp(min=EPS)).cpu().numpy()
    if reading == "distance":
        distance = (z - g).norm(dim=1)  # (T,)
        return (1.0 - distance / distance[0].clamp(min=EPS)).cpu().numpy()
    raise ValueError(f"relative reading must be one of {', '.join(READINGS)}, got {reading!r}")


@torch.inference_mode()
def relative_goal_progress(model: RewardModel, video: str | os.PathLike | np.ndarray,
                           goal: str | os.PathLike | torch.Tensor, reading: str = "projection",
                           spatial: bool = False) -> np.ndarray:
    """One reward per frame of `video` (a path, or (T, S, S, 3) uint8 frames at the model's size) relative to
    `goal` (an image or video path, whose last frame is the goal, or goal features from `model.goal_from_image`)."""
    if model.config.get("head") == "pixel-ridge":
        raise ValueError("relative goal progress reads a learned encoder's features; a pixel-ridge model has none")
    goal_features = goal if isinstance(goal, torch.Tensor) else model.goal_from_image(goal, spatial)
    frames = video if isinstance(video, np.ndarray) else read_frames(video, model.image_size, model.frame_fit)
    return relative_progress(model.embed_frames(frames, spatial=spatial), goal_features, reading)


def relative_to_jsonl(model: RewardModel, paths, goal: str | os.PathLike, out: str | os.PathLike,
                      reading: str = "projection", spatial: bool = False,
                      select: DatasetSelection | None = None) -> int:
    """`v2r score --goal IMAGE --relative [--relative-reading R] [--relative-features map]`: one line per video
    under `paths`, {"video", "rewards" (relative goal progress, one per frame), "fps"}, written atomically to
    `out`. Returns the number of videos."""
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out}: is a folder; give --out a file name, e.g. {out / 'rewards.jsonl'}")
    goal_features = model.goal_from_image(goal, spatial)
    sources = find_videos(paths, select)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for source in sources:
                rewards = relative_goal_progress(model, read_frames(source, model.image_size, model.frame_fit),
                                                 goal_features, reading, spatial)
                record = {"video": source.name, "rewards": [float(f"{r:.6g}") for r in rewards],
                          "fps": probe(source).fps}
                f.write(json.dumps(record) + "\n")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(sources)
