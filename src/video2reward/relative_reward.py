"""Relative goal progress: a reward read from a goal image taken with the scoring camera, for a camera move.

A reward model's head learned what the task looks like from the demonstrations' camera; from another camera its
reading can fail (even turn around: see the README's camera-shift table). What does carry over is a comparison
made *inside* the new camera's pictures: how far the current frame still is from a goal picture taken with that
camera, relative to how far the video's own first frame was,

    r_t = 1 - ||phi(o_t) - phi(g)|| / ||phi(o_0) - phi(g)||      (0 at the first frame, 1 at the goal)

in the model's encoder features phi (no head). It needs features that see the scene rather than the pixels
(trained with `--view-augment`: measured in the README) and a goal image from the new camera (`--goal`).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from video2reward.rewards.model import RewardModel
from video2reward.video.io import read_frames

EPS = 1e-8


def relative_progress(features: torch.Tensor, goal: torch.Tensor) -> np.ndarray:
    """(T, D) frame features and (D,) goal features -> (T,) 1 - d_t / d_0, d_t = ||features_t - goal||."""
    distance = (features.float() - goal.float()).norm(dim=1)  # (T,)
    return (1.0 - distance / distance[0].clamp(min=EPS)).cpu().numpy()


@torch.inference_mode()
def relative_goal_progress(model: RewardModel, video: str | os.PathLike | np.ndarray,
                           goal: str | os.PathLike | torch.Tensor) -> np.ndarray:
    """One reward per frame of `video` (a path, or (T, S, S, 3) uint8 frames at the model's size) relative to
    `goal` (an image or video path, whose last frame is the goal, or goal features from `model.goal_from_image`)."""
    if model.config.get("head") == "pixel-ridge":
        raise ValueError("relative goal progress reads a learned encoder's features; a pixel-ridge model has none")
    goal_features = goal if isinstance(goal, torch.Tensor) else model.goal_from_image(goal)
    frames = video if isinstance(video, np.ndarray) else read_frames(video, model.image_size, model.frame_fit)
    return relative_progress(model.embed_frames(frames), goal_features)


def relative_to_jsonl(model: RewardModel, paths, goal: str | os.PathLike, out: str | os.PathLike) -> int:
    """`v2r score --goal IMAGE --relative`: one line per video under `paths`, {"video", "rewards" (relative goal
    progress, one per frame), "fps"}, written atomically to `out`. Returns the number of videos."""
    import json
    import tempfile
    from pathlib import Path

    from video2reward.errors import ConfigError
    from video2reward.video.io import find_videos, probe

    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out}: is a folder; give --out a file name, e.g. {out / 'rewards.jsonl'}")
    goal_features = model.goal_from_image(goal)
    sources = find_videos(paths)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for source in sources:
                rewards = relative_goal_progress(model, read_frames(source, model.image_size, model.frame_fit),
                                                 goal_features)
                record = {"video": source.name, "rewards": [float(f"{r:.6g}") for r in rewards],
                          "fps": probe(source).fps}
                f.write(json.dumps(record) + "\n")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(sources)
