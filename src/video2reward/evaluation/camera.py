"""Evaluation from cameras training never saw: DATA_DIR/test_cam/ (written by `v2r demo-data`, see
tasks/views.py), reported beside the in-view numbers by `v2r eval`, `v2r demo` and bench/reward_quality.py.

test_cam/ is laid out like a data folder of its own: test_expert/ and test_fail/ of videos seen through other
views, its own labels.json (dense signal per frame, and each video's "view"), and goals/<view>.png, the goal state
seen from that view. Two readings of it:

* voc_cam, auroc_cam, dense_cam: scored as any video is, with the model's own goal (the demonstrations' final
  frames, seen from the training camera). Progress is already relative to the scored video's own first frame.
* voc_cam_goal: each expert video scored with the goal image of its own view (`v2r score --goal IMAGE`), as a
  user who can photograph the goal with the new camera would; only for models whose head reads a goal.
* voc_cam_relative, auroc_cam_relative: relative goal progress to that goal image in the model's encoder
  features, no head (relative_reward.py; `v2r score --goal IMAGE --relative` with its defaults: the projection
  reading of the encoder's feature map),
  on the expert videos and, for the AUROC, expert vs failed videos (each with its own view's goal image).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from video2reward.errors import V2RError, VideoError
from video2reward.evaluation.metrics import (
    EvalResult,
    dense_from_labels,
    evaluate,
    load_labels,
    success_auroc,
    value_order_correlation,
)
from video2reward.inference.model import RewardModel
from video2reward.inference.relative import relative_goal_progress, use_feature_map
from video2reward.inference.scoring import score_videos
from video2reward.rewards.registry import member_kinds
from video2reward.video.io import find_videos

CAM_SPLIT = "test_cam"


def _has_videos(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    try:
        return bool(find_videos([folder]))
    except VideoError:  # an empty folder (demo-data --n-test-fail 0)
        return False


GOAL_HEADS = ("progress", "temporal", "goal-distance")  # single heads whose reward reads a goal embedding


def reads_goal(model: RewardModel) -> bool:
    """The model's head (or one of an ensemble's members) reads a goal embedding that a goal image replaces."""
    return any(kind in GOAL_HEADS for kind in member_kinds(model.config.get("head")))


def _score_split(model: RewardModel, cam_dir: Path, split: str, skip_bad: bool, progress: bool,
                 goal=None) -> dict[str, np.ndarray]:
    """Rewards of the videos of cam_dir/split, keyed by their path relative to cam_dir (labels.json's keys)."""
    report = score_videos(model, [cam_dir / split], goal=goal, skip_bad=skip_bad, progress=progress)
    return {Path(os.path.relpath(s.source.path, cam_dir)).as_posix(): s.rewards.mu for s in report.videos}


def view_goal_readings(model: RewardModel, cam_dir: Path, labels: dict | None, skip_bad: bool = False,
                       progress: bool = True) -> tuple[float, float, float]:
    """(VOC of test_cam/test_expert with each video scored against the goal image of its own view, VOC of the
    relative goal progress to that image (relative_reward.py), success AUROC of that relative reading over
    test_expert vs test_fail); labels.json gives "view" and "split" per video and "goal_images" per view. The
    first is NaN for a head that reads no goal, all three without goal images, the last two for pixel-ridge (no
    encoder)."""
    nan = float("nan")
    if labels is None or not labels.get("goal_images"):
        return nan, nan, nan
    with_goal, relative, relative_failed = [], [], []
    has_encoder = model.config.get("head") != "pixel-ridge"
    for view, image in labels["goal_images"].items():
        path = cam_dir / image
        if not path.is_file():
            raise V2RError(f"{cam_dir / 'labels.json'}: goal image {image} of view {view} is missing; "
                           f"regenerate the data with `v2r demo-data`")

        def videos_of(split: str) -> list[Path]:
            return [cam_dir / key for key, entry in labels["videos"].items()
                    if entry.get("split") == split and entry.get("view") == view and (cam_dir / key).exists()]

        experts = videos_of("test_expert")
        if experts and reads_goal(model):  # `v2r score --goal IMAGE`: the head's own (pooled) goal features
            report = score_videos(model, experts, goal=model.goal_from_image(path), skip_bad=skip_bad,
                                  progress=progress, desc=f"scoring {CAM_SPLIT}/test_expert against {image}")
            with_goal += [s.rewards.mu for s in report.videos]
        if has_encoder:  # `v2r score --goal IMAGE --relative` with its defaults
            spatial = use_feature_map(model)
            goal_features = model.goal_from_image(path, spatial)
            relative += [relative_goal_progress(model, video, goal_features, spatial=spatial) for video in experts]
            relative_failed += [relative_goal_progress(model, video, goal_features, spatial=spatial)
                                for video in videos_of("test_fail")]
    return (value_order_correlation(with_goal) if with_goal else nan,
            value_order_correlation(relative) if relative else nan,
            success_auroc(relative, relative_failed) if relative and relative_failed else nan)


def add_camera_shift(result: EvalResult, model: RewardModel, data_dir: str | os.PathLike, skip_bad: bool = False,
                     progress: bool = True) -> EvalResult:
    """`result` with the test_cam fields filled in from DATA_DIR/test_cam/ (unchanged when it has no expert
    videos: data made before the split existed, or `v2r demo-data --no-camera-shift`)."""
    cam_dir = Path(data_dir) / CAM_SPLIT
    if not _has_videos(cam_dir / "test_expert"):
        return result
    expert = _score_split(model, cam_dir, "test_expert", skip_bad, progress)
    failed = _score_split(model, cam_dir, "test_fail", skip_bad, progress) if _has_videos(cam_dir / "test_fail") \
        else {}
    labels = load_labels(cam_dir)
    cam = evaluate(expert, failed, dense_from_labels(labels))
    voc_goal, voc_relative, auroc_relative = view_goal_readings(model, cam_dir, labels, skip_bad, progress)
    return replace(result, voc_cam=cam.voc, auroc_cam=cam.auroc, dense_cam=cam.dense_spearman, n_cam=cam.n_expert,
                   voc_cam_goal=voc_goal, voc_cam_relative=voc_relative, auroc_cam_relative=auroc_relative)
