"""Vectorised envs with one batched learned-reward call per vector step (`v2r rl --envs N`).

    sub-env (its own process with SubprocVecEnv): TaskInfo -> FrameInInfo   (renders, fits to the model's frame)
    SubprocVecEnv / DummyVecEnv -> VecLearnedReward (one Scorer.step for the N frames) -> VecMonitor -> SB3

Each sub-env renders its frame and turns it into the model's (S, S, 3) frame where it runs, so N processes
render and resize in parallel and only S*S*3 bytes cross the pipe. VecLearnedReward keeps one scorer stream
per env (its first frame, motion partner or temporal window): when env i's episode ends, SB3's vector env
resets it at once, and stream i alone starts again from the reset frame (the other envs' context is kept).
The rewards are those of LearnedReward on each env alone (tests/rl/test_vec.py checks it frame for frame);
info keeps the env's own reward (`env_reward`) and true success (`is_success`), as the single-env wrapper does.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecEnvWrapper,
)

from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.rl.reward_fn import combine
from video2reward.rl.wrapper import DEMO_SHORT_SIDE, REWARDS, ModelFrames

FRAME = "v2r_frame"  # the info key that carries a sub-env's model frame to the vector wrapper


class FrameInInfo(gym.Wrapper):
    """Puts the model frame of the state the env shows after every reset and step into info[FRAME]."""

    def __init__(self, env: gym.Env, size: int, fit: str = "pad", preprocess: str = "video",
                 short_side: int | None = DEMO_SHORT_SIDE):
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ConfigError(f"FrameInInfo renders every step, but the env's render_mode is {env.render_mode!r}: "
                              f"make it with render_mode='rgb_array'")
        self.frames = ModelFrames(size, fit, preprocess, short_side)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, FRAME: self.frames(self.env.render())}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, FRAME: self.frames(self.env.render())}


class VecLearnedReward(VecEnvWrapper):
    """The learned reward of N envs, scored in one batched call per vector step (see the module docstring).

    reward, k, scale, offset, goal, discriminator: as in LearnedReward (rl/wrapper.py). `on_frames(frames,
    starts)`: called with every vector step's model frames (N, S, S, 3) and the envs whose episode starts with
    them (the reset frames come in a call of their own), e.g. to keep the agent's frames for online refinement.
    """

    def __init__(self, venv: VecEnv, model: RewardModel, reward: str = "progress", k: float = 1.0, scale: float = 1.0,
                 offset: float = 0.0, goal=None, discriminator=None,
                 on_frames: Callable[[np.ndarray, np.ndarray], None] | None = None):
        super().__init__(venv)
        if reward not in REWARDS:
            raise ConfigError(f"reward={reward!r}: choose one of {', '.join(REWARDS)}")
        self.model, self.reward_mode, self.k, self.scale, self.offset = model, reward, float(k), float(scale), float(offset)
        self.scorer = model.scorer(goal, keep_frames=True)
        self.discriminator, self.on_frames = discriminator, on_frames
        self.previous_mu = np.zeros(self.num_envs, np.float32)

    def _start(self, envs: np.ndarray) -> None:
        """Streams `envs` start again at their reset frames (SB3 keeps the reset info of an env it reset)."""
        for i in envs:
            self.scorer.reset_stream(int(i))
        frames = np.stack([self.venv.reset_infos[i][FRAME] for i in envs])  # (n, S, S, 3)
        first = self.scorer.step(frames, which=envs)
        self.previous_mu[envs] = first.mu
        if self.on_frames is not None:
            self.on_frames(frames, envs)

    def reset(self):
        obs = self.venv.reset()
        self.scorer.reset(self.num_envs)
        self._start(np.arange(self.num_envs))
        return obs

    def step_wait(self):
        obs, env_rewards, dones, infos = self.venv.step_wait()
        frames = np.stack([info.pop(FRAME) for info in infos])  # (N, S, S, 3)
        r = self.scorer.step(frames)
        rewards = combine(self.reward_mode, self.k, self.scale, self.offset, r.mu, r.sigma, self.previous_mu)
        log_d = None
        if self.discriminator is not None:
            log_d = self.discriminator.log_d(self.scorer.features)  # (N,)
            rewards = rewards + self.discriminator.config.weight * log_d
            self.discriminator.add(self.scorer.features)
        for i, info in enumerate(infos):
            info.setdefault("env_reward", float(env_rewards[i]))
            info.update(mu=float(r.mu[i]), sigma=float(r.sigma[i]),
                        success_prob=None if r.success_prob is None else float(r.success_prob[i]))
            if log_d is not None:
                info["log_d"] = float(log_d[i])
        self.previous_mu = r.mu.astype(np.float32).copy()
        if self.on_frames is not None:
            self.on_frames(frames, np.zeros(0, int))
        ended = np.flatnonzero(dones)
        if len(ended):
            self._start(ended)
        return obs, rewards.astype(np.float32), dones, infos

    def refresh(self) -> None:
        """Re-read every stream's kept frames after the model's weights changed in place (rl/refine.py)."""
        r = self.scorer.refresh()
        for i, stream in enumerate(self.scorer.streams):
            if stream.first_frame is not None:
                self.previous_mu[i] = r.mu[i]


def make_vec_env(make_env: Callable[[], gym.Env], n: int, model: RewardModel | None, subprocess: bool | None = None,
                 preprocess: str = "video") -> VecEnv:
    """N copies of `make_env()` (a gym env made with render_mode='rgb_array' when there is a model), each
    putting its model frame in info when there is a model; in subprocesses when n > 1 (default)."""
    if n < 1:
        raise ConfigError(f"--envs {n}: use 1 or more environments")
    frame = None if model is None else (model.image_size, model.frame_fit)  # not the model: it stays here

    def one() -> gym.Env:
        env = make_env()
        return env if frame is None else FrameInInfo(env, *frame, preprocess)

    if subprocess is None:
        subprocess = n > 1
    return SubprocVecEnv([one] * n) if subprocess else DummyVecEnv([one] * n)
