"""Goal-conditioned progress (Video2Reward / PROGRESSOR): from the features of an initial, a current and a
goal frame, predict a Normal(mu, sigma) over how far the current frame is between the two, and train it
with the KL divergence to a target Normal(p, sigma_t) whose std shrinks as the frame gap grows.

At scoring time the initial frame is the scored video's first frame and the goal is the mean embedding
of the demonstrations' final frames (or an image the user gives), so the reward of frame t is mu_t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.video.sampling import TripletBatch

SIGMA_FLOOR = 1e-3  # the predicted std never reaches 0, so the KL stays finite


@dataclass
class ProgressConfig:
    hidden: int = 256  # width of the MLP on the (initial, current, goal) features
    sigma_min: float = 0.02  # floor of the target std
    motion_gap: int = 0  # > 0: the head also sees z(t) - z(t - gap), the motion of the current frame


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
        loss = normal_kl(batch.progress, sigma_t, mu, sigma).mean()
        with torch.no_grad():
            metrics = {
                "loss": loss.item(),
                "mae": (mu - batch.progress).abs().mean().item(),
                "sigma": sigma.mean().item(),
            }
        return loss, metrics

    @torch.no_grad()
    def set_goal(self, goal_frames: torch.Tensor, batch_size: int = 256) -> None:
        """Store the mean embedding of `goal_frames` (G, 3, S, S) float as the default goal."""
        feats = torch.cat([self.embed(chunk) for chunk in goal_frames.split(batch_size)])
        self.goal.copy_(feats.mean(dim=0))

