"""LearnedReward: a gymnasium wrapper that replaces an env's reward with a video2reward model's reward.

    env = gym.make("MountainCar-v0", render_mode="rgb_array")
    env = LearnedReward(env, video2reward.load("models/mountaincar"), reward="progress",
                        success_fn="mountaincar")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    info["env_reward"], info["mu"], info["sigma"], info["is_success"]

Every step renders the frame and hands it to the model's streaming `Scorer` (inference/scorer.py), which
keeps the episode's context (the reset frame progress is measured from, the motion partner or a temporal
head's window); the wrapper keeps the previous mu (for shaping); reset() clears them all. The rewards of an episode equal
`model.score(frames)` on that episode's frames, frame for frame: the reset frame is frame 0 and step t
gets the reward of frame t.

Frames reach the model the way training-video frames did (preprocess="video", the default): the
render is resized with area averaging to a `short_side` of 240 pixels as the demo generator does,
converted to yuv420p as the H.264 encoder does, and resized to the model's square size by swscale's
area filter as decoding does. Only the H.264 compression itself is left out (tests/rl/test_wrapper.py bounds
the difference). preprocess="array" resizes the raw render with Pillow instead, exactly as `model.score(array)`
does (without the yuv420p colour rounding of the training videos).

Vectorised envs: rl/vec.py's VecLearnedReward renders in each env's own process and scores the N frames of a
vector step in one batched call, with the same rewards as this wrapper on each env.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import av
import gymnasium as gym
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.inference.scorer import Rewards
from video2reward.tasks import TASKS
from video2reward.video.frame_fit import (
    fit_dims,
    fit_square,
    resize_short_side,
    to_square,
)

REWARDS = ("progress", "uncertainty", "shaping")
OBSERVE = ("state", "pixels")
PREPROCESS = ("video", "array")
DEMO_SHORT_SIDE = 240  # `generate_demo_data`'s default frame size

SuccessFn = Callable[[gym.Env, dict], bool]


class VideoFrames:
    """Callable: (H, W, 3) uint8 render -> (size, size, 3) as decoding a demo video gives it: the short side
    resized to `short_side` (None: keep) as the demo generator does, odd sides padded as write_video does,
    yuv420p as the encoder sees it, then swscale's area resize and squaring as decoding does. Keeps its
    swscale contexts between calls (building them per frame is several times slower)."""

    def __init__(self, size: int, fit: str = "pad", short_side: int | None = DEMO_SHORT_SIDE):
        self.size, self.fit, self.short_side = size, fit, short_side
        self._to_yuv, self._to_rgb = VideoReformatter(), VideoReformatter()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        if self.short_side is not None:
            frame = resize_short_side(frame, self.short_side)  # as the demo generator resizes renders
        if frame.shape[0] % 2 or frame.shape[1] % 2:
            frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
        yuv = self._to_yuv.reformat(av.VideoFrame.from_ndarray(frame, format="rgb24"), format="yuv420p")
        width, height = fit_dims(yuv.width, yuv.height, self.size, self.fit)
        rgb = self._to_rgb.reformat(yuv, width=width, height=height, format="rgb24", interpolation="AREA")
        return to_square(rgb.to_ndarray(), self.size)


class ModelFrames:
    """Callable: a rendered (H, W, 3) uint8 frame -> the (S, S, 3) frame the model scores: as a decoded training
    video's frame (preprocess="video", see VideoFrames) or fitted with Pillow as `model.score(array)` fits
    arrays (preprocess="array")."""

    def __init__(self, size: int, fit: str = "pad", preprocess: str = "video", short_side: int | None = DEMO_SHORT_SIDE):
        if preprocess not in PREPROCESS:
            raise ConfigError(f"preprocess={preprocess!r}: choose one of {', '.join(PREPROCESS)}")
        self.size, self.fit, self.preprocess = size, fit, preprocess
        self._video = VideoFrames(size, fit, short_side)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.preprocess == "array":
            frame = fit_square(np.ascontiguousarray(frame[..., :3]), self.size, self.fit)
        else:
            frame = self._video(frame)
        return np.require(frame, np.uint8, ["C", "W"])  # Pillow's arrays are read-only; torch wants writable


def video_frame(frame: np.ndarray, size: int, fit: str = "pad", short_side: int | None = DEMO_SHORT_SIDE) -> np.ndarray:
    """One render as a decoded demo-video frame (see VideoFrames, which is faster for many frames)."""
    return VideoFrames(size, fit, short_side)(frame)


def _is_image_space(space: gym.Space) -> bool:
    return (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
            and space.shape[-1] in (3, 4))


def _success_fn(success_fn: SuccessFn | str | None) -> tuple[SuccessFn | None, int]:
    """A callable is used as is; a demo task name gives that task's at_goal and hold_steps."""
    if success_fn is None or callable(success_fn):
        return success_fn, 1
    if success_fn not in TASKS:
        raise ConfigError(f"success_fn={success_fn!r}: not a demo task (known: {', '.join(TASKS)}) nor a callable")
    return TASKS[success_fn].at_goal, TASKS[success_fn].hold_steps


def _first(rewards: Rewards) -> tuple[float, float, float | None]:
    """(mu, sigma, success probability or None) of a one-frame Rewards."""
    prob = None if rewards.success_prob is None else float(rewards.success_prob[0])
    return float(rewards.mu[0]), float(rewards.sigma[0]), prob


class LearnedReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Reward = the learned reward of the frame the env shows after each step.

    reward: "progress" gives mu_t; "uncertainty" gives mu_t - k * sigma_t (pessimistic where the model is
        unsure); "shaping" gives mu_t - mu_{t-1}, a potential-based difference with gamma = 1 whose first
        step is relative to the reset frame, so an episode's rewards sum to mu_T - mu_0 (mu is not set to
        0 at terminal states).
    scale, offset: reward = scale * learned + offset. An offset of -1 with "progress" makes every step cost
        (mu <= 1), so on tasks that end at the goal, arriving sooner pays instead of lingering for more
        positive reward. success_bonus is then added (unscaled) on every step where the
        learned success test fires: the model's success probability >= success_threshold (default 0.5)
        when its head has `predict_success(z, initial, goal, previous)`, else mu >= success_threshold.
        Only the success head (`v2r train --head success`) has a detector; with any other head a bonus needs
        a success_threshold on mu.
    observe: "state" keeps the env's observations; "pixels" returns the model's input frame,
        Box(0, 255, (S, S, 3), uint8). With "pixels" and an env whose observations are images, the
        observation itself is the frame and no render_mode is needed; otherwise the env must have been
        made with render_mode="rgb_array".
    success_fn: (env, info) -> bool for info["is_success"], or a demo task name ("mountaincar",
        "pendulum") for its at_goal held for its hold_steps; without one, info["success"] (Meta-World) is
        used, else False.
    goal: goal features (see RewardModel.goal_from_image); None uses the model's stored goal.
    preprocess, short_side: how renders become model frames (see the module docstring and video_frame).
    discriminator: an rl.discriminator.DiscriminatorReward: its weight * log D(z) of each frame's features is
        added to the reward (info["log_d"]), and the features are kept as the agent's for its training.

    info gains env_reward (the env's own reward), mu, sigma, success_prob (None without a detector) and
    is_success. reward_seconds totals the time spent rendering, resizing and scoring (reward_calls
    counts them: one per reset and per step), so RL overhead can be measured.
    """

    def __init__(
        self, env: gym.Env, model: RewardModel | str | os.PathLike, reward: str = "progress", k: float = 1.0,
        success_bonus: float = 0.0, success_threshold: float | None = None, scale: float = 1.0,
        offset: float = 0.0, observe: str = "state", success_fn: SuccessFn | str | None = None, goal: torch.Tensor | None = None,
        preprocess: str = "video", short_side: int | None = DEMO_SHORT_SIDE, discriminator=None,
    ):
        gym.utils.RecordConstructorArgs.__init__(  # so env.spec.make() can rebuild the wrapped env
            self, model=model, reward=reward, k=k, success_bonus=success_bonus, success_threshold=success_threshold,
            scale=scale, offset=offset, observe=observe, success_fn=success_fn, goal=goal, preprocess=preprocess,
            short_side=short_side, discriminator=discriminator)
        gym.Wrapper.__init__(self, env)
        if not isinstance(model, RewardModel):
            model = RewardModel.load(model)
        for name, value, known in (("reward", reward, REWARDS), ("observe", observe, OBSERVE),
                                   ("preprocess", preprocess, PREPROCESS)):
            if value not in known:
                raise ConfigError(f"{name}={value!r}: choose one of {', '.join(known)}")
        self.model, self.reward_mode, self.k, self.scale = model, reward, float(k), float(scale)
        self.offset = float(offset)
        self.observe, self.preprocess, self.short_side = observe, preprocess, short_side
        self.frame_from_obs = observe == "pixels" and _is_image_space(env.observation_space)
        if not self.frame_from_obs and env.render_mode != "rgb_array":
            spec = getattr(env, "spec", None)
            make = f"gym.make({spec.id!r}, render_mode='rgb_array')" if spec is not None else "render_mode='rgb_array'"
            raise ConfigError(
                f"LearnedReward renders every step to score it, but the env's render_mode is {env.render_mode!r}; "
                f"create it with {make}"
            )
        self.success_bonus = float(success_bonus)
        self.success_threshold = success_threshold
        if self.success_bonus and not model.has_success and success_threshold is None:
            raise ConfigError(
                f"success_bonus={success_bonus}: the model ({model.describe()}) has no success detector; pass "
                f"success_threshold=X to give the bonus when mu >= X"
            )
        self.success_fn, self.hold_steps = _success_fn(success_fn)
        self.discriminator = discriminator
        self.scorer = model.scorer(goal, keep_frames=True)  # one stream: this env's episode
        size = model.image_size
        self._model_frames = ModelFrames(size, model.frame_fit, preprocess, short_side)
        if observe == "pixels":
            self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.reward_seconds = 0.0
        self.reward_calls = 0
        self._reset_state()

    # ---- per-episode state ------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self.scorer.reset(1)  # the episode's first frame, motion partner and context: the scorer's to keep
        self._previous_mu = 0.0
        self._at_goal_steps = 0
        self.frame: np.ndarray | None = None  # the latest model frame (S, S, 3)

    def model_frame(self, frame: np.ndarray) -> np.ndarray:
        """A rendered (H, W, 3) uint8 frame -> the (S, S, 3) frame the model scores."""
        return self._model_frames(frame)

    def _learned(self, obs: Any) -> tuple[float, float, float | None]:
        """Render, resize and score the current frame: (mu, sigma, success probability or None)."""
        t0 = time.perf_counter()
        self.frame = self.model_frame(obs if self.frame_from_obs else self.env.render())
        rewards = self.scorer.step(self.frame[None])
        self.reward_seconds += time.perf_counter() - t0
        self.reward_calls += 1
        return _first(rewards)

    def refresh(self) -> None:
        """Re-read the running episode's kept frames (its first frame and the last few the reward reads back)
        with the model's current weights, and the previous mu with them. Call it after the weights changed in
        place (online refinement, rl/refine.py): the episode's later rewards are then what `model.score` with
        the new weights gives those frames, as if the episode had been scored by them from its start."""
        rewards = self.scorer.refresh()
        if len(rewards):
            self._previous_mu = float(rewards.mu[0])

    # ---- gymnasium API ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._reset_state()
        mu, sigma, prob = self._learned(obs)
        self._previous_mu = mu
        info = dict(info, mu=mu, sigma=sigma, success_prob=prob)
        return self._observation(obs), info

    def step(self, action: Any):
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        mu, sigma, prob = self._learned(obs)
        if self.reward_mode == "progress":
            learned = mu
        elif self.reward_mode == "uncertainty":
            learned = mu - self.k * sigma
        else:  # shaping
            learned = mu - self._previous_mu
        self._previous_mu = mu
        reward = self.scale * learned + self.offset
        if self.success_bonus and self._learned_success(mu, prob):
            reward += self.success_bonus
        info = dict(info, env_reward=float(env_reward), mu=mu, sigma=sigma, success_prob=prob,
                    is_success=self._is_success(info))
        if self.discriminator is not None:
            info["log_d"] = float(self.discriminator.log_d(self.scorer.features)[0])
            reward += self.discriminator.config.weight * info["log_d"]
            self.discriminator.add(self.scorer.features)
        return self._observation(obs), float(reward), terminated, truncated, info

    def _observation(self, obs: Any) -> Any:
        return self.frame.copy() if self.observe == "pixels" else obs

    def _learned_success(self, mu: float, prob: float | None) -> bool:
        if prob is not None:
            return prob >= (0.5 if self.success_threshold is None else self.success_threshold)
        return mu >= self.success_threshold

    def _is_success(self, info: dict) -> bool | None:
        if self.success_fn is None:  # an inner wrapper (rl.envs.TaskInfo) may already know; None: nobody says
            said = info.get("is_success", info.get("success"))
            return None if said is None else bool(said)
        self._at_goal_steps = self._at_goal_steps + 1 if self.success_fn(self.env, info) else 0
        return self._at_goal_steps >= self.hold_steps

    @property
    def seconds_per_reward(self) -> float:
        """Mean seconds per learned reward (render + resize + model) so far."""
        return self.reward_seconds / max(self.reward_calls, 1)
