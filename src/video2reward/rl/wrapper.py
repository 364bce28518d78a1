"""LearnedReward: a gymnasium wrapper that replaces an env's reward with a video2reward model's reward.

    env = gym.make("MountainCar-v0", render_mode="rgb_array")
    env = LearnedReward(env, video2reward.load("models/mountaincar"), reward="progress",
                        success_fn="mountaincar")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    info["env_reward"], info["mu"], info["sigma"], info["is_success"]

Every step renders the frame and scores it incrementally, keeping per episode the reset frame's
features (the initial frame progress is measured from), the last `motion_gap` frames' features (the
motion partner) or, for a temporal head, the rolling context of the last K-1 frames' features, and the
previous mu (for shaping); reset() clears them all. The rewards of an episode equal
`model.score(frames)` on that episode's frames, frame for frame: the reset frame is frame 0 and step t
gets the reward of frame t.

Frames reach the model the way training-video frames did (preprocess="video", the default): the
render is resized with area averaging to a `short_side` of 240 pixels as the demo generator does,
converted to yuv420p as the H.264 encoder does, and resized to the model's square size by swscale's
area filter as decoding does. Only the H.264 compression itself is left out; on the demo tasks that is
0.01-0.06 grey levels per pixel on average and changes mu by under 0.01. preprocess="array" resizes the
raw render with Pillow instead, exactly as `model.score(array)` does (mean 1.4-2.2 grey levels off the
decoded training frames, mostly the missing yuv420p colour rounding, and up to 0.03 in mu).

Vectorised envs: each env is scored on its own, one frame per step (no batching across envs).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import gymnasium as gym
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from video2reward.errors import ConfigError
from video2reward.rewards.model import RewardModel, frames_to_tensor
from video2reward.tasks import TASKS
from video2reward.video.frame_fit import fit_dims, fit_square, resize_short_side, to_square

REWARDS = ("progress", "uncertainty", "shaping")
OBSERVE = ("state", "pixels")
PREPROCESS = ("video", "array")
DEMO_SHORT_SIDE = 240  # `generate_demo_data`'s default frame size

SuccessFn = Callable[[gym.Env, dict], bool]


class VideoFrames:
    """Callable: (H, W, 3) uint8 render -> (size, size, 3) as decoding a demo video gives it: the short side
    resized to `short_side` (None: keep) as the demo generator does, odd sides padded as write_video does,
    yuv420p as the encoder sees it, then swscale's area resize and squaring as decoding does. Keeps its
    swscale contexts between calls (about 5x faster than building them per frame)."""

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

    info gains env_reward (the env's own reward), mu, sigma, success_prob (None without a detector) and
    is_success. reward_seconds totals the time spent rendering, resizing and scoring (reward_calls
    counts them: one per reset and per step), so RL overhead can be measured.
    """

    def __init__(
        self, env: gym.Env, model: RewardModel | str | os.PathLike, reward: str = "progress", k: float = 1.0,
        success_bonus: float = 0.0, success_threshold: float | None = None, scale: float = 1.0,
        offset: float = 0.0, observe: str = "state", success_fn: SuccessFn | str | None = None, goal: torch.Tensor | None = None,
        preprocess: str = "video", short_side: int | None = DEMO_SHORT_SIDE,
    ):
        gym.utils.RecordConstructorArgs.__init__(  # so env.spec.make() can rebuild the wrapped env
            self, model=model, reward=reward, k=k, success_bonus=success_bonus, success_threshold=success_threshold,
            scale=scale, offset=offset, observe=observe, success_fn=success_fn, goal=goal, preprocess=preprocess,
            short_side=short_side)
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
        self._predict_success = getattr(model.head, "predict_success", None)
        if self.success_bonus and self._predict_success is None and success_threshold is None:
            raise ConfigError(
                f"success_bonus={success_bonus}: the model ({model.describe()}) has no success detector; pass "
                f"success_threshold=X to give the bonus when mu >= X"
            )
        self.success_fn, self.hold_steps = _success_fn(success_fn)
        self.goal = None if goal is None else goal.to(model.device)
        size = model.image_size
        self._video_frames = VideoFrames(size, model.frame_fit, short_side)
        if observe == "pixels":
            self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.reward_seconds = 0.0
        self.reward_calls = 0
        self._reset_state()

    # ---- per-episode state ------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self._initial: torch.Tensor | None = None  # (D,) features of the episode's first frame
        self._history: deque[torch.Tensor] = deque(maxlen=max(self._kept, 1))  # last gap (or K-1) (1, D)
        self._previous_mu = 0.0
        self._at_goal_steps = 0
        self.frame: np.ndarray | None = None  # the latest model frame (S, S, 3)
        self._initial_frame: np.ndarray | None = None  # model frames kept for refresh(): the first one
        self._recent_frames: deque[np.ndarray] = deque(maxlen=self._kept + 1)  # frames t - gap (t-K+1) .. t

    @property
    def _kept(self) -> int:
        """Earlier frames a reward reads: the motion gap, or K-1 for a temporal head."""
        return max(self.model.motion_gap, self.model.context - 1)

    def _context_before(self) -> torch.Tensor:
        """(1, K-1, D): the features of the K-1 frames before the current one, oldest first, the episode's first
        frame standing in for frames before it (as score_chunks does)."""
        before = self.model.context - 1
        past = list(self._history)[-before:]
        return torch.cat([self._initial[None]] * (before - len(past)) + past)[None]

    def model_frame(self, frame: np.ndarray) -> np.ndarray:
        """A rendered (H, W, 3) uint8 frame -> the (S, S, 3) frame the model scores."""
        if self.preprocess == "array":
            frame = fit_square(np.ascontiguousarray(frame[..., :3]), self.model.image_size, self.model.frame_fit)
        else:
            frame = self._video_frames(frame)
        return np.require(frame, np.uint8, ["C", "W"])  # Pillow's arrays are read-only; torch wants writable

    @torch.inference_mode()
    def _learned(self, obs: Any) -> tuple[float, float, float | None]:
        """Render, resize and score the current frame: (mu, sigma, success probability or None)."""
        t0 = time.perf_counter()
        self.frame = self.model_frame(obs if self.frame_from_obs else self.env.render())
        if self._initial_frame is None:
            self._initial_frame = self.frame
        self._recent_frames.append(self.frame)
        head = self.model.head
        z = head.embed(frames_to_tensor(self.frame[None], self.model.device))  # (1, D)
        if self._initial is None:
            self._initial = z[0]
        previous = None
        gap = self.model.motion_gap
        if gap > 0:  # frame t - gap, or the initial frame while t < gap (as score_chunks does)
            previous = self._history[0] if len(self._history) == gap else self._initial[None]
            self._history.append(z)
        elif self.model.context > 1:  # the rolling context: frames t-K+1 .. t-1
            previous = self._context_before()
            self._history.append(z)
        mu, sigma = head.predict(z, self._initial, self.goal, previous)
        prob = None
        if self._predict_success is not None:
            prob = float(self._predict_success(z, self._initial, self.goal, previous)[0])
        self.reward_seconds += time.perf_counter() - t0
        self.reward_calls += 1
        return float(mu[0]), float(sigma[0]), prob

    @torch.inference_mode()
    def refresh(self) -> None:
        """Re-embed the running episode's cached frames (its first frame, the last `motion_gap` frames and the
        previous mu) with the model's current weights. Call it after the weights changed in place (online
        refinement, rl/refine.py): the episode's later rewards are then what `model.score` with the new
        weights gives those frames, as if the episode had been scored by them from its start. (A `goal` given
        to the wrapper holds features of the old weights: it is not recomputed; the model's stored goal is the
        refiner's to update.)"""
        if self._initial_frame is None:
            return
        head, gap = self.model.head, self.model.motion_gap
        z = head.embed(frames_to_tensor(np.stack([self._initial_frame, *self._recent_frames]), self.model.device))
        self._initial, recent = z[0], z[1:]  # recent: frames max(t - gap, 0) .. t, the current frame t last
        previous = None
        if gap > 0:
            self._history = deque((recent[i : i + 1] for i in range(max(len(recent) - gap, 0), len(recent))),
                                  maxlen=gap)
            previous = recent[:1] if len(recent) == gap + 1 else self._initial[None]  # frame t - gap, or the first
        elif self.model.context > 1:  # recent holds frames t-K+1 .. t (fewer early in the episode)
            self._history = deque((recent[i : i + 1] for i in range(len(recent))), maxlen=self.model.context - 1)
            previous = torch.cat([self._initial[None]] * (self.model.context - len(recent)) + [recent[:-1]])[None]
        mu, _ = head.predict(recent[-1:], self._initial, self.goal, previous)
        self._previous_mu = float(mu[0])

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
        return self._observation(obs), float(reward), terminated, truncated, info

    def _observation(self, obs: Any) -> Any:
        return self.frame.copy() if self.observe == "pixels" else obs

    def _learned_success(self, mu: float, prob: float | None) -> bool:
        if prob is not None:
            return prob >= (0.5 if self.success_threshold is None else self.success_threshold)
        return mu >= self.success_threshold

    def _is_success(self, info: dict) -> bool:
        if self.success_fn is None:  # an inner wrapper (rl.envs.TaskInfo) may already know
            return bool(info.get("is_success", info.get("success", False)))
        self._at_goal_steps = self._at_goal_steps + 1 if self.success_fn(self.env, info) else 0
        return self._at_goal_steps >= self.hold_steps

    @property
    def seconds_per_reward(self) -> float:
        """Mean seconds per learned reward (render + resize + model) so far."""
        return self.reward_seconds / max(self.reward_calls, 1)
