"""Environments by the names users type: a demo task (`mountaincar`, `pendulum`, and the Meta-World demo
tasks), `metaworld:<env>-v3`, or any gymnasium id (`Acrobot-v1`).

Each name resolves to an `EnvSpec`: how to make the env (rendering to rgb arrays, because the learned reward
reads pixels) and how to tell true task success, so that RL is always judged on the task, never on the
learned reward alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from video2reward.errors import ConfigError
from video2reward.tasks import TASKS
from video2reward.tasks.metaworld import make_metaworld_env
from video2reward.tasks.task import headless

SuccessFn = Callable[[gym.Env, dict], bool]


@dataclass
class EnvSpec:
    name: str  # what the user typed
    make: Callable[[str | None], gym.Env]  # render_mode -> a fresh env
    success: SuccessFn  # per step: is the task achieved in the state the env shows now?
    hold_steps: int = 1  # an episode succeeds once `success` held this many steps in a row
    max_episode_steps: int | None = None

    def discrete(self) -> bool:
        env = self.make(None)
        try:
            return isinstance(env.action_space, gym.spaces.Discrete)
        finally:
            env.close()


def _info_success(env: gym.Env, info: dict) -> bool:
    """Meta-World and many robotics envs report success in info."""
    return bool(info.get("success", info.get("is_success", False)))


def _demo_spec(name: str) -> EnvSpec | None:
    task = TASKS.get(name)
    if task is None:
        return None
    maker = getattr(task, "make_env", None)  # Meta-World demo tasks bring their own maker
    if maker is not None:
        return EnvSpec(name, lambda mode: maker(render_mode=mode), _info_success, 1)

    def make(mode: str | None) -> gym.Env:
        headless()
        return gym.make(task.env_id, render_mode=mode, **task.make_kwargs)

    return EnvSpec(name, make, task.at_goal, task.hold_steps)


def _metaworld_spec(name: str) -> EnvSpec:
    env_name = name.split(":", 1)[1]
    return EnvSpec(name, lambda mode: make_metaworld_env(env_name, render_mode=mode), _info_success, 1)


def _gym_spec(name: str) -> EnvSpec:
    if name not in gym.registry:
        raise ConfigError(
            f"unknown environment {name!r}: use a demo task name (see `v2r demo-data --help`), "
            f"metaworld:<env>-v3, or a registered gymnasium id such as CartPole-v1 or Acrobot-v1"
        )

    def make(mode: str | None) -> gym.Env:
        headless()
        return gym.make(name, render_mode=mode)

    return EnvSpec(name, make, _info_success, 1)


def env_spec(name: str) -> EnvSpec:
    """Resolve a task name (see the module docstring)."""
    if name.startswith("metaworld:"):
        return _metaworld_spec(name)
    return _demo_spec(name) or _gym_spec(name)


def env_reward_success(spec: EnvSpec, info: dict[str, Any], env: gym.Env, run: int) -> tuple[bool, int]:
    """Update the run of consecutive successful steps; returns (episode succeeded, new run length)."""
    run = run + 1 if spec.success(env, info) else 0
    return run >= spec.hold_steps, run


class TaskInfo(gym.Wrapper):
    """Adds the env's own reward and true task success to `info` of every step (`env_reward`,
    `is_success`: success has held for the task's `hold_steps` steps in a row)."""

    def __init__(self, env: gym.Env, spec: EnvSpec):
        super().__init__(env)
        self.task_spec = spec
        self._run = 0

    def reset(self, **kwargs):
        self._run = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        succeeded, self._run = env_reward_success(self.task_spec, info, self.env, self._run)
        info = {**info, "env_reward": float(reward), "is_success": succeeded}
        return obs, reward, terminated, truncated, info
