"""Temporal distance (TimeRewarder, 2025): from two frames of one video, predict how far apart in time they
are, as a categorical distribution over the signed normalised gap d = (t_j - t_i) / (T - 1) in [-1, 1].

The gap is cut into `bins` equal-width bins with centres c_k = -1 + 2k / (bins - 1); a pair's label is the
bin of its true gap, and the loss is the cross-entropy. Pairs are every ordered pair (i, j), i != j, of the
frames of one clip (both directions, so the model must tell earlier from later).

Reward at scoring time: the expected gap from the scored video's first frame to frame t,
mu_t = sum_k p_k c_k with p = the predicted distribution for (frame 0, frame t), so like progress it is ~0 at
the first frame and ~1 at the end of a demonstration and VOC reads it the same way; sigma_t is the std of
that distribution, sqrt(sum_k p_k (c_k - mu_t)^2). (TimeRewarder's per-step reward, the predicted gap of
consecutive frames, is the difference mu_t - mu_{t-1}: the RL wrapper's "shaping" mode.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.core.options import option
from video2reward.rewards.base import HeadEntry
from video2reward.rewards.clips import ClipBatch, clip_sampler

SIGMA_FLOOR = 1e-3


@dataclass
class TemporalDistanceConfig:
    """Options of the temporal-distance head (`v2r train --temporal-distance-FIELD`)."""

    hidden: int = option(256, "width of the MLP on the (frame i, frame j) features")
    bins: int = option(21, "bins of the signed normalised time gap on [-1, 1]")


def bin_centres(bins: int) -> torch.Tensor:
    """(bins,) equally spaced centres on [-1, 1]."""
    return torch.linspace(-1.0, 1.0, bins)


def gap_to_bin(gap: torch.Tensor, bins: int) -> torch.Tensor:
    """(P,) gaps in [-1, 1] -> (P,) long index of the nearest bin centre."""
    return torch.round((gap.clamp(-1, 1) + 1) / 2 * (bins - 1)).long()


def clip_pairs(batch: ClipBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every ordered pair (i, j), i != j, of frames of one clip: (P,) i, (P,) j, (P,) gap t_j - t_i."""
    same = batch.video[:, None] == batch.video[None, :]
    same &= ~torch.eye(len(batch.video), dtype=torch.bool, device=same.device)
    i, j = same.nonzero(as_tuple=True)
    return i, j, batch.time[j] - batch.time[i]


class TemporalDistanceHead(nn.Module):
    """Encoder + MLP: features of (frame i, frame j) -> logits over the bins of the gap t_j - t_i."""

    def __init__(self, encoder: nn.Module, config: TemporalDistanceConfig | None = None):
        super().__init__()
        self.config = config or TemporalDistanceConfig()
        self.encoder = encoder
        d, h = encoder.dim, self.config.hidden
        self.mlp = nn.Sequential(nn.Linear(3 * d, h), nn.GELU(), nn.Linear(h, h), nn.GELU(),
                                 nn.Linear(h, self.config.bins))
        self.register_buffer("centres", bin_centres(self.config.bins), persistent=False)

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, D)."""
        return self.encoder(frames)

    def logits(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """(P, D) features of frames i and j -> (P, bins) logits of the gap t_j - t_i."""
        return self.mlp(torch.cat([first, second, second - first], dim=-1))

    def predict(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, D) of current frames and (B, D) or (D,) of the initial frame (goal and previous are
        ignored) -> mu (B,) the expected gap from the initial frame, sigma (B,) its std."""
        p = self.logits(initial.expand_as(current), current).softmax(dim=-1)  # (B, bins)
        mu = p @ self.centres  # mu = sum_k p_k c_k
        var = p @ self.centres.pow(2) - mu.pow(2)  # sum_k p_k c_k^2 - mu^2
        return mu, var.clamp(min=0).sqrt() + SIGMA_FLOOR

    def distill_output(self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
                       previous: torch.Tensor | None = None) -> torch.Tensor:
        """What a distilled student matches: the time-gap logits (B, bins) from the initial to the current frame."""
        return self.logits(initial, current)

    def forward(self, batch: ClipBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """batch.frames must already be float in [0, 1] (augmented by the caller)."""
        z = self.embed(batch.frames)  # (N, D): each frame encoded once, shared by every pair using it
        i, j, gap = clip_pairs(batch)
        logits = self.logits(z[i], z[j])  # (P, bins)
        target = gap_to_bin(gap, self.config.bins)
        loss = F.cross_entropy(logits, target)  # L = -log p(bin(d_ij) | o_i, o_j), d_ij = t_j - t_i
        with torch.no_grad():
            expected = logits.softmax(dim=-1) @ self.centres
            metrics = {
                "loss": loss.item(),
                "bin_acc": (logits.argmax(dim=-1) == target).float().mean().item(),
                "mae": (expected - gap).abs().mean().item(),
            }
        return loss, metrics


ENTRY = HeadEntry("temporal-distance", TemporalDistanceHead, TemporalDistanceConfig, clip_sampler,
                  negatives=False, distill="bins", summary="TimeRewarder: the time gap between two frames as a "
                                                           "distribution over bins; reward = the gap from the first frame",
                  reward_range=(-1.0, 1.0),
                  reward_meaning="expected time from the first frame, as a fraction of a demonstration (1 = task done)")
