"""Goal-conditioned progress (Video2Reward / PROGRESSOR): from the features of an initial, a current and a
goal frame, predict a Normal(mu, sigma) over how far the current frame is between the two, and train it
with the KL divergence to a target Normal(p, sigma_t) whose std shrinks as the frame gap grows.

At scoring time the initial frame is the scored video's first frame and the goal is the mean embedding
of the demonstrations' final frames (or an image the user gives), so the reward of frame t is mu_t.

Failed videos (`--negatives`) get PROGRESSOR's push-back (Ayalew et al. 2024, "adversarial online refinement
via push-back", applied there online to the agent's own rollouts, here offline to failed videos): a triplet
(failed video's first frame, one of its frames, a demonstration's last frame) has as target the model's own
prediction with its mean scaled down by `pushback` (beta < 1), taken as a constant:
KL(N(beta * mu', sigma') || N(mu, sigma)) with (mu', sigma') = stop_gradient(mu, sigma). Every step pulls the
failed frames' progress down by a factor beta (and widens their sigma a little); the demonstrations hold their
own frames up. Failed frames unlike any demonstration frame go towards 0; failed frames that look like a
demonstration's early part settle lower together with that part (tests/rewards/test_progress.py checks both);
`negative_weight` sets the balance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.core.options import option
from video2reward.rewards.base import BatchPlan, HeadEntry
from video2reward.rewards.triplets import (
    FailedTripletSampler,
    TripletBatch,
    TripletSampler,
)

SIGMA_FLOOR = 1e-3  # the predicted std never reaches 0, so the KL stays finite


@dataclass
class ProgressConfig:
    """Options of the progress head (`v2r train --progress-FIELD`)."""

    hidden: int = option(256, "width of the MLP on the (initial, current, goal) features")
    sigma_min: float = option(0.02, "floor of the target progress std; the target std is max(sigma_min, "
                              "0.5 / (t_goal - t_initial)), so it shrinks as the frame gap grows")
    motion_gap: int = option(4, "the head also sees z(t) - z(t - gap), the change of the current frame's features "
                             "since this many frames earlier (frame 0 for the first frames), so a frame is read "
                             "with its motion, not only its pose; 0 = single frames")
    pushback: float = option(0.9, "with --negatives: a failed frame's target is its predicted progress times "
                             "this (PROGRESSOR's push-back factor beta < 1)")
    negative_weight: float = option(1.0, "weight of the failed frames' push-back term in the loss")


def normal_kl(mu_p: torch.Tensor, sigma_p: torch.Tensor, mu_q: torch.Tensor, sigma_q: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_p, sigma_p) || N(mu_q, sigma_q)), elementwise."""
    # KL = log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2
    return torch.log(sigma_q / sigma_p) + (sigma_p**2 + (mu_p - mu_q) ** 2) / (2 * sigma_q**2) - 0.5


def target_sigma(gap: torch.Tensor, sigma_min: float) -> torch.Tensor:
    """Target std of the progress label: half a frame step of the (initial, goal) span, at least sigma_min."""
    return torch.clamp(0.5 / gap.clamp(min=1.0), min=sigma_min)


class ProgressHead(nn.Module):
    """Encoder + MLP: features of (initial, current, goal) -> Normal over the current frame's progress."""

    def __init__(self, encoder: nn.Module, config: ProgressConfig | None = None):
        super().__init__()
        self.config = config or ProgressConfig()
        self.encoder = encoder
        d, h = encoder.dim, self.config.hidden
        n_in = (6 if self.config.motion_gap > 0 else 5) * d
        self.mlp = nn.Sequential(nn.Linear(n_in, h), nn.GELU(), nn.Linear(h, h), nn.GELU(), nn.Linear(h, 2))
        self.register_buffer("goal", torch.zeros(d))  # mean embedding of the demonstrations' final frames

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, D)."""
        return self.encoder(frames)

    def predict(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, D) of current frames, (B, D) or (D,) of the initial frame, (B, D) or (D,) of the goal
        (default: the stored goal embedding), and with a motion gap (B, D) of the frames `motion_gap`
        earlier (default: no motion) -> mu (B,), sigma (B,)."""
        goal = self.goal if goal is None else goal
        initial = initial.expand_as(current)
        goal = goal.expand_as(current)
        parts = [initial, current, goal, current - initial, goal - current]
        if self.config.motion_gap > 0:
            parts.append(current - (current if previous is None else previous))  # motion: z_t - z_{t-gap}
        out = self.mlp(torch.cat(parts, dim=-1))  # (B, 2)
        mu = torch.sigmoid(out[:, 0])
        sigma = F.softplus(out[:, 1]) + SIGMA_FLOOR
        return mu, sigma

    def forward(self, batch: TripletBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """batch.frames must already be float in [0, 1] (augmented by the caller)."""
        z = self.embed(batch.frames)  # (N, D): each frame encoded once, shared by every triplet using it
        mu, sigma = self.predict(z[batch.current], z[batch.initial], z[batch.goal], z[batch.previous])  # (K,)
        sigma_t = target_sigma(batch.gap, self.config.sigma_min)
        if not batch.failed.any():  # demonstrations only
            loss = normal_kl(batch.progress, sigma_t, mu, sigma).mean()
            with torch.no_grad():
                metrics = {
                    "loss": loss.item(),
                    "mae": (mu - batch.progress).abs().mean().item(),
                    "sigma": sigma.mean().item(),
                }
            return loss, metrics
        expert, failed = ~batch.failed, batch.failed
        expert_loss = normal_kl(batch.progress[expert], sigma_t[expert], mu[expert], sigma[expert]).mean()
        mu_f, sigma_f = mu[failed], sigma[failed]
        # push-back: KL(N(beta * sg(mu), sg(sigma)) || N(mu, sigma)) on failed frames
        push = normal_kl(self.config.pushback * mu_f.detach(), sigma_f.detach(), mu_f, sigma_f).mean()
        loss = expert_loss + self.config.negative_weight * push
        with torch.no_grad():
            metrics = {
                "loss": loss.item(),
                "mae": (mu[expert] - batch.progress[expert]).abs().mean().item(),
                "sigma": sigma[expert].mean().item(),
                "pushback": push.item(),
                "failed_mu": mu_f.mean().item(),
            }
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


def sampler(options: ProgressConfig, plan: BatchPlan, demos: Sequence, negatives: Sequence
            ) -> TripletSampler | FailedTripletSampler:
    """(initial, current, goal) triplets of the demonstrations, with each frame's motion partner; failed videos'
    triplets appended to every batch for the push-back term."""
    per_video = plan.frames_per_video * (2 if options.motion_gap > 0 else 1)  # motion partners are encoded too
    triplets = TripletSampler(list(demos), frames_per_video=plan.frames_per_video,
                              videos_per_batch=max(1, plan.batch_size // per_video),
                              triplets_per_video=plan.items_per_video, motion_gap=options.motion_gap)
    if negatives:
        return FailedTripletSampler(triplets, list(negatives), videos_per_batch=plan.negative_videos)
    return triplets


ENTRY = HeadEntry("progress", ProgressHead, ProgressConfig, sampler, negatives=True, distill="normal",
                  summary="Video2Reward goal-conditioned progress: a Normal over how far the frame is from the "
                          "first frame to the goal, trained with KL")

