"""The classic-control demo tasks: Pendulum-v1 (swing up and balance) and MountainCar-v0 (rock up to the
flag), with scripted experts built from the tasks' physics (energy pumping, then balancing). A policy maps an
observation to an action; the experts are stateless functions.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from video2reward.tasks.task import DemoTask, env_start

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


def mountaincar_dense(env: gym.Env) -> float:
    """Mechanical energy normalised so resting at the valley floor is 0 and resting at the flag is 1."""
    position, velocity = env.unwrapped.state
    energy = car_energy(float(position), float(velocity))
    return (energy - CAR_FLOOR_ENERGY) / (CAR_GOAL_ENERGY - CAR_FLOOR_ENERGY)


def mountaincar_at_goal(env: gym.Env, info: dict) -> bool:
    """At the flag moving right: exactly when the env terminates."""
    position, velocity = env.unwrapped.state
    return float(position) >= CAR_GOAL_POSITION and float(velocity) >= 0


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
    start=env_start,  # the env's own start: at rest, x uniform in [-0.6, -0.4]
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
