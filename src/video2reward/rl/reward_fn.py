"""Learned rewards for batches of transitions: a reward function for the `imitation` library (or any code that
hands over (obs, acts, next_obs, dones) batches) and relabelling of stored episodes and SB3 replay buffers.

    fn = reward_fn(video2reward.load("models/reach"), offset=-1.0)   # imitation's RewardFn signature
    venv = RewardVecEnvWrapper(venv, fn)                             # imitation.rewards.reward_wrapper
    rewards = relabel_episodes(model, [frames_a, frames_b])          # (T,) per episode, exact context
    env_rewards = relabel_replay_buffer(model, sb3_agent.replay_buffer)  # rewards written into the buffer

Observations are pixels: (B, H, W, 3) or (B, 3, H, W) images, uint8 or floats in [0, 1] (grayscale and RGBA
too); other sizes than the model's are fitted as `model.score(array)` fits them (video/frame_fit.py). The reward
of a transition is the learned reward of its next_obs, read in context (the episode's first frame, the motion
partner, a temporal head's window) by the one streaming `Scorer` (inference/scorer.py): an episode's transition
rewards equal `model.score(episode_frames)[1:]` wherever the calls below let the context be known.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from video2reward.errors import ConfigError, VideoError
from video2reward.inference.model import RewardModel
from video2reward.inference.scorer import SCORE_BATCH, Rewards, Scorer
from video2reward.rl.wrapper import REWARDS
from video2reward.video.frame_fit import fit_frames

CHUNK_BYTES = 1 << 28  # model frames held at once while relabelling (256 MiB); episodes are never split


def model_frames(frames: Any, size: int, fit: str = "pad", what: str = "observations") -> np.ndarray:
    """A batch of images -> (N, size, size, 3) uint8, writable. Accepts (N, H, W, C) or (N, C, H, W) with C in
    1 (gray), 3, 4 (RGBA: alpha dropped); uint8, or floats in [0, 1]. Channels-last wins when both readings fit."""
    x = np.asarray(frames)
    if x.ndim != 4:
        raise VideoError(f"{what}: expected a batch of images (N, H, W, 3) or (N, 3, H, W), got shape {x.shape}")
    if x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):
        x = x.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    if x.dtype.kind == "f":
        if x.size and (x.min() < 0 or x.max() > 1):
            raise VideoError(f"{what}: float images must be in [0, 1] (got {x.min():.3g}..{x.max():.3g}); pass "
                             f"uint8 images, or divide by 255")
        x = np.rint(x * 255.0).astype(np.uint8)
    elif x.dtype != np.uint8:
        raise VideoError(f"{what}: images must be uint8 or floats in [0, 1], got {x.dtype}")
    if x.shape[1:] == (size, size, 3):
        return np.require(x, np.uint8, ["C", "W"])  # already the model's frames; torch wants writable arrays
    if len(x) == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    return fit_frames(x, size, fit)  # as model.score(array) fits them


def _load(model: RewardModel | str | os.PathLike) -> RewardModel:
    return model if isinstance(model, RewardModel) else RewardModel.load(model)


def _check_mode(reward: str) -> None:
    if reward not in REWARDS:
        raise ConfigError(f"reward={reward!r}: choose one of {', '.join(REWARDS)}")


def combine(reward: str, k: float, scale: float, offset: float, mu: np.ndarray, sigma: np.ndarray,
             previous_mu: np.ndarray) -> np.ndarray:
    """The reward modes of LearnedReward (rl/wrapper.py): mu, mu - k * sigma, or mu - previous mu; scaled."""
    if reward == "progress":
        learned = mu
    elif reward == "uncertainty":
        learned = mu - k * sigma
    else:  # shaping: a potential difference, the first step relative to the episode's first frame
        learned = mu - previous_mu
    return (scale * learned + offset).astype(np.float32)


# ---- running some of a scorer's streams (its `streams` list holds one context per stream) --------------
def _new_streams(scorer: Scorer, n: int) -> list:
    """n fresh stream contexts, not yet part of the scorer's streams."""
    kept = scorer.streams
    scorer.reset(n)
    fresh, scorer.streams = scorer.streams, kept
    return fresh


def _step_some(scorer: Scorer, streams: list, frames: np.ndarray) -> Rewards:
    """`Scorer.step` for the given stream contexts only (one frame each); the scorer's own streams wait."""
    kept, scorer.streams = scorer.streams, streams
    try:
        return scorer.step(frames)
    finally:
        scorer.streams = kept


class LearnedRewardFn:
    """imitation's RewardFn: `fn(obs, acts, next_obs, dones) -> (B,) float32`, the learned reward of next_obs.

    Context is kept per row: row i of every call is env i of a VecEnv, whose stream continues from call to call.
    Exact (each episode's rewards equal `model.score(its frames)[1:]`) when, as `RewardVecEnvWrapper` calls it,
    every call holds one transition per env in step order (B = n_envs, constant), obs[i] is the previous
    call's next_obs[i], and after dones[i] the next obs[i] is the new episode's first frame. A row starts a new
    stream, at its obs (taken as the episode's first frame), whenever that chain breaks: on the first call, after
    dones[i], when obs[i] differs from the previous next_obs[i] (a reset VecEnv, shuffled samples), and for every
    row when B changes between calls. Such a row reads next_obs with only obs before it, not its episode's real
    start: shuffled replay samples (`ReplayBufferRewardWrapper`) and the flattened buffer of
    `RewardRelabelCallback` get this approximate reward. Relabel stored data with `relabel_replay_buffer` or
    `relabel_episodes` instead, which know where episodes start.

    reward, k, scale, offset, goal: as in LearnedReward (progress, uncertainty or shaping; then
    scale * reward + offset; goal features instead of the model's stored goal). `acts` is not read.
    After a call, `last` holds the Rewards (mu, sigma, ...) of its next_obs and `new_streams` counts the rows
    that started a stream so far.
    """

    def __init__(self, model: RewardModel | str | os.PathLike, reward: str = "progress", k: float = 1.0,
                 scale: float = 1.0, offset: float = 0.0, goal: torch.Tensor | None = None):
        _check_mode(reward)
        self.model = _load(model)
        self.reward_mode, self.k, self.scale, self.offset = reward, float(k), float(scale), float(offset)
        self.scorer = self.model.scorer(goal)
        self.reset()

    def reset(self) -> None:
        """Forget every stream: the next call starts each row's stream at its obs."""
        self.scorer.reset(0)
        self._last_next: np.ndarray | None = None  # the previous call's next_obs, as given
        self._last_done = np.zeros(0, bool)
        self._previous_mu = np.zeros(0, np.float32)
        self.last: Rewards | None = None
        self.new_streams = 0

    def _broken(self, obs: np.ndarray) -> np.ndarray:
        """(B,) True where row i does not continue the previous call's stream i."""
        last = self._last_next
        if last is None or len(obs) != len(self.scorer.streams) or last.shape != obs.shape:
            return np.ones(len(obs), bool)
        same = (obs.reshape(len(obs), -1) == last.reshape(len(obs), -1)).all(axis=1)
        return ~same | self._last_done

    def __call__(self, obs: np.ndarray, acts: Any, next_obs: np.ndarray, dones: np.ndarray, /,
                 update_stats: bool = False) -> np.ndarray:
        """Rewards (B,) float32 of a batch of transitions. update_stats is accepted and ignored (imitation's
        RewardRelabelCallback passes it)."""
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        dones = np.asarray(dones).reshape(-1).astype(bool)
        if not len(obs) == len(next_obs) == len(dones):
            raise ConfigError(f"reward_fn: obs, next_obs and dones must have one row per transition, got "
                              f"{len(obs)}, {len(next_obs)} and {len(dones)}")
        size, fit = self.model.image_size, self.model.frame_fit
        broken = self._broken(obs)
        if len(obs) != len(self.scorer.streams):
            self.scorer.reset(len(obs))
            self._previous_mu = np.zeros(len(obs), np.float32)
        rows = np.flatnonzero(broken)
        if len(rows):  # new streams start at their obs: the episode's first frame
            fresh = _new_streams(self.scorer, len(rows))
            first = _step_some(self.scorer, fresh, model_frames(obs[rows], size, fit, "obs"))
            for row, stream in zip(rows, fresh):
                self.scorer.streams[row] = stream
            self._previous_mu[rows] = first.mu
            self.new_streams += len(rows)
        if len(next_obs) == 0:
            return np.zeros(0, np.float32)
        self.last = self.scorer.step(model_frames(next_obs, size, fit, "next_obs"))
        rewards = combine(self.reward_mode, self.k, self.scale, self.offset, self.last.mu, self.last.sigma,
                           self._previous_mu)
        self._previous_mu = self.last.mu.astype(np.float32)
        self._last_next, self._last_done = next_obs.copy(), dones
        return rewards


def reward_fn(model: RewardModel | str | os.PathLike, reward: str = "progress", k: float = 1.0,
              scale: float = 1.0, offset: float = 0.0, goal: torch.Tensor | None = None) -> LearnedRewardFn:
    """A RewardFn for the `imitation` library, `fn(obs, acts, next_obs, dones) -> (B,) float32`: the learned
    reward of each next_obs, with one stream of context per env (see LearnedRewardFn for when it is exact)."""
    return LearnedRewardFn(model, reward, k, scale, offset, goal)


# ---- relabelling stored episodes ------------------------------------------------------------------------------
def _score_group(scorer: Scorer, episodes: list[np.ndarray], batch_size: int) -> list[Rewards]:
    """Per-episode Rewards, each episode its own stream from its first frame. Short episodes are stepped side by
    side (one forward pass per time step for all of them), long ones scored alone in chunks of batch_size frames,
    whichever takes fewer forward passes; both give `model.score`'s numbers."""
    order = sorted(range(len(episodes)), key=lambda i: -len(episodes[i]))
    out: list[Rewards | None] = [None] * len(episodes)
    for start in range(0, len(order), batch_size):
        group = order[start : start + batch_size]  # longest first: the active episodes are a prefix
        lengths = [len(episodes[i]) for i in group]
        if lengths[0] <= sum(-(-n // batch_size) for n in lengths):
            streams = _new_streams(scorer, len(group))
            mus, sigmas = [np.zeros(n, np.float32) for n in lengths], [np.zeros(n, np.float32) for n in lengths]
            for t in range(lengths[0]):
                active = sum(n > t for n in lengths)
                r = _step_some(scorer, streams[:active], np.stack([episodes[i][t] for i in group[:active]]))
                for j in range(active):
                    mus[j][t], sigmas[j][t] = r.mu[j], r.sigma[j]
            for j, i in enumerate(group):
                out[i] = Rewards(mus[j], sigmas[j])
        else:
            for i in group:
                scorer.reset(1)
                out[i] = scorer.score(episodes[i])
    return out  # type: ignore[return-value]


def _score_episodes(scorer: Scorer, episodes: Iterable[np.ndarray], batch_size: int) -> Iterator[Rewards]:
    """Per-episode Rewards of model-size episodes given lazily, in order, holding about CHUNK_BYTES at once."""
    chunk: list[np.ndarray] = []
    held = 0
    for frames in episodes:
        chunk.append(frames)
        held += frames.nbytes
        if held >= CHUNK_BYTES:
            yield from _score_group(scorer, chunk, batch_size)
            chunk, held = [], 0
    if chunk:
        yield from _score_group(scorer, chunk, batch_size)


def _episode_frames(episode: Any, index: int) -> Any:
    """The frames of one stored episode: an array, a dict with "obs" or "frames", or an object with .obs
    (imitation's Trajectory)."""
    if isinstance(episode, dict):
        for key in ("obs", "frames"):
            if key in episode:
                return episode[key]
        raise ConfigError(f"episode {index}: a dict needs an 'obs' or 'frames' key, got keys {sorted(episode)}")
    return getattr(episode, "obs", episode)


def _per_frame(mode: str, k: float, scale: float, offset: float, r: Rewards) -> np.ndarray:
    previous = np.concatenate([r.mu[:1], r.mu[:-1]])  # shaping: frame 0 is relative to itself
    return combine(mode, k, scale, offset, r.mu, r.sigma, previous)


def relabel_episodes(model: RewardModel | str | os.PathLike, episodes: Iterable[Any], batch_size: int = SCORE_BATCH,
                     reward: str = "progress", k: float = 1.0, scale: float = 1.0, offset: float = 0.0,
                     goal: torch.Tensor | None = None) -> list[np.ndarray]:
    """The learned reward of every frame of stored episodes: a list of (T,) float32, out[t] for frame t, each
    episode read as its own stream from its first frame (the same numbers as `model.score`). An episode is a
    (T, H, W, 3) / (T, 3, H, W) uint8 or [0, 1] float array, a dict with an "obs" or "frames" key, or an imitation
    Trajectory (its obs, first frame included). A transition t -> t+1 gets out[t + 1]: transition rewards are
    out[1:]. batch_size: frames per forward pass. reward, k, scale, offset, goal: as in reward_fn."""
    _check_mode(reward)
    model = _load(model)
    frames = (model_frames(_episode_frames(e, i), model.image_size, model.frame_fit, f"episode {i}")
              for i, e in enumerate(episodes))
    scorer = model.scorer(goal, batch_size)
    return [_per_frame(reward, k, scale, offset, r) for r in _score_episodes(scorer, frames, batch_size)]


def _buffer_episodes(buffer: Any) -> list[tuple[int, np.ndarray, bool]]:
    """(env, buffer rows in time order, whether the frame after the last row is stored) per episode of an SB3
    ReplayBuffer, oldest first. Rows are split after each done."""
    size, pos = buffer.buffer_size, buffer.pos
    optimized = getattr(buffer, "optimize_memory_usage", False)
    if buffer.full:  # oldest row first; with optimize_memory_usage row pos's obs is already the newest next_obs
        order = np.arange(pos + 1, pos + size) % size if optimized else np.arange(pos, pos + size) % size
    else:
        order = np.arange(pos)
    episodes = []
    for env in range(buffer.n_envs):
        done = buffer.dones[order, env] > 0
        for rows in np.split(order, np.flatnonzero(done) + 1):
            if len(rows):  # optimize_memory_usage: a done row's next obs was overwritten by the next reset obs
                episodes.append((env, rows, not optimized or (rows[-1] + 1) % size == pos))
    return episodes


def relabel_replay_buffer(model: RewardModel | str | os.PathLike, buffer: Any, batch_size: int = SCORE_BATCH,
                          reward: str = "progress", k: float = 1.0, scale: float = 1.0, offset: float = 0.0,
                          goal: torch.Tensor | None = None) -> np.ndarray:
    """Write the learned reward of every stored transition of a stable-baselines3 `ReplayBuffer` with image
    observations into `buffer.rewards` (the learned reward of its next_obs); returns a copy of the rewards it
    held before (the env's own). Episodes are found per env from `dones` (SB3 sets them on truncation too) and
    each is read from its first stored frame, so rewards equal `model.score` of the episode's frames, with two
    exceptions SB3's layout forces: once the buffer is `full`, the oldest episode of each env has lost its first
    frames and is read from its oldest stored one; with `optimize_memory_usage` the frame after an episode's
    last step is overwritten by the next reset frame, so that step gets the reward of its obs (the last frame
    stored), and the row SB3 never samples (pos, when full) keeps its reward. reward, k, scale, offset, goal:
    as in reward_fn; shaping starts each episode at 0 relative to its first frame."""
    _check_mode(reward)
    if isinstance(buffer.observations, dict):
        raise ConfigError("relabel_replay_buffer: a DictReplayBuffer has no single image observation; relabel its "
                          "image key's episodes with relabel_episodes")
    model = _load(model)
    optimized = getattr(buffer, "optimize_memory_usage", False)
    obs = buffer.observations
    nxt = obs if optimized else buffer.next_observations
    episodes = _buffer_episodes(buffer)

    def frames() -> Iterator[np.ndarray]:
        for env, rows, has_last in episodes:
            if optimized:
                idx = np.append(rows, (rows[-1] + 1) % buffer.buffer_size) if has_last else rows
                raw = obs[idx, env]
            else:
                raw = np.concatenate([obs[rows[:1], env], nxt[rows, env]])
            yield model_frames(raw, model.image_size, model.frame_fit, f"replay buffer env {env}")

    original = buffer.rewards.copy()
    scorer = model.scorer(goal, batch_size)
    for (env, rows, has_last), r in zip(episodes, _score_episodes(scorer, frames(), batch_size)):
        if not has_last:  # the last frame is lost: its step reads the frame before it again
            r = Rewards(np.append(r.mu, r.mu[-1:]), np.append(r.sigma, r.sigma[-1:]))
        buffer.rewards[rows, env] = _per_frame(reward, k, scale, offset, r)[1:]
    return original
