"""Meta-World v3 demo tasks: reach, drawer-open, button-press-topdown, door-open, window-open and plate-slide,
with the scripted expert policies Meta-World ships (`metaworld.policies`).

Every env comes from gymnasium's registered `Meta-World/MT1` id, set up and wrapped (`MetaWorldEnv`) so that it

* redraws the task's object and goal positions on every reset from Meta-World's own task-specific ranges
  (`_random_reset_space`), seeded: `reset(seed=s)` reseeds the env's generator, so the same seed gives the
  same start (Meta-World's own reset ignores its seed argument, and MT1 otherwise cycles through 50 fixed
  goals drawn once);
* keeps the env's own reward for the state shown now (`state_reward`: the last step's reward, and for the
  reset state the env's reward function with a zero action) and whether `info["success"]` has been 1 at
  any step since the reset (`succeeded`, Meta-World's own notion of an episode's success);
* renders from the fixed "corner" camera, flipped upright (Meta-World's corner cameras are mounted upside
  down), without shadows, reflections or multisampling (each of the three slows CPU rendering with EGL on
  Mesa's software renderer several times).

`make_metaworld_env` is that env for any Meta-World v3 name; `METAWORLD_TASKS` are the demo tasks. Neither
imports Meta-World (and so MuJoCo) until an env is made.
"""

from __future__ import annotations

import os
import warnings
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np

from video2reward.tasks.task import DemoTask, env_start

RENDER_SIZE = 128  # px, square: the native render (the generator resizes it to its short_side, as for classic tasks)
CAMERA = "corner"  # fixed camera of the Sawyer scene: the arm, the table top and the task's object from the front left
MAX_STEPS = 200  # episode cap of the demo tasks (the experts take 40 to 100 steps)
SUCCESS_HOLD = 5  # expert episodes end 4 steps after info["success"] first becomes 1
METAWORLD_MAX_PATH_LENGTH = 500  # Meta-World's own episode length, the default time limit of make_metaworld_env

# demo task name -> (Meta-World env name, expert policy class in metaworld.policies, what the reward measures)
_TASKS: dict[str, tuple[str, str, str]] = {
    "reach": ("reach-v3", "SawyerReachV3Policy", "how close the gripper is to the goal point"),
    "drawer-open": ("drawer-open-v3", "SawyerDrawerOpenV3Policy",
                    "gripper near the drawer handle, then how far the drawer is pulled open"),
    "button-press-topdown": ("button-press-topdown-v3", "SawyerButtonPressTopdownV3Policy",
                             "gripper closed above the button, then how far the button is pressed down"),
    "door-open": ("door-open-v3", "SawyerDoorOpenV3Policy",
                  "gripper at the door handle, then how far the door is swung open"),
    "window-open": ("window-open-v3", "SawyerWindowOpenV3Policy",
                    "gripper at the window handle, then how far the window is slid open"),
    "plate-slide": ("plate-slide-v3", "SawyerPlateSlideV3Policy",
                    "gripper at the plate, then how close the plate is to the goal in the net"),
}


def metaworld_env_name(name: str) -> str:
    """The Meta-World env name for a demo task or env name: "drawer-open" and "drawer-open-v3" -> "drawer-open-v3"."""
    if name in _TASKS:
        return _TASKS[name][0]
    return name if name.endswith("-v3") else f"{name}-v3"


def _fast_rendering(model: Any) -> None:
    """Turn off what costs most on a software renderer: multisampling (read when the render context is
    made, so call this before the first render), shadows and reflections (read at every scene update)."""
    model.vis.quality.offsamples = 0
    model.light_castshadow[:] = 0
    model.mat_reflectance[:] = 0


class MetaWorldEnv(gym.Wrapper):
    """Seeded per-reset randomisation, the reward of the state shown now, sticky success and upright renders
    (see the module docstring)."""

    def __init__(self, env: gym.Env, flip: bool = True):
        super().__init__(env)
        self.flip = flip
        self.state_reward = 0.0
        self.succeeded = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.env.unwrapped.seed(seed)  # Meta-World's reset ignores `seed`
        obs, info = self.env.reset(seed=seed, options=options)
        idle = np.zeros(self.env.action_space.shape, dtype=np.float32)
        reward, state_info = self.env.unwrapped.evaluate_state(obs, idle)  # v2 rewards keep no state
        self.state_reward = float(reward)
        self.succeeded = bool(state_info["success"])
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.state_reward = float(reward)
        self.succeeded = self.succeeded or bool(info.get("success", False))
        return obs, reward, terminated, truncated, info

    def render(self):
        frame = self.env.render()
        if self.flip and isinstance(frame, np.ndarray):
            frame = np.ascontiguousarray(frame[::-1])
        return frame


def make_metaworld_env(
    name: str,
    render_mode: str | None = "rgb_array",
    seed: int | None = None,
    max_episode_steps: int | None = None,
    camera_name: str = CAMERA,
    size: int = RENDER_SIZE,
) -> MetaWorldEnv:
    """A Meta-World v3 env ("reach", "reach-v3", ...) rendering `size` x `size` upright frames from a fixed
    camera, with goals observable (as MT1 has them) and redrawn on every reset, seeded by `reset(seed=...)`
    or, failing that, by `seed`. Time limit: `max_episode_steps`, default Meta-World's 500 steps."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering, unless the user chose a backend
    import metaworld  # noqa: F401  (registers the Meta-World/* ids; imports mujoco after MUJOCO_GL is set)

    env_name = metaworld_env_name(name)
    if env_name not in metaworld.ALL_V3_ENVIRONMENTS:
        raise ValueError(f"unknown Meta-World v3 env {env_name!r}")
    steps = max_episode_steps or METAWORLD_MAX_PATH_LENGTH
    env = gym.make("Meta-World/MT1", env_name=env_name, seed=seed, max_episode_steps=steps,
                   render_mode=render_mode, camera_name=camera_name, width=size, height=size,
                   disable_env_checker=True)  # the checker warns about Meta-World's observation bounds
    sawyer = env.unwrapped
    sawyer.max_path_length = max(sawyer.max_path_length, steps)  # Meta-World raises past max_path_length
    sawyer.set_task(env.get_wrapper_attr("tasks")[0])  # MT1's settings (goal observable); positions below
    env.get_wrapper_attr("toggle_sample_tasks_on_reset")(False)  # no cycling through MT1's 50 fixed goals:
    sawyer._freeze_rand_vec = False  # draw fresh positions on every reset,
    sawyer.seeded_rand_vec = True  # from the env's seeded generator
    _fast_rendering(sawyer.model)
    return MetaWorldEnv(env)


class MetaWorldExpert:
    """Meta-World's scripted policy for one env, as an obs -> action function (stateless)."""

    def __init__(self, policy_class: str):
        self.policy_class = policy_class
        self._policy = None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self._policy is None:
            import metaworld.policies  # here: Meta-World (and MuJoCo) load only when a Meta-World task runs

            self._policy = getattr(metaworld.policies, self.policy_class)()
        with warnings.catch_warnings():  # their gains warn whenever an action saturates
            warnings.simplefilter("ignore")
            action = self._policy.get_action(np.asarray(obs, dtype=np.float64))
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def metaworld_dense(env: gym.Env) -> float:
    """The env's own reward for the state the env shows now."""
    return float(env.get_wrapper_attr("state_reward"))


def metaworld_at_goal(env: gym.Env, info: dict) -> bool:
    """info["success"] has been 1 at some step of this episode (Meta-World's episode success)."""
    return bool(env.get_wrapper_attr("succeeded"))


def _demo_task(name: str) -> DemoTask:
    env_name, policy_class, measures = _TASKS[name]
    return DemoTask(
        name=name,
        env_id=f"metaworld:{env_name}",
        expert=MetaWorldExpert(policy_class),
        idle_action=np.zeros(4, dtype=np.float32),
        start=env_start,  # fresh object and goal positions from Meta-World's ranges (MetaWorldEnv.reset)
        at_goal=metaworld_at_goal,
        hold_steps=SUCCESS_HOLD,
        dense=metaworld_dense,
        dense_signal=(
            f"Meta-World {env_name}'s own per-step reward (reward function v2, 0 to 10: {measures}) for the "
            "state shown in the frame; the start frame gets the same reward function with a zero action."
        ),
        max_steps=MAX_STEPS,
        make_env=partial(make_metaworld_env, env_name),
    )


METAWORLD_TASKS: tuple[DemoTask, ...] = tuple(_demo_task(name) for name in _TASKS)
