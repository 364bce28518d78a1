"""Scripted policies of the demo tasks: experts succeed, failure policies do not, dense signals are sane."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from video2reward.tasks import DEMO_TASKS, TASKS, make_env
from video2reward.tasks.classic import mountaincar_expert, pendulum_energy
from video2reward.tasks.policies import (
    PARTIAL_FRACTION,
    RandomPolicy,
    StalledPolicy,
    make_policy,
)
from video2reward.tasks.rollout import episode_seeds, make_episode, rollout

SEEDS = range(8)
EXPERT_STEPS = {"pendulum": (40, 150), "mountaincar": (80, 160)}  # sensible episode lengths


@pytest.fixture(scope="module")
def envs():
    """One physics-only env per task (no rendering: these tests only need states)."""
    made = {name: make_env(TASKS[name], render=False) for name in DEMO_TASKS}
    yield made
    for env in made.values():
        env.close()


def _expert_episode(env, task, seed: int):
    return rollout(env, task, task.expert, np.random.default_rng(seed), task.max_steps)


def test_registry_lists_the_demo_tasks():
    assert DEMO_TASKS == ("pendulum", "mountaincar")
    for name in DEMO_TASKS:
        task = TASKS[name]
        assert task.name == name
        assert task.failure_policies == ("random", "stalled")
        assert task.dense_signal.endswith(".")


@pytest.mark.parametrize("name", DEMO_TASKS)
def test_expert_succeeds_from_several_starts(envs, name):
    task = TASKS[name]
    low, high = EXPERT_STEPS[name]
    for seed in SEEDS:
        episode = _expert_episode(envs[name], task, seed)
        assert episode.success, f"{name} expert failed from seed {seed}"
        assert low <= episode.steps <= high, f"{name} expert took {episode.steps} steps from seed {seed}"
        assert len(episode.dense) == episode.steps + 1
        assert episode.frames == []  # nothing rendered without a short side


def test_pendulum_expert_starts_hanging_and_ends_balanced(envs):
    task = TASKS["pendulum"]
    for seed in SEEDS:
        episode = _expert_episode(envs["pendulum"], task, seed)
        assert episode.dense[0] < -8.0  # hanging near the bottom: about -pi^2
        assert episode.dense[-1] > -0.15**2 - 0.1 * 0.5**2  # inside the balance region
        theta, omega = envs["pendulum"].unwrapped.state
        assert abs(math.remainder(theta, 2 * math.pi)) < 0.15 and abs(omega) < 0.5


def test_mountaincar_expert_starts_low_and_ends_at_the_flag(envs):
    task = TASKS["mountaincar"]
    for seed in SEEDS:
        episode = _expert_episode(envs["mountaincar"], task, seed)
        assert 0.0 <= episode.dense[0] < 0.04  # at rest in the start region
        assert episode.dense[-1] >= 1.0  # at (or beyond, moving) the flag's energy
        assert envs["mountaincar"].unwrapped.state[0] >= 0.5


@pytest.mark.parametrize("name", DEMO_TASKS)
@pytest.mark.parametrize("kind", ["random", "stalled", "partial"])
def test_failure_policies_do_not_succeed(envs, name, kind):
    task = TASKS[name]
    env = envs[name]
    for index in SEEDS:
        start_seed, policy_seed = episode_seeds(0, name, "test_fail", index, 0)
        expert_steps = _expert_episode(env, task, start_seed).steps
        policy = make_policy(kind, task, env.action_space, np.random.default_rng(policy_seed), expert_steps)
        episode = rollout(env, task, policy, np.random.default_rng(start_seed), expert_steps)
        assert not episode.success, f"{name} {kind} policy succeeded (episode {index})"
        assert episode.steps == expert_steps  # runs the full, expert-like length


def test_stalled_policy_follows_the_expert_then_idles():
    calls = []

    def expert(obs):
        calls.append(obs)
        return 2

    policy = StalledPolicy(expert, idle_action=1, stall_step=3)
    actions = [policy(np.zeros(2)) for _ in range(6)]
    assert actions == [2, 2, 2, 1, 1, 1]
    assert len(calls) == 3


def test_partial_policy_stalls_within_its_fraction(envs):
    for seed in range(20):
        policy = make_policy("partial", TASKS["pendulum"], envs["pendulum"].action_space,
                             np.random.default_rng(seed), 100)
        assert isinstance(policy, StalledPolicy) and policy.expert is TASKS["pendulum"].expert
        low, high = PARTIAL_FRACTION
        assert 100 * low <= policy.stall_step <= 100 * high
        assert np.array_equal(policy.idle_action, [0.0])  # zero torque
    assert make_policy("partial", TASKS["mountaincar"], envs["mountaincar"].action_space,
                       np.random.default_rng(0), 100).idle_action == 1  # MountainCar's "no push"


def test_random_policy_stays_in_the_action_space(envs):
    for name in DEMO_TASKS:
        space = envs[name].action_space
        policy = RandomPolicy(space, np.random.default_rng(0))
        actions = [policy(None) for _ in range(200)]
        assert all(space.contains(action) for action in actions)
        assert len({np.asarray(a).tobytes() for a in actions}) > 2  # actually random


def test_make_policy_rejects_unknown_kinds(envs):
    with pytest.raises(ValueError, match="unknown policy kind"):
        make_policy("lazy", TASKS["pendulum"], envs["pendulum"].action_space, np.random.default_rng(0), 50)


def test_pendulum_energy_and_expert_physics():
    assert pendulum_energy(0.0, 0.0) == pytest.approx(15.0)  # upright, still
    assert pendulum_energy(math.pi, 0.0) == pytest.approx(-15.0)  # hanging, still
    # Hanging still: the pump pushes (in the + direction) at full torque.
    assert TASKS["pendulum"].expert(np.array([-1.0, 0.0, 0.0], dtype=np.float32))[0] == pytest.approx(2.0)
    # Slightly past upright and falling further: the balance controller pushes back.
    obs = np.array([math.cos(0.1), math.sin(0.1), 0.2], dtype=np.float32)
    assert TASKS["pendulum"].expert(obs)[0] < 0


def test_mountaincar_expert_pushes_along_the_velocity():
    assert mountaincar_expert(np.array([-0.5, 0.01])) == 2
    assert mountaincar_expert(np.array([-0.5, -0.01])) == 0
    assert mountaincar_expert(np.array([-0.42, 0.0])) == 0  # at rest high on the right slope: left first
    assert mountaincar_expert(np.array([-0.58, 0.0])) == 2  # at rest low: right first


def test_dense_signals_at_known_states(envs):
    pendulum, car = envs["pendulum"], envs["mountaincar"]
    pendulum.reset(seed=0)
    pendulum.unwrapped.state = np.array([2 * math.pi, 0.0])  # upright, one turn on
    assert TASKS["pendulum"].dense(pendulum) == pytest.approx(0.0, abs=1e-12)
    pendulum.unwrapped.state = np.array([math.pi - 1e-9, 1.0])
    assert TASKS["pendulum"].dense(pendulum) == pytest.approx(-(math.pi**2) - 0.1, abs=1e-6)
    car.reset(seed=0)
    car.unwrapped.state = np.array([-math.pi / 6, 0.0])  # resting at the valley floor
    assert TASKS["mountaincar"].dense(car) == pytest.approx(0.0, abs=1e-12)
    car.unwrapped.state = np.array([0.5, 0.0])  # resting at the flag
    assert TASKS["mountaincar"].dense(car) == pytest.approx(1.0)
    for x in (-0.6, -0.5, -0.4):
        car.unwrapped.state = np.array([x, 0.0])
        assert 0.0 <= TASKS["mountaincar"].dense(car) < 0.04


def test_an_expert_that_never_succeeds_is_an_error():
    task = dataclasses.replace(TASKS["mountaincar"], expert=lambda obs: 1, max_steps=5)
    env = make_env(task)
    try:
        with pytest.raises(RuntimeError, match="did not succeed"):
            make_episode(env, task, "expert", seed=0, split="train", index=0, short_side=16)
    finally:
        env.close()


def test_episode_seeds_differ_across_tasks_splits_episodes_and_attempts():
    keys = [
        (task, split, index, attempt)
        for task in DEMO_TASKS
        for split in ("train", "test_expert", "test_fail")
        for index in range(4)
        for attempt in range(2)
    ]
    seeds = {episode_seeds(0, *key) for key in keys}
    assert len(seeds) == len(keys)
    assert episode_seeds(0, "pendulum", "train", 0, 0) == episode_seeds(0, "pendulum", "train", 0, 0)
    assert episode_seeds(0, "pendulum", "train", 0, 0) != episode_seeds(1, "pendulum", "train", 0, 0)
