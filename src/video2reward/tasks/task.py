"""A demo task: everything the demo-data generator and `v2r rl` need to know about one environment
(its env, scripted expert, idle action, start states, success test and dense signal), and the env it makes."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

Policy = Callable[[np.ndarray], Any]  # observation -> action
FAILURE_POLICIES = ("random", "stalled")  # the failure policies every task has (tasks/policies.py)


@dataclass(frozen=True)
class DemoTask:
    """Everything the generator needs to know about one task.

    The callables receive the wrapped env; state lives on `env.unwrapped`. An episode succeeds once
    `at_goal` has held for `hold_steps` consecutive steps; expert episodes stop there, or fail at
    `max_steps`."""

    name: str
    env_id: str
    expert: Policy
    idle_action: Any  # the "do nothing" action that the stalled policy switches to
    start: Callable[[gym.Env, np.random.Generator], np.ndarray]  # reset to a start state, return obs
    at_goal: Callable[[gym.Env, dict], bool]
    hold_steps: int
    dense: Callable[[gym.Env], float]  # the per-frame dense signal for the state the env shows now
    dense_signal: str  # one sentence for labels.json saying what `dense` is
    max_steps: int
    failure_policies: tuple[str, ...] = FAILURE_POLICIES
    make_kwargs: dict[str, Any] = field(default_factory=dict)  # extra gym.make arguments
    # Tasks whose env gym.make alone cannot build (Meta-World): make_env(render_mode=..., max_episode_steps=...)
    # builds it instead, and env_id only names it.
    make_env: Callable[..., gym.Env] | None = None



def env_start(env: gym.Env, rng: np.random.Generator) -> np.ndarray:
    """The env's own start state, seeded by `rng` (a DemoTask's `start` for tasks whose reset draws it)."""
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    return obs


def headless() -> None:
    """Classic-control rendering goes through pygame; keep SDL off any display and sound card."""
    os.environ["SDL_VIDEODRIVER"] = "dummy"  # rgb_array never needs a window, even where there is a display
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def make_env(task: DemoTask, render: bool = True) -> gym.Env:
    """The task's gymnasium env; its time limit is the task's `max_steps`, so only we end episodes."""
    render_mode = "rgb_array" if render else None
    if task.make_env is not None:
        return task.make_env(render_mode=render_mode, max_episode_steps=task.max_steps)
    headless()
    return gym.make(task.env_id, render_mode=render_mode, max_episode_steps=task.max_steps, **task.make_kwargs)
