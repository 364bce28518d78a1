"""Evaluation of a model on a labelled data folder (`v2r eval`, `v2r demo`, bench/reward_quality.py): score
DATA_DIR/test_expert, test_fail, test_partial (near misses) and test_cam (other cameras) and compute VOC, AUROC,
near-miss AUROC, the dense correlation and the camera columns."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from video2reward.errors import V2RError, VideoError
from video2reward.evaluation.camera import add_camera_shift
from video2reward.evaluation.metrics import (
    PARTIAL_SPLIT,
    EvalResult,
    add_near_misses,
    dense_from_labels,
    evaluate,
    load_labels,
)
from video2reward.inference.model import RewardModel
from video2reward.inference.scoring import score_videos, training_camera
from video2reward.video.io import VideoSource, find_videos
from video2reward.video.lerobot import DatasetSelection, is_dataset


def _relative_key(source: VideoSource, data_dir: Path) -> str:
    return source.relative_name(data_dir)


def evaluate_data_dir(
    model: RewardModel, data_dir: str | os.PathLike, skip_bad: bool = False, progress: bool = True,
    select: DatasetSelection | None = None,
) -> tuple[EvalResult, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score DATA_DIR/test_expert and DATA_DIR/test_fail and compute VOC, AUROC and (with DATA_DIR/labels.json)
    the Spearman correlation with the environment's dense signal. Returns (result, expert, failed), the
    latter two mapping a video's path relative to DATA_DIR to its rewards."""
    data_dir = Path(data_dir)
    if is_dataset(data_dir):
        return evaluate_dataset(model, data_dir, skip_bad, progress, select)
    missing = [s for s in ("test_expert", "test_fail") if not (data_dir / s).is_dir()]
    if missing:
        raise V2RError(f"{data_dir}: needs the folders test_expert/ and test_fail/ (missing: {', '.join(missing)}), "
                       f"or to be a LeRobotDataset whose episodes are marked successful or failed")
    split_rewards: dict[str, dict[str, np.ndarray]] = {}
    for split in ("test_expert", "test_fail"):
        report = score_videos(model, [data_dir / split], skip_bad=skip_bad, progress=progress, select=select)
        split_rewards[split] = {_relative_key(s.source, data_dir): s.rewards.mu for s in report.videos}
    expert, failed = split_rewards["test_expert"], split_rewards["test_fail"]
    return evaluate(expert, failed, dense_from_labels(load_labels(data_dir))), expert, failed


def evaluate_dataset(
    model: RewardModel, root: Path, skip_bad: bool = False, progress: bool = True,
    select: DatasetSelection | None = None,
) -> tuple[EvalResult, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A LeRobotDataset as the labelled data: its episodes marked successful are the experts (VOC, and the
    positives of the AUROC), those marked failed the negatives (meta/episodes' `success` column)."""
    report = score_videos(model, [root], skip_bad=skip_bad, progress=progress, select=select)
    expert = {_relative_key(s.source, root): s.rewards.mu for s in report.videos if s.source.segment.success}
    failed = {_relative_key(s.source, root): s.rewards.mu for s in report.videos
              if s.source.segment.success is False}
    if not expert or not failed:
        raise V2RError(f"{root}: needs episodes marked successful and episodes marked failed (a success column in "
                       f"meta/episodes) to evaluate; it has {len(expert)} and {len(failed)} of {len(report.videos)}"
                       f" scored. Score it with `v2r score` instead")
    return evaluate(expert, failed, None), expert, failed


def evaluate_data_dir_with_near_misses(
    model: RewardModel, data_dir: str | os.PathLike, skip_bad: bool = False, progress: bool = True,
    camera_shift: bool = True, select: DatasetSelection | None = None,
) -> tuple[EvalResult, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """`evaluate_data_dir` (test_expert/ and test_fail/ of DATA_DIR), plus DATA_DIR/test_partial/ when
    it holds videos: those are scored too and `add_near_misses` fills in `auroc_near_miss`. Without the folder
    (data made before the split existed) the result is `evaluate_data_dir`'s, with `auroc_near_miss` NaN.
    Returns (result, expert, failed, partial), each mapping a video's path relative to DATA_DIR to its
    rewards; `partial` is empty without near misses. What `v2r eval` and the demo/bench table call.
    With `camera_shift`, DATA_DIR/test_cam/ (other cameras), where it exists, fills in the result's *_cam fields
    (camera_eval.py)."""
    select = (select or DatasetSelection()).with_default_camera(training_camera(model))
    result, expert, failed = evaluate_data_dir(model, data_dir, skip_bad=skip_bad, progress=progress, select=select)
    if camera_shift:
        result = add_camera_shift(result, model, data_dir, skip_bad=skip_bad, progress=progress)
    folder = Path(data_dir) / PARTIAL_SPLIT
    if not folder.is_dir():
        return result, expert, failed, {}
    try:
        find_videos([folder], select)
    except VideoError:  # an empty test_partial/ (demo-data --n-test-partial 0)
        return result, expert, failed, {}
    report = score_videos(model, [folder], skip_bad=skip_bad, progress=progress, select=select)
    partial = {_relative_key(s.source, Path(data_dir)): s.rewards.mu for s in report.videos}
    return add_near_misses(result, expert, partial), expert, failed, partial
