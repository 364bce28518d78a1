"""`v2r demo-data --format lerobot`: each split folder of a task (train/, test_expert/, test_fail/,
test_partial/) is a LeRobotDataset v3.0 instead of a folder of mp4s, with two camera keys:

* Meta-World tasks: `observation.images.corner` (the camera of the mp4 format's videos) and
  `observation.images.topview` (the same episode replayed from the same seeds and seen from above; MuJoCo's
  physics does not depend on the camera, and the replay is checked against the first one's dense signal);
* classic-control tasks (one 2-D renderer): `observation.images.main` and `observation.images.crop` (the
  same frames framed tighter, tasks/views.py's crop).

The first camera's episodes are encoded exactly as the mp4 format's files (same seeds, same deterministic
x264) and joined without re-encoding (video/lerobot_write.py), so scoring the dataset gives the rewards of
scoring the mp4 format's files. Per episode, meta/episodes holds `success`, `split`, `policy`; per frame,
data/ holds `next.reward` (the environment's dense signal) and `next.success`. labels.json names each episode
SPLIT/episode_NNNNNN.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from video2reward.tasks.rollout import Episode, make_episode
from video2reward.tasks.task import DemoTask
from video2reward.tasks.views import TRAINING_CAMERA, CameraView, crop_window
from video2reward.video.io import write_video
from video2reward.video.lerobot_write import EpisodeRecord, write_dataset

STAGING = ".lerobot-staging"  # per-episode mp4s before they are joined; removed when the split is written
DATASET_FILES = ("meta", "data", "videos")


def camera_keys(task: DemoTask) -> tuple[str, str]:
    if task.make_env is not None:
        return f"observation.images.{TRAINING_CAMERA}", "observation.images.topview"
    return "observation.images.main", "observation.images.crop"


def clear_dataset(split_dir: Path) -> None:
    """Remove a dataset an earlier --format lerobot run left in a split folder."""
    for name in DATASET_FILES:
        shutil.rmtree(split_dir / name, ignore_errors=True)


class SplitWriter:
    """Collects one split's episodes (both cameras' mp4s staged under TASK/.lerobot-staging/) and writes the
    dataset at the end."""

    def __init__(self, task: DemoTask, task_dir: Path, split: str, fps: float):
        self.task, self.task_dir, self.split, self.fps = task, task_dir, split, fps
        self.keys = camera_keys(task)
        self.stage = task_dir / STAGING / split
        shutil.rmtree(self.stage, ignore_errors=True)
        self.records: list[EpisodeRecord] = []
        self._second_env: gym.Env | None = None

    def add(self, episode: Episode, kind: str, seed: int, index: int, short_side: int) -> str:
        """Stage one episode; returns its labels.json key."""
        first = self.stage / self.keys[0] / f"ep_{index:03d}.mp4"
        n = write_video(first, episode.frames, self.fps)
        second = self.stage / self.keys[1] / f"ep_{index:03d}.mp4"
        write_video(second, self._second_view(episode, kind, seed, index, short_side), self.fps)
        dense = [round(value, 6) + 0.0 for value in episode.dense]
        done = [False] * (n - 1) + [True]
        self.records.append(EpisodeRecord(
            {self.keys[0]: first, self.keys[1]: second}, n, self.task.name.replace("-", " "), episode.success,
            frame_columns={"next.reward": np.asarray(dense, np.float32).tolist(), "next.done": done,
                           "next.success": [episode.success and last for last in done]},
            episode_columns={"split": self.split, "policy": kind}))
        return f"{self.split}/episode_{len(self.records) - 1:06d}"

    def _second_view(self, episode: Episode, kind: str, seed: int, index: int, short_side: int) -> list[np.ndarray]:
        if self.task.make_env is None:
            return [crop_window(frame) for frame in episode.frames]
        if self._second_env is None:
            self._second_env = CameraView("topview", "topview").make_env(self.task)
        replay = make_episode(self._second_env, self.task, kind, seed, self.split, index, short_side)
        if [round(v, 6) for v in replay.dense] != [round(v, 6) for v in episode.dense]:
            raise RuntimeError(f"{self.task.name} {self.split} episode {index}: replayed from the topview camera, "
                               f"the episode differs; the dataset's two cameras would be out of step")
        return replay.frames

    def finish(self, robot_type: str) -> dict[str, Any]:
        """Write TASK/SPLIT as the dataset; returns what labels.json says of the split."""
        if self._second_env is not None:
            self._second_env.close()
        try:
            if self.records:
                write_dataset(self.task_dir / self.split, self.records, self.fps, robot_type=robot_type)
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
            if self.stage.parent.exists() and not any(self.stage.parent.iterdir()):
                self.stage.parent.rmdir()
        return {"camera_keys": list(self.keys)}
