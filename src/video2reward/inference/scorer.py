"""The streaming scorer: the one place that turns frames, in order, into rewards.

A reward model's head reads each frame in its context: the episode's first frame (progress is measured from
it), the goal, and, depending on the head, the frame `motion_gap` frames earlier (its motion partner) or the
K-1 frames before it (a temporal head's window). `Scorer` keeps that context per stream, so frames can come
one at a time (an RL env step), in batches (a decoded video chunk), or one frame for each of N parallel
streams (a vector env), and every way gives the same reward per frame:

    scorer = Scorer(model)                       # or model.scorer()
    rewards = scorer.score(frames)               # (T, S, S, 3) uint8, frames of one stream, in order
    scorer.reset(n_streams=4)
    rewards = scorer.step(frames)                # (4, S, S, 3): the next frame of each stream

Frames must already be at the model's size (`video/` maps files and renders to such frames). The rule for
which earlier frames a reward reads is `earlier_frames` (rewards/base.py, beside the heads that read them); frames before the first one are the first
frame (a video is taken to have been still before it started).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn as nn

from video2reward.rewards.base import earlier_frames

# Frames per forward pass. Smaller batches stay in cache; the speed bench (bench/speed.py) measures the effect.
SCORE_BATCH = 64


@dataclass
class Rewards:
    """Per-frame output of a reward model: mu is the reward; sigma its predicted std."""

    mu: np.ndarray  # (T,)
    sigma: np.ndarray  # (T,)
    success_prob: np.ndarray | None = None  # (T,) when the model has a success detector
    fps: float | None = None
    epistemic: np.ndarray | None = None  # (T,) for an ensemble: the std of its members' rewards

    def __len__(self) -> int:
        return len(self.mu)

    @classmethod
    def join(cls, parts: list["Rewards"], fps: float | None = None, success: bool = False,
             epistemic: bool = False) -> "Rewards":
        """Parts of one stream, in order, as one Rewards (empty arrays where there are no parts)."""
        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts]) if parts else np.zeros(0, np.float32)

        return cls(cat("mu"), cat("sigma"), cat("success_prob") if success else None, fps,
                   cat("epistemic") if epistemic else None)


def frames_to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [0, 1] on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


class Scorable(Protocol):
    """What the scorer reads of a model (a RewardModel, inference/model.py, is one)."""

    head: nn.Module
    device: torch.device
    motion_gap: int  # frames back to the motion partner (0: none)
    context: int  # K frames a temporal head reads (1: none)
    has_success: bool  # the head has predict_success
    has_epistemic: bool  # the head has predict_with_epistemic (an ensemble)

    def embed(self, frames: torch.Tensor) -> torch.Tensor: ...  # (B, 3, S, S) float -> (B, D), under autocast


@dataclass
class _Stream:
    """One stream's context: its first frame's features, the features of its last few frames, how many frames
    it has seen, and (for `refresh`) the model frames those features came from."""

    initial: torch.Tensor | None = None  # (D,)
    history: torch.Tensor | None = None  # (P, D): frames seen - P .. seen - 1, P <= the frames a reward reads back
    seen: int = 0
    first_frame: np.ndarray | None = None  # (S, S, 3), only with keep_frames
    recent: deque = field(default_factory=deque)  # model frames seen - P - 1 .. seen - 1, only with keep_frames


class Scorer:
    """Rewards of `model` for frames taken in order, for one or N streams (see the module docstring).

    goal: goal features (`RewardModel.goal_from_image`); None reads the model's stored goal.
    keep_frames: keep each stream's first frame and last few frames, so that `refresh()` can re-read them after
        the model's weights changed in place (online refinement).
    """

    def __init__(self, model: Scorable, goal: torch.Tensor | None = None, batch_size: int = SCORE_BATCH,
                 keep_frames: bool = False):
        self.model, self.batch_size, self.keep_frames = model, int(batch_size), keep_frames
        self.goal = None if goal is None else goal.to(model.device)
        self.gap, self.context = model.motion_gap, model.context
        self.back = max(self.gap, self.context - 1)  # how many earlier frames a reward reads
        self.has_success = model.has_success
        self.has_epistemic = model.has_epistemic
        self.reset()

    def reset(self, n_streams: int = 1) -> None:
        """Start `n_streams` new streams (episodes, videos): no frame seen yet."""
        self.streams = [self._new_stream() for _ in range(n_streams)]
        self.features: torch.Tensor | None = None  # (N, D) float: the features of the frames of the last call

    def reset_stream(self, i: int) -> None:
        """Start stream i anew (one env of a vector env began an episode); the other streams go on."""
        self.streams[i] = self._new_stream()

    def _new_stream(self) -> _Stream:
        return _Stream(recent=deque(maxlen=self.back + 1))

    # ---- the context rule, applied to a stream -----------------------------------------------------
    def _context(self, stream: _Stream, z: torch.Tensor) -> torch.Tensor | None:
        """The `previous` input of the head for B consecutive new frames of `stream` with features z (B, D):
        (B, D) motion partners, (B, K-1, D) windows, or None; updates the stream's history."""
        if stream.initial is None:
            stream.initial = z[0]
        src = earlier_frames(stream.seen + torch.arange(len(z), device=z.device), self.gap, self.context)
        previous = None
        if src is not None:
            past = z[:0] if stream.history is None else stream.history
            full = torch.cat([past, z])  # (P + B, D): frames seen - P .. seen + B - 1
            idx = (src - (stream.seen - len(past))).clamp(min=0)
            before_start = (src < 0)[..., None]  # frames before the first one are the first frame
            previous = torch.where(before_start, stream.initial, full[idx])
            stream.history = full[-self.back:]  # memory stays flat: only the frames a reward reads back
        stream.seen += len(z)
        return previous

    @torch.inference_mode()
    def _read(self, z: torch.Tensor, initial: torch.Tensor, previous: torch.Tensor | None) -> Rewards:
        """The head's outputs for features z (B, D) with their initial features and `previous`, as numpy."""
        head = self.model.head
        epistemic = None
        if self.has_epistemic:
            mu, sigma, epistemic = head.predict_with_epistemic(z, initial, self.goal, previous)
            epistemic = epistemic.float().cpu().numpy()
        else:
            mu, sigma = head.predict(z, initial, self.goal, previous)
        prob = None
        if self.has_success:
            prob = head.predict_success(z, initial, self.goal, previous).float().cpu().numpy()
        return Rewards(mu.float().cpu().numpy(), sigma.float().cpu().numpy(), prob, None, epistemic)

    def _remember(self, stream: _Stream, frames: np.ndarray) -> None:
        if self.keep_frames:
            if stream.first_frame is None:
                stream.first_frame = frames[0].copy()
            stream.recent.extend(f.copy() for f in frames[-(self.back + 1):])

    # ---- frames in -------------------------------------------------------------------------------------
    @torch.inference_mode()
    def score(self, frames: np.ndarray, features: torch.Tensor | None = None) -> Rewards:
        """The next frames (T, S, S, 3) uint8 of stream 0, in order -> one reward per frame. Calls continue the
        stream (feed a long video chunk by chunk); `reset()` starts a new one. `features` (T, D): the frames'
        features when already computed (`model.embed_frames`, e.g. on other threads: inference/parallel.py)."""
        if features is not None and len(features) != len(frames):
            raise ValueError(f"{len(frames)} frames but features of {len(features)}")
        return self._score(self.streams[0], frames, features)

    def _score(self, stream: _Stream, frames: np.ndarray, features: torch.Tensor | None) -> Rewards:
        parts, seen = [], []
        for start in range(0, len(frames), self.batch_size):
            batch = frames[start : start + self.batch_size]
            if features is None:
                z = self.model.embed(frames_to_tensor(batch, self.model.device))  # (B, D)
            else:
                z = features[start : start + self.batch_size]  # (B, D)
            previous = self._context(stream, z)
            parts.append(self._read(z, stream.initial, previous))
            self._remember(stream, batch)
            seen.append(z)
        self.features = torch.cat(seen).float() if seen else None
        return Rewards.join(parts, success=self.has_success, epistemic=self.has_epistemic)

    @torch.inference_mode()
    def step(self, frames: np.ndarray, which: list[int] | np.ndarray | None = None) -> Rewards:
        """The next frame of every stream, (N, S, S, 3) uint8 -> one reward per stream. `which`: the indices of
        the streams these frames belong to (one frame each; default: all streams, in order)."""
        streams = self.streams if which is None else [self.streams[int(i)] for i in which]
        if len(frames) != len(streams):
            raise ValueError(f"step takes one frame per stream: {len(streams)} streams, got {len(frames)}")
        if len(frames) == 1:  # one stream: the same path as score
            return self._score(streams[0], frames, None)
        z = self.model.embed(frames_to_tensor(frames, self.model.device))  # (N, D)
        self.features = z.float()
        previous = [self._context(s, z[i : i + 1]) for i, s in enumerate(streams)]
        initial = torch.stack([s.initial for s in streams])  # (N, D)
        for i, s in enumerate(streams):
            self._remember(s, frames[i : i + 1])
        return self._read(z, initial, None if previous[0] is None else torch.cat(previous))

    @torch.inference_mode()
    def refresh(self) -> Rewards:
        """Re-read every stream's kept frames with the model's current weights (after they changed in place):
        later rewards are then what a new scorer gives, as if each stream had been scored by the new weights
        from its start. Returns, per stream, the reward of its latest frame under the new weights. Needs
        keep_frames=True. (A `goal` given to the scorer holds features of the old weights: it is not
        recomputed; the model's stored goal is the refiner's to update.)"""
        if not self.keep_frames:
            raise ValueError("refresh() needs a Scorer made with keep_frames=True")
        parts = []
        for stream in self.streams:
            if stream.first_frame is None:
                parts.append(Rewards(np.zeros(0, np.float32), np.zeros(0, np.float32)))
                continue
            z = self.model.embed(frames_to_tensor(np.stack([stream.first_frame, *stream.recent]), self.model.device))
            stream.initial, recent = z[0], z[1:]  # recent: the latest frames, the current one last
            before = recent[:-1][-self.back:] if self.back > 0 else recent[:0]
            stream.history = before if len(before) else None
            stream.seen -= 1  # the latest frame is read again, in the context of the frames before it
            previous = self._context(stream, recent[-1:])
            parts.append(self._read(recent[-1:], stream.initial, previous))
        return Rewards.join(parts, success=self.has_success, epistemic=self.has_epistemic)
