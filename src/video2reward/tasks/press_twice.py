"""press-twice: a task that only a reward with memory can follow. A blue puck starts on its home pad, goes to a
red button and holds it down, comes back home, and presses the button a second time. The button springs back up
when the puck leaves, and nothing in the scene counts the presses, so the way out the second time is, frame by
frame, the way out the first time (the same start, the same straight path, the same speed): progress 0 to 1/3 and
2/3 to 1 look identical, and the second press looks like the first. A reward that reads the last K frames sees
the difference only when K spans the trip home (about 40 frames, five times the temporal head's default K = 8).

    phase 0: home -> button, hold it PRESS_HOLD steps      phase 1: button -> home
    phase 2: home -> button, hold it (success: held `hold_steps` steps)

The env is a small gymnasium env drawn with numpy (no physics engine): the observation is the full state,
(puck x, y, button x, y, home x, y, phase / 3), so a state-based agent can learn it; the video shows everything
but the phase. Registered as `v2r/PressTwice-v0`; `v2r rl press-twice` and `v2r demo-data --tasks press-twice`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from video2reward.tasks.task import DemoTask, env_start

SPEED = 0.025  # arena widths per step at full action (|action| <= 1)
PRESS_RADIUS = 0.02  # the puck presses the button when its centre is this close to the button's
HOME_RADIUS = 0.02  # ... and is home when this close to the home pad's centre
PRESS_HOLD = 3  # steps the first press is held before the puck turns home
LEG = (0.45, 0.7)  # home-to-button distance, drawn per episode: 18-28 steps per leg at full speed
MARGIN = 0.12  # home and button stay this far from the arena's edge
RENDER_SIZE = 128  # px, square

WHITE = np.array([250, 250, 250], dtype=np.uint8)
PAD = np.array([200, 200, 200], dtype=np.uint8)
BUTTON_UP, BUTTON_DOWN = np.array([220, 40, 40], dtype=np.uint8), np.array([120, 20, 20], dtype=np.uint8)
PUCK = np.array([40, 80, 220], dtype=np.uint8)


class PressTwiceEnv(gym.Env):
    """Press the button, go home, press it again (module docstring). Reward: `dense`, the fraction of the way
    done (three legs, each scored by the distance still to go); never terminates (the time limit ends it)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode: str | None = None, size: int = RENDER_SIZE):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"PressTwiceEnv renders only 'rgb_array', not {render_mode!r}")
        self.render_mode = render_mode
        self.size = size
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(7,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.puck = self.home = self.button = np.zeros(2)
        self.phase = 0
        self.held = 0  # consecutive steps on the button in this phase

    def _obs(self) -> np.ndarray:
        return np.array([*self.puck, *self.button, *self.home, self.phase / 3], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        while True:  # a home and a button LEG apart, both inside the margins
            home = rng.uniform(MARGIN, 1 - MARGIN, size=2)
            angle, leg = rng.uniform(0, 2 * np.pi), rng.uniform(*LEG)
            button = home + leg * np.array([np.cos(angle), np.sin(angle)])
            if ((button >= MARGIN) & (button <= 1 - MARGIN)).all():
                break
        self.home, self.button, self.puck = home, button, home.copy()
        self.phase, self.held = 0, 0
        return self._obs(), {"dense": self.dense()}

    def target(self) -> np.ndarray:
        """Where the puck is headed in the current phase."""
        return self.home if self.phase == 1 else self.button

    def pressed(self) -> bool:
        return float(np.linalg.norm(self.puck - self.button)) < PRESS_RADIUS

    def dense(self) -> float:
        """(legs done + fraction of this leg done) / 3, in [0, 1]; 1 once the second press is held."""
        leg = float(np.linalg.norm(self.button - self.home))
        to_go = float(np.linalg.norm(self.target() - self.puck))
        return float(np.clip((min(self.phase, 2) + 1 - to_go / leg) / 3, 0.0, 1.0))

    def step(self, action):
        move = np.asarray(action, dtype=np.float64).reshape(2)
        norm = float(np.linalg.norm(move))
        if norm > 1:
            move = move / norm
        self.puck = np.clip(self.puck + SPEED * move, 0.0, 1.0)
        if self.phase == 0 and self.pressed():
            self.held += 1
            if self.held >= PRESS_HOLD:
                self.phase, self.held = 1, 0
        elif self.phase == 1 and float(np.linalg.norm(self.puck - self.home)) < HOME_RADIUS:
            self.phase = 2
        else:
            self.held = 0 if not self.pressed() else self.held
        reward = self.dense()
        return self._obs(), reward, False, False, {"dense": reward, "success": self.phase == 2 and self.pressed()}

    def render(self) -> np.ndarray:
        s = self.size
        ys, xs = (np.mgrid[0:s, 0:s] + 0.5) / s  # pixel centres in arena units; y grows downwards
        frame = np.empty((s, s, 3), dtype=np.uint8)
        frame[:] = WHITE

        def disk(centre: np.ndarray, radius: float) -> np.ndarray:
            return (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2

        frame[disk(self.home, 0.06)] = PAD
        down = self.pressed()
        half = 0.035 if down else 0.05  # a pressed button sinks: smaller and darker
        square = (np.abs(xs - self.button[0]) <= half) & (np.abs(ys - self.button[1]) <= half)
        frame[square] = BUTTON_DOWN if down else BUTTON_UP
        frame[disk(self.puck, 0.04)] = PUCK
        return frame


ENV_ID = "v2r/PressTwice-v0"
if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=PressTwiceEnv)


def press_twice_expert(obs: np.ndarray) -> np.ndarray:
    """Straight to the phase's target at one even speed (at most SPEED per step) that lands on it exactly: n =
    ceil(distance / SPEED) equal steps. Every leg therefore passes through the same n + 1 positions, out and back,
    so only the order of the frames tells the legs apart."""
    puck, button, home, phase = obs[0:2], obs[2:4], obs[4:6], round(float(obs[6]) * 3)
    offset = (home if phase == 1 else button) - puck
    steps = max(1, int(np.ceil(float(np.linalg.norm(offset)) / SPEED - 1e-6)))
    return (offset / (SPEED * steps)).astype(np.float32)


def press_twice_dense(env: gym.Env) -> float:
    return env.unwrapped.dense()


def press_twice_at_goal(env: gym.Env, info: dict) -> bool:
    """On the button for the second time."""
    return env.unwrapped.phase == 2 and env.unwrapped.pressed()


PRESS_TWICE = DemoTask(
    name="press-twice",
    env_id=ENV_ID,
    expert=press_twice_expert,
    idle_action=np.zeros(2, dtype=np.float32),
    start=env_start,
    at_goal=press_twice_at_goal,
    hold_steps=PRESS_HOLD,
    dense=press_twice_dense,
    dense_signal=(
        "The fraction of the task done: (legs completed + fraction of the current leg's distance covered) / 3, "
        "for the legs home -> button, button -> home, home -> button; 1 while the second press is held."
    ),
    max_steps=150,
)
