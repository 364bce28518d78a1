"""Goal distance (VIP, Ma et al. 2022, "VIP: Towards Universal Visual Reward and Representation via
Value-Implicit Pre-Training"): an embedding phi in which the distance to the goal is a value function,
V(o; g) = -||phi(o) - phi(g)||_2, trained with the value-implicit objective (the paper's final training
objective, in the form its reference code computes it: facebookresearch/vip, vip/trainer.py):

    L(phi) = (1 - gamma) E[-V(o_0; g)] + log E[exp(-(r + gamma V(o_k+1; g) - V(o_k; g)))]

over quadruples (o_0, o_k, o_k+1, g) of one demonstration: a sub-trajectory from o_0 to its last frame g,
a frame o_k of it and the frame after, and r = [o_k == g] - 1 (always -1: k < g). The first term pulls the
start of every sub-trajectory towards its goal, the second makes the distance to the goal fall by about one
step per frame along the demonstration (a contrastive "implicit time" signal).

phi is the encoder followed by a linear map, as in VIP (a ResNet whose last layer is a linear map to the
embedding), so a frozen pretrained encoder still has something to train. The reference code's optional L1/L2
penalties on the embedding default to 0 and its in-batch "negatives" to none; neither is used here.

Reward: the distance d(o) = ||phi(o) - g|| to g, the mean embedding of the demonstrations' last frames,
mapped to roughly [0, 1] by the training videos' range:
    mu = (d_start - d(o)) / (d_start - d_end)
with d_start and d_end the mean distance of the demonstrations' first and last frames: ~0 at a typical
first frame, ~1 at a typical last frame, comparable with progress; unclamped, so a frame further from the
goal than a typical start scores below 0. sigma is one constant: the RMS of mu - t over the training frames
(a distance has no per-frame uncertainty). With a user goal (`--goal`), the same map is applied to the
distance to that goal's embedding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from video2reward.core.options import option
from video2reward.rewards.base import HeadEntry
from video2reward.rewards.clips import VIPBatch, vip_sampler

NORM_EPS = 1e-8  # under the square root of the distance, so its gradient stays finite at distance 0


@dataclass
class GoalDistanceConfig:
    """Options of the goal-distance head (`v2r train --goal-distance-FIELD`)."""

    gamma: float = option(0.98, "discount gamma of the VIP value-implicit objective (the reference code's default)")


def goal_value(phi: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """V(o; g) = -||phi(o) - phi(g)||_2, (B, D) x (B, D) or (D,) -> (B,)."""
    return -((phi - goal).pow(2).sum(dim=-1) + NORM_EPS).sqrt()


def vip_loss(v_start: torch.Tensor, v_current: torch.Tensor, v_next: torch.Tensor, reward: torch.Tensor,
             gamma: float) -> torch.Tensor:
    """The VIP objective from the values (Q,) of o_0, o_k and o_k+1 towards their goals, and r (Q,)."""
    # L = (1 - gamma) E[-V(o_0; g)] + log E[exp(-(r + gamma V(o_k+1; g) - V(o_k; g)))]
    x = -(reward + gamma * v_next - v_current)
    log_mean_exp = torch.logsumexp(x, dim=0) - math.log(x.numel())
    return (1 - gamma) * (-v_start).mean() + log_mean_exp


class GoalDistanceHead(nn.Module):
    """Encoder + linear map = phi; reward = the normalised distance of phi(o) to the mean goal embedding."""

    def __init__(self, encoder: nn.Module, config: GoalDistanceConfig | None = None):
        super().__init__()
        self.config = config or GoalDistanceConfig()
        self.encoder = encoder
        d = encoder.dim
        self.proj = nn.Linear(d, d)
        self.register_buffer("goal", torch.zeros(d))  # mean phi of the demonstrations' final frames
        self.register_buffer("d_start", torch.ones(()))  # mean distance of the demonstrations' first frames
        self.register_buffer("d_end", torch.zeros(()))  # mean distance of their last frames
        self.register_buffer("residual_std", torch.ones(()))

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, D) = phi(frames)."""
        return self.proj(self.encoder(frames))

    def predict(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """phi (B, D) of current frames, optional goal phi (D,) or (B, D) (default: the stored mean goal);
        initial and previous are ignored -> mu (B,), sigma (B,) constant."""
        goal = self.goal if goal is None else goal
        distance = -goal_value(current, goal)  # (B,)
        mu = (self.d_start - distance) / (self.d_start - self.d_end).clamp(min=1e-6)
        return mu, self.residual_std.expand_as(mu)

    def forward(self, batch: VIPBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """batch.frames must already be float in [0, 1] (augmented by the caller)."""
        phi = self.embed(batch.frames)  # (4Q, D)
        goal = phi[batch.goal]  # (Q, D)
        v_start = goal_value(phi[batch.start], goal)
        v_current = goal_value(phi[batch.current], goal)
        v_next = goal_value(phi[batch.next], goal)
        loss = vip_loss(v_start, v_current, v_next, batch.reward, self.config.gamma)
        with torch.no_grad():
            metrics = {
                "loss": loss.item(),
                "v_start": v_start.mean().item(),
                "closer": (v_next > v_current).float().mean().item(),  # o_k+1 nearer the goal than o_k
            }
        return loss, metrics

    def distill_output(self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
                       previous: torch.Tensor | None = None) -> torch.Tensor:
        """What a distilled student matches: the reward mu (squared error)."""
        return self.predict(current, initial, goal)[0]

    @torch.no_grad()
    def set_goal(self, goal_frames: torch.Tensor, batch_size: int = 256) -> None:
        """Store the mean phi of `goal_frames` (G, 3, S, S) float as the default goal."""
        feats = torch.cat([self.embed(chunk) for chunk in goal_frames.split(batch_size)])
        self.goal.copy_(feats.mean(dim=0))

    @torch.no_grad()
    def calibrate(self, videos: Sequence[tuple[torch.Tensor, torch.Tensor]], batch_size: int = 256) -> None:
        """Set the [0, 1] map from demonstration frames: `videos` holds, per demonstration, its frames
        (T, 3, S, S) float in [0, 1], first and last included, and their normalised times (T,). Call after
        set_goal."""
        distances = [-goal_value(torch.cat([self.embed(c) for c in frames.split(batch_size)]), self.goal).cpu()
                     for frames, _ in videos]
        self.d_start.fill_(float(torch.stack([d[0] for d in distances]).mean()))
        self.d_end.fill_(float(torch.stack([d[-1] for d in distances]).mean()))
        span = (self.d_start - self.d_end).clamp(min=1e-6).cpu()
        mu = (self.d_start.cpu() - torch.cat(distances)) / span
        t = torch.cat([times.cpu().float() for _, times in videos])
        self.residual_std.fill_(float((mu - t).pow(2).mean().sqrt().clamp(min=1e-3)))


ENTRY = HeadEntry("goal-distance", GoalDistanceHead, GoalDistanceConfig, vip_sampler, negatives=False,
                  distill="value", summary="VIP: distance to the goal in an embedding trained with the "
                                           "value-implicit objective",
                  reward_range=None,  # (d_start - d) / (d_start - d_end): below 0 further than a start, unclamped
                  reward_meaning="distance to the goal mapped to progress, 0 = a typical start, 1 = a typical end")
