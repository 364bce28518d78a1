"""Synchronised extra views of the train split, for multi-view TCN: `v2r demo-data OUT --train-views CAM ...`.

Multi-view time-contrastive learning (`v2r pretrain --method tcn --views DIR1 DIR2 ...`, video/multiview.py) needs
the same demonstrations filmed by several cameras at once. For each Meta-World task and each named camera this
writes `TASK/train_views/<camera>/ep_XXX.mp4`: train/'s episodes again, replayed from the same seeds (the same
start state and the same scripted expert; MuJoCo's physics does not depend on which camera renders) and
rendered from that camera, under the same file names, so frame t of every view is the same moment. The replay
is checked against train/'s labels: an episode whose dense signal differs stops the run rather than writing a
view that is out of step.

train/ itself and every other split stay byte-identical. Classic-control tasks have one fixed 2-D renderer (no
other camera) and get no train views. The test_cam/ split's views (tasks/views.py) use the corner2-4
cameras and the moved training camera: keep those out of `--train-views` for a measurement from unseen cameras
(`topview`, `behindGripper` and `gripperPOV`, the gripper's own moving camera, are the scene's others).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from video2reward.core.progress import ProgressBar
from video2reward.errors import ConfigError
from video2reward.tasks.rollout import make_episode
from video2reward.tasks.task import DemoTask
from video2reward.tasks.views import METAWORLD_VIEWS, TRAINING_CAMERA, CameraView
from video2reward.video.io import write_video

TRAIN_VIEWS = "train_views"  # the folder under a task's data folder
METAWORLD_CAMERAS = ("topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV")


def check_cameras(cameras: Sequence[str]) -> list[str]:
    """The camera names, deduplicated; a ConfigError for one the Meta-World scene does not have or for the
    training camera itself (train/ already is that view)."""
    unknown = [c for c in cameras if c not in METAWORLD_CAMERAS]
    if unknown:
        raise ConfigError(f"--train-views: no camera {', '.join(map(repr, unknown))} in the Meta-World scene "
                          f"(its cameras: {', '.join(c for c in METAWORLD_CAMERAS if c != TRAINING_CAMERA)})")
    if TRAINING_CAMERA in cameras:
        raise ConfigError(f"--train-views: {TRAINING_CAMERA!r} is the camera of train/ itself; name other cameras")
    return list(dict.fromkeys(cameras))


def cameras_of_test_cam() -> set[str]:
    """Cameras test_cam/ is seen from (the moved training camera included): train views from these are not
    unseen any more."""
    return {view.camera for view in METAWORLD_VIEWS}


def write_train_views(task: DemoTask, task_dir: Path, seed: int, train_dense: dict[str, list[float]],
                      cameras: Sequence[str], short_side: int, fps: float, bar: ProgressBar) -> None:
    """TASK/train_views/<camera>/ep_XXX.mp4 for each camera: train/'s episodes (file name -> dense signal as in
    train/'s labels, `train_dense`) replayed and rendered from `camera`."""
    for camera in cameras:
        folder = task_dir / TRAIN_VIEWS / camera
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("ep_*.mp4"):
            old.unlink()
        env = CameraView(camera, camera).make_env(task)
        try:
            for name, dense in train_dense.items():
                index = int(Path(name).stem.split("_")[-1])
                bar.set_postfix_str(f"{task.name}/{TRAIN_VIEWS}/{camera}", refresh=False)
                episode = make_episode(env, task, "expert", seed, "train", index, short_side)
                replayed = [round(value, 6) + 0.0 for value in episode.dense]
                if replayed != dense:
                    raise RuntimeError(f"{task.name} {name}: replayed from camera {camera}, the episode differs from "
                                       f"train/'s ({len(replayed)} vs {len(dense)} steps); views would be out of "
                                       f"step")
                write_video(folder / Path(name).name, episode.frames, fps)
                bar.update(1)
        finally:
            env.close()
