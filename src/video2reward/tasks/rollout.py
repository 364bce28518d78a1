"""Episodes of a task: run a policy from a seeded start state, record the dense signal and (optionally) the
rendered frames. Every episode draws its randomness from a seed derived from (seed, task, split, index,
attempt), so the same seed gives the same episode; an expert episode that fails, or a failure episode that
succeeds, is redrawn with the next attempt number (at most `MAX_ATTEMPTS`). A failure runs exactly as many steps
as the expert needs from the same start state."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from video2reward.tasks.policies import make_policy
from video2reward.tasks.task import DemoTask, Policy
from video2reward.video.frame_fit import resize_short_side

MAX_ATTEMPTS = 20  # redraws of one episode before giving up (a redraw is rare)


@dataclass
class Episode:
    """One rollout: `steps` env steps, so `steps + 1` dense values and (when rendered) frames."""

    steps: int = 0
    success: bool = False
    dense: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    stall_step: int | None = None  # stalled and partial policies: the first step of idling (None otherwise)


def rollout(
    env: gym.Env,
    task: DemoTask,
    policy: Policy,
    start_rng: np.random.Generator,
    max_steps: int,
    short_side: int | None = None,
) -> Episode:
    """Run `policy` from the task's start state until success, termination or `max_steps` steps.

    Records the dense signal (and, when `short_side` is given, a rendered frame) for the start state and
    after every step."""
    episode = Episode()
    obs = task.start(env, start_rng)

    def record() -> None:
        episode.dense.append(float(task.dense(env)))
        if short_side is not None:
            episode.frames.append(resize_short_side(env.render(), short_side))

    record()
    steps_at_goal = 0
    while episode.steps < max_steps:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        episode.steps += 1
        record()
        steps_at_goal = steps_at_goal + 1 if task.at_goal(env, info) else 0
        if steps_at_goal >= task.hold_steps:
            episode.success = True
            break
        if terminated or truncated:
            break
    return episode


def _name_key(name: str) -> int:
    """A stable integer for a name (Python's hash() changes between runs)."""
    return zlib.crc32(name.encode("utf-8"))


def episode_seeds(seed: int, task: str, split: str, index: int, attempt: int) -> tuple[int, int]:
    """Independent (start-state, policy) seeds for one attempt at one episode."""
    sequence = np.random.SeedSequence([seed, _name_key(task), _name_key(split), index, attempt])
    start_seed, policy_seed = sequence.generate_state(2)
    return int(start_seed), int(policy_seed)


def make_episode(
    env: gym.Env, task: DemoTask, kind: str, seed: int, split: str, index: int, short_side: int
) -> Episode:
    """One rendered episode of policy `kind`: an expert episode that succeeds, or a failure (or a "partial"
    near miss) that doesn't."""
    for attempt in range(MAX_ATTEMPTS):
        start_seed, policy_seed = episode_seeds(seed, task.name, split, index, attempt)
        if kind == "expert":
            episode = rollout(env, task, task.expert, np.random.default_rng(start_seed), task.max_steps, short_side)
            if episode.success:
                return episode
            continue
        # A failure runs as long as the expert takes from the same start: find out without rendering.
        probe = rollout(env, task, task.expert, np.random.default_rng(start_seed), task.max_steps)
        if not probe.success:
            continue
        policy = make_policy(kind, task, env.action_space, np.random.default_rng(policy_seed), probe.steps)
        episode = rollout(env, task, policy, np.random.default_rng(start_seed), probe.steps, short_side)
        if not episode.success:
            episode.stall_step = getattr(policy, "stall_step", None)
            return episode
    outcome = "succeed" if kind == "expert" else "fail"
    raise RuntimeError(
        f"{task.name} {split} episode {index}: the {kind} policy did not {outcome} in {MAX_ATTEMPTS} tries"
    )
