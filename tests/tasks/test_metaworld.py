"""Meta-World demo tasks: experts succeed, failures do not, frames are upright RGB, generation is seeded.

Kept small (one or two episodes per check): Meta-World envs take about half a second to make and render
about 100 frames/s on a CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest

from video2reward.demo.generate import generate_demo_data
from video2reward.tasks import DEMO_TASKS, TASKS, make_env
from video2reward.tasks.metaworld import (
    CAMERA,
    MAX_STEPS,
    METAWORLD_TASKS,
    RENDER_SIZE,
    SUCCESS_HOLD,
    make_metaworld_env,
    metaworld_env_name,
)
from video2reward.tasks.policies import make_policy
from video2reward.tasks.rollout import episode_seeds, make_episode, rollout
from video2reward.video.io import read_frames

NAMES = ("reach", "drawer-open", "button-press-topdown", "door-open", "window-open", "plate-slide")


def _table_rows(frame: np.ndarray) -> np.ndarray:
    """Per image row, the fraction of pixels of the table's wood (brown: red > green > blue, well apart).
    Seen from the corner camera the table top fills the lower half of an upright frame."""
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    wood = (r - g > 15) & (g - b > 15)
    return wood.mean(axis=1)


def _upright(frame: np.ndarray) -> bool:
    rows = _table_rows(frame)
    half = len(rows) // 2
    return rows[half:].mean() > 0.15 and rows[:half].mean() < 0.05


@pytest.fixture(scope="module")
def envs():
    """Physics-only envs of reach and drawer-open, made once."""
    made = {name: make_env(TASKS[name], render=False) for name in ("reach", "drawer-open")}
    yield made
    for env in made.values():
        env.close()


def test_registry_adds_the_metaworld_tasks_but_keeps_the_default_set():
    assert DEMO_TASKS == ("pendulum", "mountaincar")
    assert tuple(task.name for task in METAWORLD_TASKS) == NAMES
    for name in NAMES:
        task = TASKS[name]
        assert task.env_id == f"metaworld:{name}-v3"
        assert task.make_env is not None and task.max_steps == MAX_STEPS
        assert task.failure_policies == ("random", "stalled")
        assert task.dense_signal.endswith(".")
        assert np.array_equal(task.idle_action, np.zeros(4))
    assert metaworld_env_name("drawer-open") == metaworld_env_name("drawer-open-v3") == "drawer-open-v3"


@pytest.mark.parametrize("name", NAMES)
def test_expert_succeeds_within_the_cap_and_ends_soon_after(name):
    task = TASKS[name]
    env = make_env(task, render=False)
    try:
        episode = rollout(env, task, task.expert, np.random.default_rng(0), task.max_steps)
        assert episode.success, f"{name} expert failed"
        assert 20 <= episode.steps < task.max_steps
        assert len(episode.dense) == episode.steps + 1
        # Success still holds in the last state (Meta-World's success is its first success; the video ends
        # SUCCESS_HOLD - 1 steps later).
        _, info = env.unwrapped.evaluate_state(env.unwrapped._last_stable_obs, np.zeros(4, np.float32))
        assert info["success"] == 1.0
        assert episode.dense[-1] > episode.dense[0] + 4  # reward (0 to 10) climbs (window-open: to ~5 at success)
    finally:
        env.close()


@pytest.mark.parametrize("name", ["reach", "drawer-open"])
@pytest.mark.parametrize("kind", ["random", "stalled", "partial"])
def test_failure_policies_never_succeed(envs, name, kind):
    task, env = TASKS[name], envs[name]
    start_seed, policy_seed = episode_seeds(0, name, "test_fail", 0, 0)
    expert_steps = rollout(env, task, task.expert, np.random.default_rng(start_seed), task.max_steps).steps
    policy = make_policy(kind, task, env.action_space, np.random.default_rng(policy_seed), expert_steps)
    episode = rollout(env, task, policy, np.random.default_rng(start_seed), expert_steps)
    assert not episode.success and episode.steps == expert_steps
    assert not env.get_wrapper_attr("succeeded")  # not even for one step
    assert max(episode.dense) < 10.0


def test_dense_is_the_env_reward_of_the_state_shown(envs):
    env, task = envs["drawer-open"], TASKS["drawer-open"]
    obs, _ = env.reset(seed=3)
    start_reward, _ = env.unwrapped.evaluate_state(obs, np.zeros(4, np.float32))
    assert task.dense(env) == pytest.approx(start_reward)
    for _ in range(5):
        obs, reward, *_ = env.step(task.expert(obs))
        assert task.dense(env) == pytest.approx(float(reward))


def test_resets_are_seeded_and_randomised(envs):
    env = envs["drawer-open"]
    starts = [env.reset(seed=seed)[0] for seed in (1, 2, 1)]
    assert np.array_equal(starts[0], starts[2])  # same seed, same drawer position
    assert not np.allclose(starts[0][4:7], starts[1][4:7])  # another seed moves the drawer
    reach = envs["reach"]
    goals = [reach.reset(seed=seed)[0][-3:] for seed in (1, 2)]
    assert not np.allclose(*goals)  # goal observable and redrawn


@pytest.mark.slow
def test_frames_are_upright_rgb_of_the_render_size():
    env = make_metaworld_env("reach-v3", seed=0)
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.dtype == np.uint8 and frame.shape == (RENDER_SIZE, RENDER_SIZE, 3)
        assert _upright(frame)  # the table top is in the lower half
        assert not _upright(frame[::-1])  # the raw corner camera's frame would fail
        assert env.unwrapped.mujoco_renderer.camera_id == env.unwrapped.model.camera(CAMERA).id
        assert env.unwrapped.model.vis.quality.offsamples == 0
        assert not env.unwrapped.model.light_castshadow.any()
    finally:
        env.close()


@pytest.mark.slow
def test_episode_frames_match_dense_and_repeat_with_the_seed():
    task = TASKS["drawer-open"]
    episodes = []
    for _ in range(2):
        env = make_env(task)
        try:
            episodes.append(make_episode(env, task, "stalled", seed=0, split="test_fail", index=1, short_side=64))
        finally:
            env.close()
    first, second = episodes
    assert not first.success
    assert len(first.frames) == len(first.dense) == first.steps + 1
    assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in first.frames)
    assert first.dense == second.dense
    assert all(np.array_equal(a, b) for a, b in zip(first.frames, second.frames))


@pytest.mark.slow
def test_generate_reach_labels_and_videos(tmp_path):
    kwargs = dict(tasks=["reach"], n_train=1, n_test_expert=0, n_test_fail=1, short_side=RENDER_SIZE,
                  progress=False)  # and, by default, one near miss in test_partial
    runs = [generate_demo_data(tmp_path / run, seed=0, **kwargs)["reach"] for run in ("a", "b")]
    labels = [json.loads((folder / "labels.json").read_text(encoding="utf-8")) for folder in runs]
    assert labels[0] == labels[1]
    assert labels[0]["env_id"] == "metaworld:reach-v3" and labels[0]["fps"] == 80.0
    videos = labels[0]["videos"]
    assert sorted(videos) == ["test_fail/ep_000.mp4", "test_partial/ep_000.mp4", "train/ep_000.mp4"]
    assert videos["train/ep_000.mp4"]["success"] is True
    assert videos["test_fail/ep_000.mp4"]["success"] is False
    near_miss = videos["test_partial/ep_000.mp4"]
    assert near_miss["success"] is False and near_miss["policy"] == "partial"
    assert 0.3 * (near_miss["num_frames"] - 1) - 0.5 <= near_miss["stall_step"] <= 0.7 * near_miss["num_frames"]
    assert max(near_miss["dense"]) < 10.0  # reach's reward is 10 only within the goal radius
    for relative, video in videos.items():
        frames = read_frames(runs[0] / relative)
        assert len(video["dense"]) == video["num_frames"] == len(frames)
        assert frames.shape[1:] == (RENDER_SIZE, RENDER_SIZE, 3)
        assert _upright(frames[0])
        assert np.array_equal(frames, read_frames(runs[1] / relative))
    expert = videos["train/ep_000.mp4"]["dense"]  # reach's reward is 10 exactly within the goal radius
    assert expert[-SUCCESS_HOLD:] == [10.0] * SUCCESS_HOLD and expert[-SUCCESS_HOLD - 1] < 10.0  # ends soon after
