"""Failure policies, shared by every task, and `make_policy`, which builds an episode's policy by kind."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from video2reward.tasks.task import DemoTask, Policy

STALL_FRACTION = (0.2, 0.75)  # "stalled" runs the expert for this fraction of its episode, then idles
# "partial" (the near-miss split test_partial) is the same stalled expert, stalling late: most of the way
# there. Simulated over 20 starts per task, no classic or Meta-World task succeeded after stalling at 0.8 of
# the expert's length; first successes at 0.9 (pendulum, drawer-open, reach, button-press-topdown), which
# generate.py redraws. An earlier range (0.3-0.7) was separated perfectly even by the pixel floor.
PARTIAL_FRACTION = (0.6, 0.85)


class RandomPolicy:
    """Uniformly random actions from a Box or Discrete action space."""

    def __init__(self, action_space: gym.Space, rng: np.random.Generator):
        if not isinstance(action_space, (gym.spaces.Box, gym.spaces.Discrete)):
            raise TypeError(f"RandomPolicy supports Box and Discrete action spaces, not {action_space}")
        self.action_space = action_space
        self.rng = rng

    def __call__(self, obs: np.ndarray) -> Any:
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return int(space.start + self.rng.integers(space.n))
        return self.rng.uniform(space.low, space.high).astype(space.dtype)


class StalledPolicy:
    """The expert for the first `stall_step` steps, then the idle action (zero torque, no push) for
    good: the task stalls partway, keeping whatever energy it had, and never reaches the goal."""

    def __init__(self, expert: Policy, idle_action: Any, stall_step: int):
        self.expert = expert
        self.idle_action = idle_action
        self.stall_step = stall_step
        self.steps_taken = 0

    def __call__(self, obs: np.ndarray) -> Any:
        self.steps_taken += 1
        return self.expert(obs) if self.steps_taken <= self.stall_step else self.idle_action


def make_policy(
    kind: str, task: DemoTask, action_space: gym.Space, rng: np.random.Generator, expert_steps: int
) -> Policy:
    """A fresh policy of `kind` ("expert", "partial" or one of `task.failure_policies`) for one episode.
    `expert_steps` is how long the expert takes from this episode's start; "stalled" idles after a
    random fraction of it in `STALL_FRACTION`, "partial" (the near miss) after one in `PARTIAL_FRACTION`.
    Both are a `StalledPolicy`, whose `stall_step` says when the idling starts."""
    if kind == "expert":
        return task.expert
    if kind == "random":
        return RandomPolicy(action_space, rng)
    if kind in ("stalled", "partial"):
        fraction = STALL_FRACTION if kind == "stalled" else PARTIAL_FRACTION
        stall_step = round(rng.uniform(*fraction) * expert_steps)
        return StalledPolicy(task.expert, task.idle_action, stall_step)
    raise ValueError(f"unknown policy kind {kind!r} (known: expert, partial, {', '.join(task.failure_policies)})")
