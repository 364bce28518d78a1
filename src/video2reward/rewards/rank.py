"""Ranking reward (Rank2Reward, Yang et al. 2024): a per-frame score s(o), trained so that later frames of a
demonstration outrank earlier ones, and failed frames rank below the late part of the demonstrations.

Bradley-Terry: P(o_j ranks above o_i) = sigmoid(s(o_j) - s(o_i)). Every pair (i, j) of frames of one clip with
t_i < t_j contributes -log sigmoid(s_j - s_i); with `--negatives`, every pair (failed frame n, expert frame e
with normalised time >= `late_fraction`) contributes -log sigmoid(s_e - s_n), weighted by `negative_weight`; a
synthetic near miss's failed frame (training/synthetic_negatives.py) ranks below the expert frames later than the
demonstration moment it copies.

The score has no scale of its own (only differences are trained), so the reward is a *calibrated* sigmoid:
mu = sigmoid(a * s + b), with (a, b) fitted after training by logistic regression of the training frames'
normalised time on their score (Platt scaling with soft labels t in [0, 1]), so mu reads like progress: ~0 at
a demonstration's first frame, ~1 at its last. (Rank2Reward itself uses log sigmoid(s) as the reward.) The
map is monotone, so it never changes the order of the frames (VOC). sigma is one constant: the RMS of
mu - t over those frames (a ranking model has no per-frame uncertainty).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.core.options import option
from video2reward.rewards.base import HeadEntry
from video2reward.rewards.clips import ClipBatch, clip_sampler


@dataclass
class RankConfig:
    """Options of the rank head (`v2r train --rank-FIELD`)."""

    hidden: int = option(256, "width of the MLP on a frame's features")
    late_fraction: float = option(0.5, "with --negatives: demonstration frames at normalised time >= this are "
                                  "ranked above every failed frame")
    negative_weight: float = option(1.0, "weight of the failed-frame pairs in the loss")


def bradley_terry_loss(scores: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Mean of -log sigmoid(s_j - s_i) over the (i, j) where pairs[i, j] is True (j should rank above i).
    scores (N,), pairs (N, N) bool -> scalar (0 when there is no pair)."""
    diff = scores[None, :] - scores[:, None]  # (N, N): [i, j] = s_j - s_i
    loss = F.softplus(-diff)  # -log sigmoid(s_j - s_i) = log(1 + exp(-(s_j - s_i)))
    return loss[pairs].mean() if pairs.any() else scores.sum() * 0.0


def rank_pairs(batch: ClipBatch, late_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, N) bool masks [i, j]: expert frames of one clip with t_i < t_j, and failed i vs late expert j."""
    same = batch.video[:, None] == batch.video[None, :]
    expert = ~batch.failed
    ordered = same & (batch.time[:, None] < batch.time[None, :]) & expert[:, None] & expert[None, :]
    # a failed frame ranks below the demonstration frames later than its ceiling: the moment of the demonstration
    # it copies (a synthetic near miss), else late_fraction (a real failed video)
    ceiling = batch.ceiling if batch.ceiling.numel() else torch.full_like(batch.time, -1.0)
    ceiling = torch.where(ceiling < 0, torch.full_like(ceiling, late_fraction - 1e-6), ceiling)  # t >= late_fraction
    above = expert[None, :] & (batch.time[None, :] > ceiling[:, None])
    negative = batch.failed[:, None] & above
    return ordered, negative


def platt_fit(scores: torch.Tensor, targets: torch.Tensor, iterations: int = 100) -> tuple[float, float]:
    """(a, b) minimising the binary cross-entropy of sigmoid(a * s + b) against soft targets in [0, 1]
    (damped Newton's method on the two parameters, with a small ridge so a constant score cannot diverge)."""
    x = torch.stack([scores.double(), torch.ones_like(scores, dtype=torch.float64)], dim=1)  # (N, 2)
    y = targets.double()
    ridge = 1e-6

    def objective(w: torch.Tensor) -> torch.Tensor:
        logits = x @ w
        return F.binary_cross_entropy_with_logits(logits, y, reduction="sum") + 0.5 * ridge * w.dot(w)

    w = torch.zeros(2, dtype=torch.float64)
    value = objective(w)
    for _ in range(iterations):
        p = torch.sigmoid(x @ w)
        grad = x.T @ (p - y) + ridge * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + ridge * torch.eye(2, dtype=torch.float64)
        step = torch.linalg.solve(hess, grad)
        for _ in range(30):  # halve the step until the objective does not rise
            candidate = w - step
            new_value = objective(candidate)
            if new_value <= value:
                break
            step = step / 2
        else:
            break
        w, converged = candidate, bool(value - new_value < 1e-12 * max(1.0, float(value)))
        value = new_value
        if converged:
            break
    return float(w[0]), float(w[1])


class RankHead(nn.Module):
    """Encoder + MLP: a frame's features -> a scalar score; reward = sigmoid(a * score + b)."""

    def __init__(self, encoder: nn.Module, config: RankConfig | None = None):
        super().__init__()
        self.config = config or RankConfig()
        self.encoder = encoder
        d, h = encoder.dim, self.config.hidden
        self.mlp = nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Linear(h, h), nn.GELU(), nn.Linear(h, 1))
        self.register_buffer("scale", torch.ones(()))  # Platt scaling a
        self.register_buffer("shift", torch.zeros(()))  # Platt scaling b
        self.register_buffer("residual_std", torch.ones(()))  # sigma: RMS of mu - t on the training frames

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, D)."""
        return self.encoder(frames)

    def score(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) features -> (B,) uncalibrated ranking scores s(o)."""
        return self.mlp(z).squeeze(-1)

    def predict(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reads the current frame alone (initial, goal and previous are accepted and ignored)
        -> mu (B,) = sigmoid(a * s + b), sigma (B,) constant."""
        mu = torch.sigmoid(self.scale * self.score(current) + self.shift)
        return mu, self.residual_std.expand_as(mu)

    def forward(self, batch: ClipBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """batch.frames must already be float in [0, 1] (augmented by the caller)."""
        s = self.score(self.embed(batch.frames))  # (N,)
        ordered, negative = rank_pairs(batch, self.config.late_fraction)
        rank_loss = bradley_terry_loss(s, ordered)  # L = -log sigmoid(s_j - s_i), t_i < t_j
        loss = rank_loss
        metrics = {"rank_loss": rank_loss.item()}
        if negative.any():
            neg_loss = bradley_terry_loss(s, negative)  # failed frame i below late expert frame j
            loss = loss + self.config.negative_weight * neg_loss
            metrics["negative_loss"] = neg_loss.item()
        with torch.no_grad():
            diff = s[None, :] - s[:, None]
            metrics["pair_accuracy"] = (diff[ordered] > 0).float().mean().item() if ordered.any() else 0.0
        return loss, {"loss": loss.item(), **metrics}

    def distill_output(self, current: torch.Tensor, initial: torch.Tensor | None = None,
                       goal: torch.Tensor | None = None, previous: torch.Tensor | None = None) -> torch.Tensor:
        """What a distilled student matches: the calibrated logit a * s + b (the reward is its sigmoid)."""
        return self.scale * self.score(current) + self.shift

    @torch.no_grad()
    def calibrate(self, videos: Sequence[tuple[torch.Tensor, torch.Tensor]], batch_size: int = 256) -> None:
        """Fit the Platt scaling on demonstration frames: `videos` holds, per demonstration, its frames
        (T, 3, S, S) float in [0, 1] and their normalised times (T,)."""
        scores = [torch.cat([self.score(self.embed(c)) for c in frames.split(batch_size)]).cpu()
                  for frames, _ in videos]
        s = torch.cat(scores)
        t = torch.cat([times.cpu().float() for _, times in videos])
        a, b = platt_fit(s, t)
        self.scale.fill_(a)
        self.shift.fill_(b)
        mu = torch.sigmoid(a * s + b)
        self.residual_std.fill_(float((mu - t).pow(2).mean().sqrt().clamp(min=1e-3)))


ENTRY = HeadEntry("rank", RankHead, RankConfig, clip_sampler, negatives=True, distill="logit",
                  summary="Rank2Reward: later frames outrank earlier ones (Bradley-Terry), calibrated to [0, 1]")
