"""Environments by the names users type: a demo task (`mountaincar`, `pendulum`, and the Meta-World demo
tasks), `metaworld:<env>-v3`, or any gymnasium id (`Acrobot-v1`).

Each name resolves to an `EnvSpec`: how to make the env (rendering to rgb arrays, because the learned reward
reads pixels) and how to tell true task success, so that RL is always judged on the task, never on the
learned reward alone. Success (`v2r rl --success`) is one of

    task          the demo task's own test (its goal held for its hold steps)
    info          the env says so: info["success"] or info["is_success"] (Meta-World, robotics envs)
    terminated    the episode ended by termination, not by the time limit (Acrobot, MountainCar: the env
                  terminates exactly when the goal is reached)
    return>=X     the episode's env return reached X (CartPole: balancing to the end is return 500)

and `auto` picks it: the task's test for demo tasks, info for Meta-World, the built-in choice for the
gymnasium ids in KNOWN_SUCCESS, the id's registered reward threshold (return>=threshold) for others that have
one, else info. When the env never says (info mode, no key seen), the rate is logged as unknown, never as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from video2reward.errors import ConfigError
from video2reward.rl.render import RenderAs, RenderOptions, check_camera, with_options
from video2reward.tasks import TASKS
from video2reward.tasks.metaworld import make_metaworld_env
from video2reward.tasks.task import headless

SuccessFn = Callable[[gym.Env, dict], bool]
SUCCESS_MODES = ("auto", "task", "info", "terminated", "return>=X")
# gymnasium ids whose success v2r knows: termination means the goal for these, a full-length balance for CartPole
KNOWN_SUCCESS = {"Acrobot-v1": "terminated", "MountainCar-v0": "terminated",
                 "MountainCarContinuous-v0": "terminated", "CartPole-v1": "return>=475", "CartPole-v0": "return>=195"}


@dataclass
class EnvSpec:
    name: str  # what the user typed
    make: Callable[[str | None], gym.Env]  # render_mode -> a fresh env
    success: SuccessFn  # per step: is the task achieved in the state the env shows now? ("task" / "info")
    hold_steps: int = 1  # an episode succeeds once `success` held this many steps in a row
    max_episode_steps: int | None = None
    success_mode: str = "task"  # task | info | terminated | return>=X (module docstring)
    success_why: str = "the demo task's own test"  # how the mode was chosen, for the run's config and log
    # a MuJoCo scene with cameras (Meta-World): (render_mode, **make_metaworld_env options) -> env
    make_scene: Callable[..., gym.Env] | None = None

    def discrete(self) -> bool:
        env = self.make(None)
        try:
            return isinstance(env.action_space, gym.spaces.Discrete)
        finally:
            env.close()


def _info_success(env: gym.Env, info: dict) -> bool | None:
    """Meta-World and many robotics envs report success in info; None when this info has no such key."""
    value = info.get("success", info.get("is_success"))
    return None if value is None else bool(value)


def parse_success(mode: str) -> tuple[str, float | None]:
    """'return>=475' -> ('return', 475.0); the other modes -> (mode, None). ConfigError on anything else."""
    if mode.startswith("return>="):
        try:
            return "return", float(mode.split(">=", 1)[1])
        except ValueError:
            pass
    elif mode in SUCCESS_MODES and mode != "return>=X":
        return mode, None
    raise ConfigError(f"--success {mode!r}: use auto, task, info, terminated or return>=NUMBER (e.g. return>=475)")


def with_success(spec: EnvSpec, mode: str) -> EnvSpec:
    """`spec` with the success test `mode` (auto: as resolved by env_spec)."""
    kind, _ = parse_success(mode)
    if kind == "auto":
        return spec
    if kind == "task" and spec.success_mode != "task":
        raise ConfigError(f"--success task: {spec.name} is not a demo task; use info, terminated or return>=X")
    success = _info_success if kind == "info" else spec.success
    return EnvSpec(spec.name, spec.make, success, spec.hold_steps if kind == "task" else 1, spec.max_episode_steps,
                   mode, "given with --success", spec.make_scene)


def with_render(spec: EnvSpec, options: RenderOptions) -> EnvSpec:
    """`spec` whose envs render as `options` say (rl/render.py): the camera and square size of a MuJoCo scene
    when it is made, then any flip and other size on every frame."""
    check_camera(options, spec.make_scene is not None, spec.name)
    if options == RenderOptions():
        return spec
    scene = spec.make_scene

    def make(mode: str | None) -> gym.Env:
        env = scene(mode, **with_options(options)) if scene is not None else spec.make(mode)
        return RenderAs(env, options)

    return EnvSpec(spec.name, make, spec.success, spec.hold_steps, spec.max_episode_steps, spec.success_mode,
                   spec.success_why, spec.make_scene)


def _demo_spec(name: str) -> EnvSpec | None:
    task = TASKS.get(name)
    if task is None:
        return None
    maker = getattr(task, "make_env", None)  # Meta-World demo tasks bring their own maker
    if maker is not None:
        return EnvSpec(name, lambda mode: maker(render_mode=mode), _info_success, 1, None, "info",
                       "Meta-World reports success in info", lambda mode, **kw: maker(render_mode=mode, **kw))

    def make(mode: str | None) -> gym.Env:
        headless()
        return gym.make(task.env_id, render_mode=mode, **task.make_kwargs)

    return EnvSpec(name, make, task.at_goal, task.hold_steps)


def _metaworld_spec(name: str) -> EnvSpec:
    env_name = name.split(":", 1)[1]
    return EnvSpec(name, lambda mode: make_metaworld_env(env_name, render_mode=mode), _info_success, 1, None, "info",
                   "Meta-World reports success in info",
                   lambda mode, **kw: make_metaworld_env(env_name, render_mode=mode, **kw))


def _gym_spec(name: str) -> EnvSpec:
    if name not in gym.registry:
        raise ConfigError(
            f"unknown environment {name!r}: use a demo task name (see `v2r demo-data --help`), "
            f"metaworld:<env>-v3, or a registered gymnasium id such as CartPole-v1 or Acrobot-v1"
        )

    def make(mode: str | None) -> gym.Env:
        headless()
        return gym.make(name, render_mode=mode)

    if name in KNOWN_SUCCESS:
        mode, why = KNOWN_SUCCESS[name], f"built in for {name}"
    elif gym.spec(name).reward_threshold is not None:
        mode = f"return>={gym.spec(name).reward_threshold:g}"
        why = f"{name}'s registered reward threshold"
    else:
        mode, why = "info", f"{name} has no known success test: read from info, unknown if the env never sets it"
    return EnvSpec(name, make, _info_success, 1, None, mode, why)


def env_spec(name: str, success: str = "auto") -> EnvSpec:
    """Resolve a task name and its success test (see the module docstring)."""
    spec = _metaworld_spec(name) if name.startswith("metaworld:") else _demo_spec(name) or _gym_spec(name)
    return with_success(spec, success)


def env_reward_success(spec: EnvSpec, info: dict[str, Any], env: gym.Env, run: int) -> tuple[bool | None, int]:
    """Update the run of consecutive successful steps; returns (episode succeeded, new run length), None when
    the env says nothing of success in this step (info mode)."""
    said = spec.success(env, info)
    if said is None:
        return None, 0
    run = run + 1 if said else 0
    return run >= spec.hold_steps, run


class TaskInfo(gym.Wrapper):
    """Adds the env's own reward and true task success to `info` of every step: `env_reward`, and `is_success`
    (by the spec's success mode: the test held for its hold steps, termination, or the return so far at the
    episode's end; None in info mode when the env says nothing)."""

    def __init__(self, env: gym.Env, spec: EnvSpec):
        super().__init__(env)
        self.task_spec = spec
        self.kind, self.threshold = parse_success(spec.success_mode)
        self._run = 0
        self._return = 0.0

    def reset(self, **kwargs):
        self._run, self._return = 0, 0.0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        if self.kind == "terminated":
            succeeded: bool | None = bool(terminated)
        elif self.kind == "return":
            succeeded = bool((terminated or truncated) and self._return >= self.threshold)
        else:
            succeeded, self._run = env_reward_success(self.task_spec, info, self.env, self._run)
        info = {**info, "env_reward": float(reward), "is_success": succeeded}
        return obs, reward, terminated, truncated, info


class SuccessReward(gym.Wrapper):
    """The sparse success-only reward (`v2r rl --reward sparse`): 1 on every step where the task is achieved
    (info["is_success"] from TaskInfo, inside this wrapper), else 0; the env's own reward stays in info."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, float(bool(info.get("is_success"))), terminated, truncated, info
