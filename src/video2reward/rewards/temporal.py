"""Temporal progress: the progress head's goal-conditioned Normal over progress, read from the last K frames
instead of one (`v2r train --head temporal --context K --sequence stack|transformer|ssm`).

A single frame cannot tell a swing-up early from late: the pendulum passes the same pose on every swing, and
what grows is the motion (the swing's amplitude, its speed at the bottom). This head embeds every frame once
with the encoder, then a small causal sequence model (rewards/sequence_layers.py) reads the window of the
current frame and its K-1 predecessors and adds a summary of the motion to the progress head's inputs:

    s_t = Seq(W z_{t-K+1}, ..., W z_t)                                  (B, d)  W: a linear token projection
    (mu_t, sigma_t) = MLP([z_0, z_t, g, z_t - z_0, g - z_t, s_t])        as ProgressHead, plus s_t

with z_0 the initial frame, g the goal embedding, and frames before the initial one replaced by it (a video is
taken to have been still before it started), so the first K-1 frames get a reward too. Training is the
progress head's: target p = (t_c - t_i) / (t_g - t_i), loss KL(N(p, sigma_target) || N(mu, sigma)), and
PROGRESSOR's push-back on failed videos; windows come from video/window_sampling.py (random offsets, random
playback speeds).

Causal and streaming: `predict(current, initial, goal, previous)` takes `previous` (B, K-1, D), the features of
the K-1 frames before each current frame (oldest first), so the reward at t depends on frames <= t only, and
RewardModel.score (chunks) and the RL wrapper (step by step) give the same rewards from a rolling context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.core.options import option
from video2reward.errors import ConfigError
from video2reward.rewards.base import BatchPlan, HeadEntry
from video2reward.rewards.progress import SIGMA_FLOOR, normal_kl, target_sigma
from video2reward.rewards.sequence_layers import SEQUENCES, build_sequence
from video2reward.rewards.windows import WindowBatch, WindowSampler


@dataclass
class TemporalConfig:
    """Options of the temporal head (`v2r train --temporal-FIELD`)."""

    context: int = option(8, "K: frames the head reads per reward, the current one and its K-1 predecessors "
                          "(frames before a video's first are its first frame, so every frame gets a reward); the "
                          "reward at frame t uses frames t-K+1 .. t only")
    sequence: str = option("stack", "the causal sequence model over the window: 'stack' (the K embeddings side by "
                           "side into an MLP: DQN's frame stack), 'transformer' (causal self-attention), 'ssm' (a "
                           "diagonal selective state-space layer, S4/Mamba-style) or 'infini' (Infini-attention: "
                           "local attention per segment plus a compressive memory of earlier segments, for long K)",
                           choices=("stack", "transformer", "ssm", "infini"))
    width: int = option(64, "token width d of the sequence model")
    layers: int = option(2, "transformer blocks / SSM layers (the frame stack has one MLP)")
    heads: int = option(4, "attention heads (transformer)")
    state: int = option(16, "state size N per channel (ssm)")
    segment: int = option(16, "tokens per segment (infini): local attention inside one, the memory across them")
    hidden: int = option(256, "width of the progress MLP")
    sigma_min: float = option(0.02, "floor of the target progress std (as --progress-sigma-min)")
    pushback: float = option(0.9, "with --negatives: a failed window's target is its predicted progress times this "
                             "(PROGRESSOR's push-back factor beta < 1)")
    negative_weight: float = option(1.0, "weight of the failed windows' push-back term in the loss")
    speed_min: float = option(0.5, "training windows are played at a speed drawn log-uniformly from "
                              "[speed_min, speed_max] (frame-skip augmentation: 2 = every second frame), so a "
                              "slower or faster demonstrator is not punished")
    speed_max: float = option(2.0, "the fastest training playback speed (see --temporal-speed-min)")


class TemporalProgressHead(nn.Module):
    """Encoder + causal sequence model over K frames + MLP -> Normal over the current frame's progress."""

    def __init__(self, encoder: nn.Module, config: TemporalConfig | None = None):
        super().__init__()
        self.config = config or TemporalConfig()
        c = self.config
        if c.sequence not in SEQUENCES:
            raise ConfigError(f"--temporal-sequence {c.sequence}: choose one of {', '.join(SEQUENCES)}")
        if c.context < 2:
            raise ConfigError(f"--temporal-context {c.context}: the temporal head needs at least 2 frames "
                              f"(1 frame is --head progress)")
        self.encoder = encoder
        d = encoder.dim
        self.tokens = nn.Sequential(nn.Linear(d, c.width), nn.LayerNorm(c.width))
        self.sequence = build_sequence(c.sequence, c.width, c.context, c.layers, c.heads, c.state, c.segment)
        self.mlp = nn.Sequential(nn.Linear(5 * d + c.width, c.hidden), nn.GELU(), nn.Linear(c.hidden, c.hidden),
                                 nn.GELU(), nn.Linear(c.hidden, 2))
        self.register_buffer("goal", torch.zeros(d))  # mean embedding of the demonstrations' final frames

    @property
    def context(self) -> int:
        return self.config.context

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, D)."""
        return self.encoder(frames)

    def predict_windows(self, windows: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of windows (B, K, D), oldest first, the current frame last; (B, D) or (D,) of the initial
        frame; (B, D) or (D,) of the goal (default: the stored one) -> mu (B,), sigma (B,)."""
        current = windows[:, -1]  # (B, D)
        goal = (self.goal if goal is None else goal).expand_as(current)
        initial = initial.expand_as(current)
        summary = self.sequence(self.tokens(windows))  # (B, d): s_t = Seq(W z_{t-K+1}, ..., W z_t)
        parts = [initial, current, goal, current - initial, goal - current, summary]
        out = self.mlp(torch.cat(parts, dim=-1))  # (B, 2)
        return torch.sigmoid(out[:, 0]), F.softplus(out[:, 1]) + SIGMA_FLOOR

    def predict(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The common head interface: features (B, D) of current frames, the initial frame and goal as in
        `predict_windows`, and `previous` (B, K-1, D) the features of each frame's K-1 predecessors, oldest
        first (frames before the video's first: its features); None: the video was still before t (every
        predecessor is the initial frame) -> mu (B,), sigma (B,)."""
        k = self.config.context
        if previous is None:
            previous = initial.expand(current.shape[0], k - 1, current.shape[-1])
        if previous.shape[-2] != k - 1:
            raise ValueError(f"previous must hold the {k - 1} frames before each frame, "
                             f"got shape {tuple(previous.shape)}")
        return self.predict_windows(torch.cat([previous, current[:, None]], dim=1), initial, goal)  # (B, K, D)

    def forward(self, batch: WindowBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """batch.frames must already be float in [0, 1] (augmented by the caller)."""
        z = self.embed(batch.frames)  # (N, D): every frame encoded once, shared by all windows that hold it
        mu, sigma = self.predict_windows(z[batch.window], z[batch.initial], z[batch.goal])  # (W,) each
        sigma_t = target_sigma(batch.gap, self.config.sigma_min)
        expert = ~batch.failed
        # KL(N(p, sigma_target) || N(mu, sigma)) on the demonstrations' windows, p = (t_c - t_i) / (t_g - t_i)
        loss = normal_kl(batch.progress[expert], sigma_t[expert], mu[expert], sigma[expert]).mean()
        metrics = {}
        if batch.failed.any():
            mu_f, sigma_f = mu[batch.failed], sigma[batch.failed]
            # push-back: KL(N(beta * sg(mu), sg(sigma)) || N(mu, sigma)) on failed windows
            push = normal_kl(self.config.pushback * mu_f.detach(), sigma_f.detach(), mu_f, sigma_f).mean()
            loss = loss + self.config.negative_weight * push
            metrics = {"pushback": push.item(), "failed_mu": mu_f.mean().item()}
        with torch.no_grad():
            metrics = {"loss": loss.item(), "mae": (mu[expert] - batch.progress[expert]).abs().mean().item(),
                       "sigma": sigma[expert].mean().item(), **metrics}
        return loss, metrics

    def distill_output(self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
                       previous: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """What a distilled student matches: the Normal (mu, sigma) over progress."""
        return self.predict(current, initial, goal, previous)

    @torch.no_grad()
    def set_goal(self, goal_frames: torch.Tensor, batch_size: int = 256) -> None:
        """Store the mean embedding of `goal_frames` (G, 3, S, S) float as the default goal."""
        feats = torch.cat([self.embed(chunk) for chunk in goal_frames.split(batch_size)])
        self.goal.copy_(feats.mean(dim=0))


def sampler(options: TemporalConfig, plan: BatchPlan, demos: Sequence, negatives: Sequence) -> WindowSampler:
    """Windows of `context` frames: per video two clips of frames_per_video / 2 consecutive windows (each clip's
    frames encoded once), as many videos as fit in batch_size frames, plus failed videos' windows."""
    if not 0 < options.speed_min <= options.speed_max:
        raise ConfigError(f"--temporal-speed-min {options.speed_min} / --temporal-speed-max {options.speed_max}: "
                          f"need 0 < min <= max")
    windows = WindowSampler(list(demos), list(negatives), context=options.context, clips_per_video=2,
                            windows_per_clip=max(1, plan.frames_per_video // 2),
                            negative_videos_per_batch=plan.negative_videos, speed_min=options.speed_min,
                            speed_max=options.speed_max)
    windows.videos_per_batch = max(1, plan.batch_size // windows.frames_per_video)
    return windows


ENTRY = HeadEntry("temporal", TemporalProgressHead, TemporalConfig, sampler, negatives=True, distill="normal",
                  summary="progress read from the last --temporal-context frames by a causal sequence model: sees "
                          "motion, not only pose")
