"""Rotation prediction (Gidaris et al. 2018): rotate each frame by k * 90 degrees, predict k from the features.

To tell which way is up the encoder has to find the objects in a frame and how they are oriented; a
linear classifier on the encoder's features (thrown away after pretraining) predicts k in {0, 1, 2, 3}
with cross-entropy. k is drawn per frame from the generator; each of the four groups is turned with one
`torch.rot90` call. Frames must be square (the frame sampler's are). A light shift and colour jitter
comes before the rotation so the classifier cannot key on exact pixel values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.objectives.base import Objective, feature_std, to_float
from video2reward.objectives.tcn import fit_to_size
from video2reward.video.augment import random_shift
from video2reward.video.frame_sampler import FrameBatch
from video2reward.video.views import random_color_jitter

NUM_ROTATIONS = 4


@dataclass
class RotationConfig:
    """Hyper-parameters of `Rotation`."""

    shift_fraction: float = field(
        default=1 / 16,
        metadata={"help": "Random shift before rotating: pad by this fraction of the frame side and crop back "
                  "at a random offset. 0 turns it off."},
    )
    jitter_p: float = field(default=0.8, metadata={"help": "Probability of colour jitter per frame."})
    jitter_strength: float = field(
        default=0.3, metadata={"help": "Colour jitter: brightness, contrast and saturation factors in [1-s, 1+s]."}
    )
    label_smoothing: float = field(default=0.0, metadata={"help": "Label smoothing of the cross-entropy."})

    def __post_init__(self) -> None:
        if self.shift_fraction < 0 or not 0 <= self.jitter_p <= 1 or self.jitter_strength < 0:
            raise ValueError("Rotation: shift_fraction and jitter_strength must be >= 0, jitter_p in [0, 1]")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"Rotation: label_smoothing must be in [0, 1), got {self.label_smoothing}")


def rotate_batch(frames: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Frame i turned by k[i] quarter turns counter-clockwise (torch.rot90 over (H, W)); (B, C, S, S)."""
    if frames.shape[-1] != frames.shape[-2]:
        raise ValueError(f"rotation needs square frames, got {tuple(frames.shape[-2:])}")
    out = frames.clone()
    for r in range(1, NUM_ROTATIONS):
        group = k == r
        if group.any():
            out[group] = torch.rot90(frames[group], r, dims=(2, 3))
    return out


class Rotation(Objective):
    """Predict each frame's rotation (0, 90, 180, 270 degrees) with a linear head on the encoder."""

    def __init__(self, encoder: nn.Module, config: RotationConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or RotationConfig()
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.dim, NUM_ROTATIONS)

    def make_batch(self, batch: FrameBatch, generator: torch.Generator) -> dict[str, Any]:
        x = fit_to_size(to_float(batch.frames), self.encoder.config.image_size)  # (N, 3, S, S)
        pad = int(round(self.config.shift_fraction * x.shape[-1]))
        x = random_shift(x, generator, pad)
        if self.config.jitter_p > 0 and self.config.jitter_strength > 0:
            x = random_color_jitter(x, generator, self.config.jitter_p, self.config.jitter_strength)
        k = torch.randint(NUM_ROTATIONS, (x.shape[0],), generator=generator, device=x.device)
        return {"frames": rotate_batch(x.clamp(0, 1), k), "labels": k}

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        features = self.encoder(batch["frames"])  # (N, D)
        logits = self.classifier(features)  # (N, 4)
        labels = batch["labels"]
        loss = F.cross_entropy(logits, labels, label_smoothing=self.config.label_smoothing)
        with torch.no_grad():
            acc = (logits.argmax(dim=1) == labels).float().mean().item()
        return loss, {"loss": loss.item(), "acc": acc, "std": feature_std(features)}
