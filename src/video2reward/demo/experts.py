"""The demo tasks: scripted expert and failure policies for gymnasium classic control, and the registry
that bundles each task's environment, policies, dense per-frame signal and success check.

A policy maps an observation to an action. The experts are stateless functions built from the tasks'
physics (energy pumping, then balancing); the failure policies are small classes holding a random
generator or a step counter, so build a fresh one for every episode.

Adding a task means adding one `DemoTask` entry to `TASKS`: the generator only talks to tasks through
that dataclass. The Meta-World tasks (reach, drawer-open, button-press-topdown, door-open) are defined in
`metaworld_tasks.py` and registered at the end of this file; `DEMO_TASKS`, the default set, stays classic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

Policy = Callable[[np.ndarray], Any]  # observation -> action

# ---------------------------------------------------------------------------------------------------
# Pendulum-v1: a uniform rod (m = 1, l = 1) on a motorised pivot, g = 10, dt = 0.05, torque |u| <= 2.
# gymnasium measures theta from upright (theta = 0 is up, pi is hanging down) and integrates
#     theta_ddot = 3g/(2l) * sin(theta) + 3/(m l^2) * u
# ---------------------------------------------------------------------------------------------------

PENDULUM_GRAVITY_TERM = 3 * 10.0 / (2 * 1.0)  # 3g/(2l) = 15: gravity's angular acceleration at horizontal
PENDULUM_MAX_TORQUE = 2.0
PENDULUM_UPRIGHT_ENERGY = PENDULUM_GRAVITY_TERM  # energy of the rod standing still upright (see below)
PENDULUM_BALANCE_ANGLE = 0.5  # rad: inside this the balance controller takes over from the pump
PENDULUM_PUMP_GAIN = 0.5  # torque per unit of missing energy (saturates until the last ~4 units)
PENDULUM_KP, PENDULUM_KD = 10.0, 2.0  # balance gains (see pendulum_expert)
PENDULUM_START_NOISE = 0.2  # start: hanging down, angle and angular velocity within +-0.2 of still
PENDULUM_GOAL_ANGLE, PENDULUM_GOAL_SPEED = 0.15, 0.5  # "balanced": |angle| < 0.15 rad, |omega| < 0.5 rad/s


def angle_normalize(theta: float) -> float:
    """The angle wrapped into [-pi, pi); 0 is upright (same formula as gymnasium's)."""
    return ((theta + math.pi) % (2 * math.pi)) - math.pi


def pendulum_energy(theta: float, omega: float) -> float:
    """Mechanical energy divided by the rod's moment of inertia, in (rad/s)^2.

    Kinetic 1/2 omega^2 plus potential 3g/(2l) cos(theta): +15 standing still upright, -15 hanging still.
    Its rate of change is dE/dt = omega * theta_ddot - 15 sin(theta) omega = 3 u omega: only the motor
    changes the energy, and a torque in the direction of motion adds to it."""
    return 0.5 * omega**2 + PENDULUM_GRAVITY_TERM * math.cos(theta)


def pendulum_expert(obs: np.ndarray) -> np.ndarray:
    """Swing up by pumping energy, then balance with a PD controller. `obs` = (cos theta, sin theta, omega).

    Swing-up: the motor is too weak to lift the rod directly (max 3*2 = 6 rad/s^2 against gravity's 15),
    so push in the direction of motion while the energy is below the upright energy (and against it
    while above): u = k (E_up - E) sign(omega). The pendulum swings higher each pass until it arrives
    at the top nearly at rest.

    Balance: near upright sin(theta) ~ theta, so theta_ddot ~ 15 theta + 3u. With u = -(10 theta +
    2 omega) this becomes theta_ddot = -15 theta - 6 omega: a damped oscillator (natural frequency
    3.9 rad/s, damping ratio 0.77) that settles at upright."""
    theta = math.atan2(float(obs[1]), float(obs[0]))
    omega = float(obs[2])
    if abs(theta) < PENDULUM_BALANCE_ANGLE:
        torque = -(PENDULUM_KP * theta + PENDULUM_KD * omega)
    else:
        missing_energy = PENDULUM_UPRIGHT_ENERGY - pendulum_energy(theta, omega)
        direction = 1.0 if omega >= 0 else -1.0  # at rest either way adds energy; pick +
        torque = PENDULUM_PUMP_GAIN * missing_energy * direction
    torque = min(max(torque, -PENDULUM_MAX_TORQUE), PENDULUM_MAX_TORQUE)
    return np.array([torque], dtype=np.float32)


def pendulum_start(env: gym.Env, rng: np.random.Generator) -> np.ndarray:
    """Reset, then place the rod hanging down with a little random angle and angular velocity."""
    env.reset(seed=int(rng.integers(2**31)))
    theta = math.pi + rng.uniform(-PENDULUM_START_NOISE, PENDULUM_START_NOISE)
    omega = rng.uniform(-PENDULUM_START_NOISE, PENDULUM_START_NOISE)
    env.unwrapped.state = np.array([theta, omega])
    return np.array([math.cos(theta), math.sin(theta), omega], dtype=np.float32)  # the env's observation


def pendulum_dense(env: gym.Env) -> float:
    """The env's own reward without its action term: -(angle^2 + 0.1 omega^2); 0 upright and still."""
    theta, omega = env.unwrapped.state
    return -(angle_normalize(float(theta)) ** 2 + 0.1 * float(omega) ** 2)


def pendulum_at_goal(env: gym.Env, info: dict) -> bool:
    """Balanced upright right now (success needs this for `hold_steps` consecutive steps)."""
    theta, omega = env.unwrapped.state
    return abs(angle_normalize(float(theta))) < PENDULUM_GOAL_ANGLE and abs(float(omega)) < PENDULUM_GOAL_SPEED


# ---------------------------------------------------------------------------------------------------
# MountainCar-v0: a car in a valley with height ~ sin(3x); its engine (force 0.001 per step) is weaker
# than gravity on the slopes (0.0025 cos(3x)), so it must rock back and forth to reach the flag at
# x = 0.5. Each step: v += (action - 1) * 0.001 - 0.0025 cos(3x); x += v. Actions: 0 left, 1 none, 2 right.
# ---------------------------------------------------------------------------------------------------

CAR_FORCE, CAR_GRAVITY = 0.001, 0.0025
CAR_GOAL_POSITION = 0.5
CAR_FIRST_PUSH_LEFT_ABOVE = -0.485  # start right of this -> first push left, else right (see expert)


def car_energy(position: float, velocity: float) -> float:
    """Mechanical energy per unit mass in the env's units: 1/2 v^2 + 0.0025/3 sin(3x).

    The potential is the integral of the gravity term 0.0025 cos(3x), so the engine's push times the
    velocity is (approximately, the env integrates in discrete steps) the only change in energy."""
    return 0.5 * velocity**2 + CAR_GRAVITY / 3 * math.sin(3 * position)


CAR_FLOOR_ENERGY = car_energy(-math.pi / 6, 0.0)  # at rest at the valley floor, x = -pi/6
CAR_GOAL_ENERGY = car_energy(CAR_GOAL_POSITION, 0.0)  # at rest at the flag


def mountaincar_expert(obs: np.ndarray) -> int:
    """Pump energy: push in the direction of motion, so the engine always adds to the car's energy and
    every swing climbs higher until one reaches the flag.

    At rest (the start, or stopped against the left wall) there is no direction of motion. Starting on
    the right-hand slope above x = -0.485, gravity already pulls left: pushing left with it sends the
    car high up the left hill and it reaches the flag on its first swing to the right. From further
    down, pushing right first is quicker. (Threshold found by simulating both first pushes across the
    env's start range [-0.6, -0.4]: 86-125 steps to the flag, against 113-125 always pushing right
    first and 86-204 always pushing left first.)"""
    position, velocity = float(obs[0]), float(obs[1])
    if velocity > 0:
        return 2
    if velocity < 0:
        return 0
    return 0 if position > CAR_FIRST_PUSH_LEFT_ABOVE else 2


def mountaincar_start(env: gym.Env, rng: np.random.Generator) -> np.ndarray:
    """The env's own start: at rest, x uniform in [-0.6, -0.4]."""
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    return obs


def mountaincar_dense(env: gym.Env) -> float:
    """Mechanical energy normalised so resting at the valley floor is 0 and resting at the flag is 1."""
    position, velocity = env.unwrapped.state
    energy = car_energy(float(position), float(velocity))
    return (energy - CAR_FLOOR_ENERGY) / (CAR_GOAL_ENERGY - CAR_FLOOR_ENERGY)


def mountaincar_at_goal(env: gym.Env, info: dict) -> bool:
    """At the flag moving right: exactly when the env terminates."""
    position, velocity = env.unwrapped.state
    return float(position) >= CAR_GOAL_POSITION and float(velocity) >= 0


# ---------------------------------------------------------------------------------------------------
# Failure policies, shared by every task.
# ---------------------------------------------------------------------------------------------------

STALL_FRACTION = (0.2, 0.75)  # "stalled" runs the expert for this fraction of its episode, then idles
FAILURE_POLICIES = ("random", "stalled")
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


# ---------------------------------------------------------------------------------------------------
# The registry.
# ---------------------------------------------------------------------------------------------------


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


PENDULUM = DemoTask(
    name="pendulum",
    env_id="Pendulum-v1",
    expert=pendulum_expert,
    idle_action=np.array([0.0], dtype=np.float32),
    start=pendulum_start,
    at_goal=pendulum_at_goal,
    hold_steps=10,
    dense=pendulum_dense,
    dense_signal=(
        "Pendulum-v1's own reward without its action term, -(angle_normalize(theta)^2 + 0.1*theta_dot^2), "
        "for the state shown in the frame: about -9.9 hanging still at the bottom, 0 balanced upright."
    ),
    max_steps=300,
)

MOUNTAIN_CAR = DemoTask(
    name="mountaincar",
    env_id="MountainCar-v0",
    expert=mountaincar_expert,
    idle_action=1,
    start=mountaincar_start,
    at_goal=mountaincar_at_goal,
    hold_steps=1,
    dense=mountaincar_dense,
    dense_signal=(
        "The car's mechanical energy 0.5*v^2 + 0.0025/3*sin(3x) for the state shown in the frame (the env's "
        "own reward is a constant -1), normalised so resting at the valley floor is 0 (the start region is "
        "0 to 0.03) and resting at the goal flag is 1; the expert's fast car exceeds 1 (up to about 1.8)."
    ),
    max_steps=300,
)

# Meta-World reach, drawer-open, button-press-topdown, door-open (imported here, after DemoTask, which they use).
from video2reward.demo.metaworld_tasks import METAWORLD_TASKS  # noqa: E402

TASKS: dict[str, DemoTask] = {task.name: task for task in (PENDULUM, MOUNTAIN_CAR, *METAWORLD_TASKS)}
DEMO_TASKS: tuple[str, ...] = (PENDULUM.name, MOUNTAIN_CAR.name)  # the default set: seconds to generate


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
