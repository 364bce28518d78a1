"""Online refinement of the learned reward during RL (`v2r rl --refine`): PROGRESSOR's push-back on the
frames the agent itself visits (Ayalew et al. 2024, "adversarial online refinement").

Why: a progress model is only trained on demonstration frames. Off them (a pose no video showed, the
wrong object moved, the arm knocked over) its mu is whatever the network happens to extrapolate, and an
agent maximising the reward finds such states if they pay. Refinement shows the model the agent's own
frames as negatives, so a state keeps a high reward only if it looks like the demonstrations' late part.

    LearnedReward (renders + scores every step; its model frame)  ->  AgentFrames  ->  AgentFrameBuffer
        (the latest episodes, at most `capacity` frames in all, each frame with its episode and step)
    every refine_every env steps (a SB3 callback in agents.py):  RewardRefiner.refine(refine_steps)
        each step: demonstration triplets (TripletSampler, exactly as `v2r train`: KL to normalised time)
                 + agent triplets (an episode's first frame, one of its later frames, a demonstration's
                   last frame as goal), whose target is the model's own prediction pushed down by beta
                   (ProgressHead.forward's `failed` triplets, as `--negatives` are trained offline)
        then the goal embedding is recomputed (the encoder moved) and LearnedReward.refresh() re-embeds the
        running episode's cached frames, so every reward after a refinement comes from the new weights.

The model's head is updated in place: the training env, the evaluation env and the saved OUT/reward_model
share the one RewardModel object. The optimizer (AdamW at a constant `lr`, gradients clipped to norm 1)
lives here, outside the model, and keeps its state between refinements. A frozen pretrained encoder
(`v2r train --freeze`) stays frozen. A progress+rank model (`v2r train`'s default head) refines its progress
member; the rank member reads single frames, has no push-back, and stays as trained. beta and the push-back
weight are the model's own `pushback` and `negative_weight` (set at `v2r train`; defaults 0.9 and 1).

Non-stationarity (what refinement costs the agent): the reward of a state now changes during training.
- The replay buffer holds rewards computed with older weights and is never relabelled (it keeps
  observations, not frames); DQN's 10k-transition buffer turns over in 10k steps. Keep refine_lr small and
  refine_steps few, so the reward drifts slowly compared with that turnover.
- The push-back is adversarial by design: the states the agent visits most lose reward, so a policy that
  exploited a flaw is pushed elsewhere; frames that really look like late demonstration frames are held up
  by the demonstration term. The agent's true successes are pushed too (the model is never told about
  them: success comes from the env only in evaluation), so their reward rests on their resemblance to
  the demonstrations; with many refinements (a large refine_steps * steps / refine_every) the whole
  reward can sink. Compare refined runs with plain runs on true success, never on learned return.
- Evaluation rows (eval.csv) score with the weights of their time: learned_return is not comparable
  across refinements; success_rate and env_return are.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

from video2reward.errors import ConfigError
from video2reward.inference.card import provenance
from video2reward.inference.model import RewardModel
from video2reward.rewards.ensemble import COMBINED_HEADS
from video2reward.rewards.triplets import FailedTripletSampler, TripletSampler
from video2reward.training.config import TrainConfig
from video2reward.training.loop import TrainingError
from video2reward.video.augment import FrameAugment
from video2reward.video.dataset import Demonstration, load_demonstrations

REFINE_HEADS = ("progress", "progress+rank")  # heads with a progress head, whose loss knows push-back triplets


@dataclass
class AgentEpisode:
    episode: int  # index of the episode among those the agent played (0 = the first)
    frames: list[np.ndarray] = field(default_factory=list)  # (S, S, 3) uint8 model frames, reset frame first
    steps: list[int] = field(default_factory=list)  # step of each kept frame (0 = the reset frame)
    finished: Demonstration | None = None  # once the episode ended: its frames as one tensor (`frames` freed)

    def __len__(self) -> int:
        return len(self.steps)

    def demonstration(self) -> Demonstration:
        """As a Demonstration whose times are the steps, so motion partners are frame t - gap."""
        if self.finished is not None:
            return self.finished
        frames = torch.from_numpy(np.stack(self.frames)).permute(0, 3, 1, 2).contiguous()
        return Demonstration(f"agent-episode-{self.episode}", frames, torch.tensor(self.steps).float(),
                             self.steps[-1] + 1)


class AgentFrameBuffer:
    """The frames of the agent's latest episodes, at most `capacity` frames in all (oldest episodes are
    dropped first; an episode longer than `capacity` keeps every 2nd, then every 4th, ... frame, always
    with its reset frame). Memory: capacity * S * S * 3 bytes (2000 frames at 64 px: 25 MB)."""

    def __init__(self, capacity: int):
        if capacity < 2:
            raise ConfigError(f"--refine-buffer {capacity}: keep at least 2 frames")
        self.capacity = capacity
        self.episodes: deque[AgentEpisode] = deque()
        self.seen = 0  # frames offered since the start, kept or not
        self._kept = 0  # frames kept now
        self._stride = 1
        self._step = 0

    def __len__(self) -> int:
        return self._kept

    def start_episode(self, frame: np.ndarray) -> None:
        index = self.episodes[-1].episode + 1 if self.episodes else 0
        if self.episodes and len(self.episodes[-1]) < 2:  # a 1-frame episode teaches nothing
            self._kept -= len(self.episodes.pop())
        elif self.episodes:  # the last episode ended: one tensor from now on
            last = self.episodes[-1]
            last.finished, last.frames = last.demonstration(), []
        self.episodes.append(AgentEpisode(index))
        self._stride, self._step = 1, -1
        self.add(frame)

    def add(self, frame: np.ndarray) -> None:
        if not self.episodes:
            raise RuntimeError("AgentFrameBuffer.add before start_episode")
        self._step += 1
        self.seen += 1
        if self._step % self._stride:
            return
        current = self.episodes[-1]
        current.frames.append(np.array(frame, dtype=np.uint8, copy=True))
        current.steps.append(self._step)
        self._kept += 1
        while self._kept > self.capacity and len(self.episodes) > 1:
            self._kept -= len(self.episodes.popleft())
        if len(current.frames) > self.capacity:  # one endless episode: thin it, keeping the reset frame
            current.frames, current.steps = current.frames[::2], current.steps[::2]
            self._kept = len(current.frames)
            self._stride *= 2

    def demonstrations(self) -> list[Demonstration]:
        """Every kept episode with 2 or more frames, as Demonstrations (the running one included)."""
        return [e.demonstration() for e in self.episodes if len(e) >= 2]


class AgentFrames(gym.Wrapper):
    """Records into `buffer` the model frame a LearnedReward computed on every reset and step (no extra
    rendering or resizing: the frame the reward was scored on)."""

    def __init__(self, env: gym.Env, learned, buffer: AgentFrameBuffer):
        super().__init__(env)
        self.learned, self.buffer = learned, buffer

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        self.buffer.start_episode(self.learned.frame)
        return out

    def step(self, action):
        out = self.env.step(action)
        self.buffer.add(self.learned.frame)
        return out


def check_refinable(model: RewardModel) -> None:
    head = model.config.get("head")
    if head not in REFINE_HEADS:
        raise ConfigError(
            f"--refine: the reward model has a {head!r} head; online refinement (push-back of the agent's "
            f"frames) supports the {' and '.join(REFINE_HEADS)} heads only: train one with `v2r train` (default "
            f"head) or `v2r train --head progress`"
        )


def progress_head(model: RewardModel) -> nn.Module:
    """The head that refinement trains: the model's progress head, or a progress+rank model's progress member
    (the rank member is kept as trained: it reads single frames and has no push-back; the reward, the mean of
    the two, moves half as far per refinement as a progress model's)."""
    check_refinable(model)
    kind = model.config.get("head")
    return model.head.members[COMBINED_HEADS[kind].index("progress")] if kind in COMBINED_HEADS else model.head


def refinement_videos(model: RewardModel, videos: str | os.PathLike | None = None,
                      progress: bool = False) -> list[Demonstration]:
    """The demonstrations that hold the expert ordering during refinement: `videos` (a folder or file), else
    the model's own training videos as recorded in its config (paths as given to `v2r train`)."""
    training = model.config.get("training") or {}
    if videos:
        paths = [Path(videos)]
        if not paths[0].exists():
            raise ConfigError(f"--refine-videos {videos}: no such file or folder")
    else:
        recorded = training.get("videos") or []
        paths = [Path(v) for v in recorded if Path(v).exists()]
        if not paths:
            where = (f"none of its {len(recorded)} training videos (e.g. {recorded[0]}) exists here"
                     if recorded else "the model does not record its training videos")
            raise ConfigError(f"--refine needs demonstration videos to keep the expert ordering, and {where}: "
                              f"pass --refine-videos DIR")
    max_frames = int((training.get("config") or {}).get("max_frames_per_video", TrainConfig.max_frames_per_video))
    demos, _ = load_demonstrations(paths, model.image_size, max_frames, progress=progress, fit=model.frame_fit)
    return demos


class RewardRefiner:
    """Owns the optimizer of online refinement; `refine(steps)` updates `model.head` in place.

    demos: demonstrations at the model's frame size (see refinement_videos). buffer: the agent's frames.
    agent_videos: agent episodes drawn per step (each gives as many triplets as a demonstration).
    Batch shapes and augmentation follow the model's training config (v2r train's defaults if absent)."""

    def __init__(self, model: RewardModel, demos: Sequence[Demonstration], buffer: AgentFrameBuffer,
                 lr: float = 1e-4, agent_videos: int = 2, seed: int = 0):
        self.model, self.head, self.buffer = model, progress_head(model), buffer
        train = {**vars(TrainConfig()), **((model.config.get("training") or {}).get("config") or {})}
        per_video = train["frames_per_video"] * (2 if model.motion_gap > 0 else 1)
        self.expert = TripletSampler(list(demos), frames_per_video=train["frames_per_video"],
                                     videos_per_batch=max(1, train["batch_size"] // per_video),
                                     triplets_per_video=train["triplets_per_video"], motion_gap=model.motion_gap)
        self.agent_videos = agent_videos
        frozen = bool((model.config.get("encoder") or {}).get("frozen"))
        params = [p for name, p in self.head.named_parameters()
                  if p.requires_grad and not (frozen and name.startswith("encoder."))]
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=float(train["weight_decay"]))
        self.generator = torch.Generator().manual_seed(seed)
        self.augment = FrameAugment() if train["augment"] else None
        self.goal_frames = torch.stack([d.frames[-1] for d in self.expert.demos])  # (V, 3, S, S) uint8
        self.refinements = 0
        self.gradient_steps = 0

    def _batch(self, sampler: FailedTripletSampler):
        batch = sampler.sample(self.generator)
        frames = batch.frames.float().div_(255.0)
        batch.frames = self.augment(frames, self.generator) if self.augment is not None else frames
        return batch.to(self.model.device)

    def refine(self, steps: int) -> dict[str, Any] | None:
        """`steps` gradient steps of push-back on the buffer's frames with the demonstrations held; then the
        stored goal embedding is recomputed. Returns the step-averaged metrics (loss, expert_mae: |mu - t|
        on demonstration triplets, agent_mu: mean mu of the agent's frames before each step, pushback: its
        KL term) and agent_mu_before (the first step's), or None while the buffer has no episode of 2+ frames."""
        agent = self.buffer.demonstrations()
        if not agent or steps <= 0:
            return None
        sampler = FailedTripletSampler(self.expert, agent, videos_per_batch=self.agent_videos)
        t0 = time.perf_counter()
        totals: dict[str, float] = {}
        first_agent_mu = None
        self.head.train()
        try:
            for _ in range(steps):
                loss, metrics = self.head(self._batch(sampler))
                if not torch.isfinite(loss):
                    raise TrainingError(f"reward refinement: the loss became {loss.item()}; try a lower --refine-lr")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], 1.0)
                self.optimizer.step()
                first_agent_mu = metrics["failed_mu"] if first_agent_mu is None else first_agent_mu
                for k, v in metrics.items():
                    totals[k] = totals.get(k, 0.0) + v
        finally:
            self.head.eval()
        self.head.set_goal(self.goal_frames.float().div(255.0).to(self.model.device))
        self.refinements += 1
        self.gradient_steps += steps
        out = {k: v / steps for k, v in totals.items()}
        return {"loss": out["loss"], "expert_mae": out["mae"], "agent_mu": out["failed_mu"],
                "agent_mu_before": first_agent_mu, "pushback": out["pushback"],
                "agent_frames": len(self.buffer), "agent_episodes": len(agent),
                "seconds": time.perf_counter() - t0}

    def summary(self) -> dict[str, Any]:
        """What the saved model's config records about its refinement (its model card shows it)."""
        return {"refinements": self.refinements, "gradient_steps": self.gradient_steps,
                "lr": self.optimizer.param_groups[0]["lr"], "agent_frames_seen": self.buffer.seen,
                "buffer": self.buffer.capacity, "demonstrations": len(self.expert.demos),
                **provenance("video2reward.rl.agents.train_agent", verb="refined")}
