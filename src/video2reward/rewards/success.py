"""Success detector: the probability that a frame shows the task done.

Labels come from the videos alone: a demonstration's frames in its last `success_fraction` of normalised
time are positives; its earlier frames and every frame of a failed video (`--negatives`) are negatives.
The loss is the binary cross-entropy with the positives weighted by N_neg / N_pos of the batch, so the rare
positives count as much as the negatives.

At scoring, `predict_success` gives the probability p for every frame (RewardModel fills
`Rewards.success_prob` with it, the RL wrapper's success bonus reads it), and the head's reward is the same
p, with sigma = sqrt(p (1 - p)), the std of a Bernoulli(p) outcome.
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
class SuccessConfig:
    """Options of the success head (`v2r train --success-FIELD`)."""

    hidden: int = option(256, "width of the MLP on a frame's features")
    success_fraction: float = option(0.1, "a demonstration's frames in this last fraction of its time are the "
                                     "positives (the task done); earlier ones and failed videos are negatives",
                                     flag="fraction")


def success_labels(time: torch.Tensor, failed: torch.Tensor, success_fraction: float) -> torch.Tensor:
    """(N,) float: 1 for demonstration frames at normalised time >= 1 - success_fraction, else 0."""
    return ((time >= 1.0 - success_fraction) & ~failed).float()


def weighted_bce(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary cross-entropy with the positives weighted by N_neg / N_pos (1 without positives or negatives);
    returns (loss, pos_weight)."""
    n_pos = labels.sum()
    n_neg = labels.numel() - n_pos
    pos_weight = n_neg / n_pos if n_pos > 0 and n_neg > 0 else torch.ones(())
    # L = -mean[w y log sigmoid(l) + (1 - y) log(1 - sigmoid(l))],  w = N_neg / N_pos
    loss = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight.to(logits))
    return loss, pos_weight


class SuccessHead(nn.Module):
    """Encoder + MLP: a frame's features -> the logit of P(task done)."""

    def __init__(self, encoder: nn.Module, config: SuccessConfig | None = None):
        super().__init__()
        self.config = config or SuccessConfig()
        self.encoder = encoder
        d, h = encoder.dim, self.config.hidden
        self.mlp = nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Linear(h, h), nn.GELU(), nn.Linear(h, 1))

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, D)."""
        return self.encoder(frames)

    def predict_success(
        self, current: torch.Tensor, initial: torch.Tensor | None = None, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, D) features of the current frames -> (B,) success probability (the other inputs are ignored)."""
        return torch.sigmoid(self.mlp(current).squeeze(-1))

    def predict(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """mu (B,) = the success probability p, sigma (B,) = sqrt(p (1 - p)) (Bernoulli std)."""
        p = self.predict_success(current)
        return p, (p * (1 - p)).sqrt() + SIGMA_FLOOR

    def distill_output(self, current: torch.Tensor, initial: torch.Tensor | None = None,
                       goal: torch.Tensor | None = None, previous: torch.Tensor | None = None) -> torch.Tensor:
        """What a distilled student matches: the success logit."""
        return self.mlp(current).squeeze(-1)

    def forward(self, batch: ClipBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """batch.frames must already be float in [0, 1] (augmented by the caller)."""
        logits = self.mlp(self.embed(batch.frames)).squeeze(-1)  # (N,)
        labels = success_labels(batch.time, batch.failed, self.config.success_fraction)
        loss, pos_weight = weighted_bce(logits, labels)
        with torch.no_grad():
            correct = (logits > 0).float() == labels
            pos, neg = labels > 0, labels == 0
            metrics = {
                "loss": loss.item(),
                "pos_acc": correct[pos].float().mean().item() if pos.any() else 0.0,
                "neg_acc": correct[neg].float().mean().item() if neg.any() else 0.0,
                "pos_weight": float(pos_weight),
            }
        return loss, metrics


ENTRY = HeadEntry("success", SuccessHead, SuccessConfig, clip_sampler, negatives=True, distill="logit",
                  summary="a detector of the task done (the last --success-fraction of each "
                          "demonstration); reward = its probability, also written as success_prob",
                  reward_meaning="probability that the frame shows the task done")
