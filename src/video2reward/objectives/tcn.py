"""Time-contrastive networks (Sermanet et al. 2018), single-view: frames close in time embed close together.

Every frame of a batch is an anchor; its positive is its temporal neighbour (drawn by the frame sampler,
`FrameBatch.neighbour`, at most `neighbour_window` kept frames away). Its negatives are the frames of the
*same* video at least `negative_gap` away in normalised time (these force the embedding to tell moments of
one demonstration apart, which is what a progress reward needs) and every frame of the *other* videos.
Frames of the same video closer than `negative_gap` (other than the positive) are neither: they look much
like the anchor and are left out of the denominator instead of being pushed away.

The original single-view TCN uses a triplet loss; this is its multi-negative InfoNCE form (as in the
n-pairs variant of the paper), with a projection head that is thrown away after pretraining. The
augmentation is light (a few pixels of shift and colour jitter), because where things are *is* the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.objectives.base import Objective, feature_std, to_float
from video2reward.video.augment import random_shift
from video2reward.video.frame_sampler import FrameBatch
from video2reward.video.views import random_color_jitter


@dataclass
class TCNConfig:
    """Hyper-parameters of `TCN`."""

    neighbour_window: int = field(
        default=2,
        metadata={"help": "A frame's positive is a frame of the same video at most this many kept frames away."},
    )
    negative_gap: float = field(
        default=0.15,
        metadata={"help": "Frames of the same video at least this far in normalised time (0..1) are negatives; "
                  "closer ones (other than the positive) are left out of the loss."},
    )
    temperature: float = field(default=0.1, metadata={"help": "Softmax temperature of the InfoNCE loss."})
    proj_hidden: int = field(default=256, metadata={"help": "Hidden width of the projection head."})
    proj_dim: int = field(default=64, metadata={"help": "Output size of the projection head (the loss space)."})
    proj_batchnorm: bool = field(
        default=True,
        metadata={"help": "BatchNorm in the projection head (as in SimCLR): standardising the hidden units over "
                  "the batch magnifies the small differences between frames of one scene, so training "
                  "does not stall with every frame embedded at the same point."},
    )
    shift_fraction: float = field(
        default=1 / 16,
        metadata={"help": "Random shift augmentation: pad by this fraction of the frame side, crop back at a "
                  "random offset (4 px at 64 px). 0 turns it off."},
    )
    jitter_p: float = field(default=0.8, metadata={"help": "Probability of colour jitter per frame."})
    jitter_strength: float = field(
        default=0.3, metadata={"help": "Colour jitter: brightness, contrast and saturation factors in [1-s, 1+s]."}
    )

    def __post_init__(self) -> None:
        if self.neighbour_window < 1:
            raise ValueError(f"TCN: neighbour_window must be >= 1, got {self.neighbour_window}")
        if not 0.0 <= self.negative_gap <= 1.0:
            raise ValueError(f"TCN: negative_gap must be in [0, 1], got {self.negative_gap}")
        if self.temperature <= 0:
            raise ValueError(f"TCN: temperature must be > 0, got {self.temperature}")
        if self.proj_hidden < 1 or self.proj_dim < 1:
            raise ValueError("TCN: proj_hidden and proj_dim must be >= 1")


def tcn_masks(
    video: torch.Tensor, time: torch.Tensor, neighbour: torch.Tensor, negative_gap: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(negatives (N, N) bool, has_positive (N,) bool) for a batch.

    negatives[i, j]: j != i, j is not i's positive, and j is from another video or >= negative_gap away in time.
    has_positive[i]: i has a neighbour other than itself (frames without one are not anchors).
    """
    n = video.shape[0]
    idx = torch.arange(n, device=video.device)
    same_video = video[:, None] == video[None, :]  # (N, N)
    far = (time[:, None] - time[None, :]).abs() >= negative_gap  # (N, N)
    negatives = ~same_video | far
    negatives &= idx[:, None] != idx[None, :]  # never itself
    negatives &= idx[None, :] != neighbour[:, None]  # the positive is not a negative
    return negatives, neighbour != idx


def tcn_loss(
    z: torch.Tensor, video: torch.Tensor, time: torch.Tensor, neighbour: torch.Tensor,
    negative_gap: float, temperature: float,
) -> torch.Tensor:
    """InfoNCE with the positive = the temporal neighbour; `z` (N, D) L2-normalised.

        s_ij = z_i . z_j / tau
        L = mean over anchors i with a neighbour p(i) != i of
            -log( exp(s_ip) / (exp(s_ip) + sum_{j in Neg(i)} exp(s_ij)) )
        Neg(i) = { j != i, p(i) : video_j != video_i  or  |t_j - t_i| >= negative_gap }
    """
    negatives, anchors = tcn_masks(video, time, neighbour, negative_gap)
    if not anchors.any():
        return z.sum() * 0.0  # no frame has a neighbour: nothing to learn, but keep the graph
    sim = z @ z.T / temperature  # (N, N)
    pos = sim.gather(1, neighbour[:, None]).squeeze(1)  # (N,) s_ip
    keep = negatives.clone()
    keep[torch.arange(z.shape[0], device=z.device), neighbour] = True  # the positive is in the denominator
    logits = sim.masked_fill(~keep, float("-inf"))  # (N, N)
    per_anchor = torch.logsumexp(logits, dim=1) - pos  # (N,)
    return per_anchor[anchors].mean()


def fit_to_size(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Resize float frames (B, 3, H, W) to (B, 3, size, size) when they are not that size already."""
    if frames.shape[-2:] == (size, size):
        return frames
    return F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class TCN(Objective):
    """Single-view time-contrastive learning; see the module docstring."""

    def __init__(self, encoder: nn.Module, config: TCNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TCNConfig()
        self.encoder = encoder
        self.neighbour_window = config.neighbour_window  # the sampler must draw temporal neighbours
        self.projector = nn.Sequential(
            nn.Linear(encoder.dim, config.proj_hidden),
            nn.BatchNorm1d(config.proj_hidden) if config.proj_batchnorm else nn.Identity(),
            nn.GELU(),
            nn.Linear(config.proj_hidden, config.proj_dim),
        )

    def augment(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Light augmentation of float frames: a small random shift and colour jitter."""
        pad = int(round(self.config.shift_fraction * frames.shape[-1]))
        x = random_shift(frames, generator, pad)
        if self.config.jitter_p > 0 and self.config.jitter_strength > 0:
            x = random_color_jitter(x, generator, self.config.jitter_p, self.config.jitter_strength)
        return x.clamp(0, 1)

    def make_batch(self, batch: FrameBatch, generator: torch.Generator) -> dict[str, Any]:
        frames = fit_to_size(to_float(batch.frames), self.encoder.config.image_size)
        return {
            "frames": self.augment(frames, generator),  # (N, 3, S, S) float
            "video": batch.video.long(),  # (N,)
            "time": batch.time.float(),  # (N,)
            "neighbour": batch.neighbour.long(),  # (N,)
        }

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        features = self.encoder(batch["frames"])  # (N, D)
        z = F.normalize(self.projector(features), dim=1)  # (N, P)
        neighbour = batch["neighbour"]
        loss = tcn_loss(z, batch["video"], batch["time"], neighbour, self.config.negative_gap,
                        self.config.temperature)
        with torch.no_grad():
            idx = torch.arange(z.shape[0], device=z.device)
            anchors = neighbour != idx
            cos = (z * z[neighbour]).sum(dim=1)  # (N,)
            pos_sim = cos[anchors].mean().item() if anchors.any() else 0.0
            negatives, _ = tcn_masks(batch["video"], batch["time"], neighbour, self.config.negative_gap)
            sims = z @ z.T
            neg_sim = sims[negatives].mean().item() if negatives.any() else 0.0
        metrics = {"loss": loss.item(), "pos_sim": pos_sim, "neg_sim": neg_sim, "std": feature_std(features)}
        return loss, metrics
