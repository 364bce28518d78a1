"""Generate a labelled demo dataset: videos of scripted experts and failures for each demo task.

Layout, for each task::

    OUT/<task>/train/ep_000.mp4 ...        expert episodes (successes only)
    OUT/<task>/test_expert/ep_000.mp4 ...  more expert episodes
    OUT/<task>/test_fail/ep_000.mp4 ...    failures, alternating the task's failure policies
    OUT/<task>/test_partial/ep_000.mp4 ... near misses: the expert for 30-70% of its length, then idle
    OUT/<task>/labels.json                 per video: split, success, policy, dense signal per frame
    OUT/<task>/test_cam/{test_expert,test_fail}/, labels.json, goals/<view>.png
                                           the same kinds of episodes seen from other cameras (tasks/views.py)

Every episode draws its randomness from a seed derived from (seed, task, split, index, attempt), so
the same seed gives the same labels, the same frames and (with `write_video`'s deterministic x264
settings) the same decoded videos. An expert episode that fails, or a failure
episode that succeeds, is redrawn with the next attempt number. A failure episode runs exactly as many
steps as the expert needs from the same start state, so lengths tell successes and failures apart no
better than chance.

test_partial holds near misses: the scripted expert acts for a fraction of its own episode length drawn
uniformly from `PARTIAL_FRACTION` (0.6 to 0.85, from the episode's policy seed), then the task's idle
action (zero torque, no push, a zero Meta-World action) until the episode has the expert's length; the
step where it stalls is in labels.json as "stall_step". Like any failure, a near miss that succeeds anyway
is redrawn (new start and fraction, next attempt number; at most `MAX_ATTEMPTS` tries, then an error). Its
seeds come from its own split name, so adding the split (or changing its size) leaves the episodes, and so
the video bytes, of train, test_expert and test_fail as they were.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
from PIL import Image

from video2reward.core.files import RENDER_FILE, write_json
from video2reward.core.progress import ProgressBar, progress_bar
from video2reward.demo.lerobot_format import SplitWriter, clear_dataset
from video2reward.demo.train_views import check_cameras, write_train_views
from video2reward.errors import ConfigError
from video2reward.tasks import DEMO_TASKS, TASKS, make_env
from video2reward.tasks.metaworld import CAMERA as METAWORLD_CAMERA
from video2reward.tasks.metaworld import RENDER_SIZE as METAWORLD_RENDER_SIZE
from video2reward.tasks.rollout import make_episode
from video2reward.tasks.task import DemoTask
from video2reward.tasks.views import CAM_SPLIT, describe_views, view_of, views_for
from video2reward.video.io import write_video

SPLITS = ("train", "test_expert", "test_fail", "test_partial")
DATA_FORMATS = ("mp4", "lerobot")  # `v2r demo-data --format`


def _split_plan(
    task: DemoTask, n_train: int, n_test_expert: int, n_test_fail: int, n_test_partial: int = 0
) -> list[tuple[str, int, str]]:
    """(split, index, policy kind) for every episode of one task, in file order."""
    plan = [("train", i, "expert") for i in range(n_train)]
    plan += [("test_expert", i, "expert") for i in range(n_test_expert)]
    failures = task.failure_policies
    plan += [("test_fail", i, failures[i % len(failures)]) for i in range(n_test_fail)]
    plan += [("test_partial", i, "partial") for i in range(n_test_partial)]
    return plan


def _check_args(tasks: Sequence[str], counts: dict[str, int], short_side: int) -> list[DemoTask]:
    if isinstance(tasks, str):
        tasks = [tasks]
    unknown = [name for name in tasks if name not in TASKS]
    if unknown:
        raise ConfigError(f"unknown demo task(s) {', '.join(unknown)} (known: {', '.join(TASKS)})")
    if not tasks:
        raise ConfigError(f"no demo tasks given (known: {', '.join(TASKS)})")
    for name, count in counts.items():
        if count < 0:
            raise ConfigError(f"{name} must be 0 or more, got {count}")
    if short_side < 8:
        raise ConfigError(f"short_side must be at least 8 pixels, got {short_side}")
    return [TASKS[name] for name in dict.fromkeys(tasks)]


def render_facts(task: DemoTask) -> dict[str, str]:
    """How the demo videos of `task` were rendered, in `v2r rl`'s terms (--camera, --render-size, --flip)."""
    scene = task.make_env is not None  # a Meta-World scene: the fixed camera, square renders, turned upright
    return {"task": task.name, "env_id": task.env_id, "camera": METAWORLD_CAMERA if scene else "",
            "render_size": str(METAWORLD_RENDER_SIZE) if scene else "", "flip": "none"}


def labels_json(labels: dict[str, Any]) -> str:
    """labels.json text: indented, but each list of numbers on one line (a few hundred lines, not thousands).
    Only lists broken over lines are joined; JSON strings never hold a raw newline, so they stay as they are."""
    text = json.dumps(labels, indent=1)
    number_list = re.compile(r"\[\n\s*([-+0-9.eE,\s]+?)\n\s*\]")
    return number_list.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def _clear_old_videos(task_dir: Path) -> None:
    """Remove ep_*.mp4 (or a LeRobotDataset) left by an earlier run in the split folders, so labels.json covers
    every video."""
    for split in SPLITS:
        for old in (task_dir / split).glob("ep_*.mp4"):
            old.unlink()
        clear_dataset(task_dir / split)


def _write_camera_split(
    task: DemoTask, task_dir: Path, seed: int, n_expert: int, n_fail: int, short_side: int, fps: float,
    bar: ProgressBar,
) -> None:
    """TASK/test_cam/: expert and failed episodes (and one goal image per view) seen through the views of
    `tasks.views.views_for(task)`, with its own labels.json (see tasks/views.py). Seeds come from the split
    names "test_cam/test_expert", "test_cam/test_fail" and "test_cam/goal", so these episodes are new ones and
    the other splits stay byte-identical."""
    views = views_for(task)
    cam_dir = task_dir / CAM_SPLIT
    for split in ("test_expert", "test_fail", "goals"):
        (cam_dir / split).mkdir(parents=True, exist_ok=True)
        for old in [*(cam_dir / split).glob("ep_*.mp4"), *(cam_dir / split).glob("*.png")]:
            old.unlink()
    failures = task.failure_policies
    plan = [("test_expert", i, "expert") for i in range(n_expert)]
    plan += [("test_fail", i, failures[i % len(failures)]) for i in range(n_fail)]
    videos: dict[str, dict[str, Any]] = {}
    envs: dict[str, gym.Env] = {}
    try:
        for split, index, kind in plan:
            view = view_of(index, views)
            if view.name not in envs:  # one env per view, made when first needed
                envs[view.name] = view.make_env(task)
            env = envs[view.name]
            bar.set_postfix_str(f"{task.name}/{CAM_SPLIT}/{split}", refresh=False)
            episode = make_episode(env, task, kind, seed, f"{CAM_SPLIT}/{split}", index, short_side)
            relative = f"{split}/ep_{index:03d}.mp4"
            num_frames = write_video(cam_dir / relative, [view.shift(f) for f in episode.frames], fps)
            videos[relative] = {"split": split, "success": episode.success, "policy": kind, "view": view.name,
                                "dense": [round(value, 6) + 0.0 for value in episode.dense],
                                "num_frames": num_frames}
            bar.update(1)
        goals = {}
        if n_expert > 0:  # a goal image per view, from an expert episode of its own
            for index, view in enumerate(views):
                if view.name not in envs:
                    envs[view.name] = view.make_env(task)
                episode = make_episode(envs[view.name], task, "expert", seed, f"{CAM_SPLIT}/goal", index, short_side)
                goals[view.name] = f"goals/{view.name}.png"
                Image.fromarray(view.shift(episode.frames[-1])).save(cam_dir / goals[view.name])
    finally:
        for env in envs.values():
            env.close()
    labels = {"task": task.name, "env_id": task.env_id, "seed": seed, "fps": fps, "dense_signal": task.dense_signal,
              "views": describe_views(views), "goal_images": goals, "videos": videos}
    (cam_dir / "labels.json").write_text(labels_json(labels), encoding="utf-8")


def generate_demo_data(
    out: Path,
    tasks: Sequence[str] = DEMO_TASKS,
    seed: int = 0,
    n_train: int = 20,
    n_test_expert: int = 10,
    n_test_fail: int = 10,
    short_side: int = 240,
    progress: bool = True,
    n_test_partial: int | None = None,
    camera_shift: bool = True,
    train_views: Sequence[str] = (),
    data_format: str = "mp4",
) -> dict[str, Path]:
    """Write videos and labels.json for each task under `out`; returns task name -> task folder.

    train and test_expert hold successful expert episodes; test_fail alternates the task's failure
    policies (random, stalled); test_partial holds `n_test_partial` near misses (default: as many as
    test_fail), labelled with policy "partial" and their "stall_step". Frames are rendered by the env, one
    for the start state and one after every step, and resized so their short side is `short_side`. With
    `camera_shift`, TASK/test_cam/ also gets `n_test_expert` expert and `n_test_fail` failed videos seen from
    views the other splits never use (tasks/views.py), with their own labels.json. `train_views` (camera names)
    adds TASK/train_views/<camera>/: train/'s episodes seen from those cameras too, for multi-view TCN
    (Meta-World tasks only; train_views.py). `data_format` "lerobot" makes each split folder a LeRobotDataset v3.0
    with two cameras instead (demo/lerobot_format.py); test_cam/ and train_views/ stay mp4s."""
    if data_format not in DATA_FORMATS:
        raise ConfigError(f"--format {data_format}: unknown (known: {', '.join(DATA_FORMATS)})")
    if n_test_partial is None:
        n_test_partial = n_test_fail
    counts = {"n_train": n_train, "n_test_expert": n_test_expert, "n_test_fail": n_test_fail,
              "n_test_partial": n_test_partial}
    demo_tasks = _check_args(tasks, counts, short_side)
    if train_views:
        train_views = check_cameras(train_views)
    out = Path(out)
    folders: dict[str, Path] = {}
    total = len(demo_tasks) * (sum(counts.values()) + (n_test_expert + n_test_fail if camera_shift else 0))
    total += sum(n_train * len(train_views) for task in demo_tasks if task.make_env is not None)
    with progress_bar(total=total, desc="demo data", unit="video", disable=not progress) as bar:
        for task in demo_tasks:
            task_dir = out / task.name
            for split in SPLITS:
                (task_dir / split).mkdir(parents=True, exist_ok=True)
            _clear_old_videos(task_dir)
            env = make_env(task)
            fps = float(env.metadata["render_fps"])
            videos: dict[str, dict[str, Any]] = {}
            writers: dict[str, SplitWriter] = {}
            try:
                for split, index, kind in _split_plan(task, n_train, n_test_expert, n_test_fail, n_test_partial):
                    bar.set_postfix_str(f"{task.name}/{split}", refresh=False)
                    episode = make_episode(env, task, kind, seed, split, index, short_side)
                    if data_format == "lerobot":
                        if split not in writers:
                            writers[split] = SplitWriter(task, task_dir, split, fps)
                        writer = writers[split]
                        relative = writer.add(episode, kind, seed, index, short_side)
                        num_frames = len(episode.frames)
                    else:
                        relative = f"{split}/ep_{index:03d}.mp4"
                        num_frames = write_video(task_dir / relative, episode.frames, fps)
                    videos[relative] = {
                        "split": split,
                        "success": episode.success,
                        "policy": kind,
                        "dense": [round(value, 6) + 0.0 for value in episode.dense],  # + 0.0: no -0.0
                        "num_frames": num_frames,
                    }
                    if kind == "partial":  # only here: the other splits' labels stay as they were
                        videos[relative]["stall_step"] = episode.stall_step
                    bar.update(1)
                cameras = {}
                for writer in writers.values():
                    cameras = writer.finish(robot_type=task.env_id)
            finally:
                env.close()
            labels = {
                "task": task.name,
                "env_id": task.env_id,
                "seed": seed,
                "fps": fps,
                "dense_signal": task.dense_signal,
                **({"format": "lerobot", **cameras} if data_format == "lerobot" else {}),
                "videos": videos,
            }
            (task_dir / "labels.json").write_text(labels_json(labels), encoding="utf-8")
            for split in SPLITS:  # how these videos were rendered: `v2r train` keeps it, `v2r rl` renders alike
                write_json(task_dir / split / RENDER_FILE, render_facts(task))
            if camera_shift and n_test_expert + n_test_fail > 0:
                _write_camera_split(task, task_dir, seed, n_test_expert, n_test_fail, short_side, fps, bar)
            if train_views and task.make_env is not None:  # classic-control tasks have no other camera
                train_dense = {f"train/ep_{int(k.rsplit('_', 1)[-1].split('.')[0]):03d}.mp4": v["dense"]
                               for k, v in videos.items() if v["split"] == "train"}  # both formats' names
                write_train_views(task, task_dir, seed, train_dense, train_views, short_side, fps, bar)
            folders[task.name] = task_dir
    return folders
