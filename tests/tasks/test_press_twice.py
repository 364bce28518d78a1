"""press-twice, the memory demo task: the expert presses twice and succeeds, the second trip out is frame for frame
the first, near misses and failures do not succeed, the dense signal climbs, and the env passes gymnasium's
checker and `v2r rl`'s env lookup."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from video2reward.rl.envs import env_spec
from video2reward.tasks import TASKS, make_env
from video2reward.tasks.press_twice import ENV_ID
from video2reward.tasks.rollout import make_episode, rollout

TASK = TASKS["press-twice"]


@pytest.fixture(scope="module")
def env():
    made = make_env(TASK)
    yield made
    made.close()


def _phases(env, seed: int) -> tuple[list[int], list[np.ndarray]]:
    """The expert's phase and frame after every step of one episode."""
    obs = TASK.start(env, np.random.default_rng(seed))
    phases, frames = [0], [env.render()]
    for _ in range(TASK.max_steps):
        obs, *_ = env.step(TASK.expert(obs))
        phases.append(env.unwrapped.phase)
        frames.append(env.render())
        if TASK.at_goal(env, {}):
            break
    return phases, frames


def test_the_env_passes_gymnasiums_checker() -> None:
    assert ENV_ID in gym.registry
    check_env(gym.make(ENV_ID, render_mode="rgb_array").unwrapped, skip_render_check=False)


@pytest.mark.parametrize("seed", range(5))
def test_expert_presses_twice_and_its_second_trip_out_repeats_the_first(env, seed: int) -> None:
    episode = rollout(env, TASK, TASK.expert, np.random.default_rng(seed), TASK.max_steps)
    assert episode.success and 40 <= episode.steps <= 100
    assert episode.dense[0] == 0.0 and episode.dense[-1] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(episode.dense) >= -1e-9)  # the dense signal never falls along the expert
    phases, frames = _phases(env, seed)
    first_out = [f for f, p in zip(frames, phases) if p == 0]
    second_out = frames[phases.index(2):]  # the frame the puck arrives home on starts the second trip
    n = min(len(first_out), len(second_out)) - 1
    assert n >= 15
    for a, b in zip(first_out[:n], second_out[:n]):
        np.testing.assert_array_equal(a, b)  # nothing in the picture counts the presses


@pytest.mark.parametrize("kind", ["partial", "stalled", "random"])
def test_failures_and_near_misses_do_not_succeed(env, kind: str) -> None:
    for index in range(4):
        episode = make_episode(env, TASK, kind, seed=0, split="test", index=index, short_side=32)
        assert not episode.success
        assert max(episode.dense) < 0.99
        assert episode.frames[0].shape == (32, 32, 3)


def test_rl_finds_the_task_by_name() -> None:
    spec = env_spec("press-twice")
    made = spec.make(None)
    obs, _ = made.reset(seed=0)
    assert made.observation_space.contains(obs)
    made.close()
