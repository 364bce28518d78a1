"""DINO: self-distillation with no labels (Caron et al. 2021, "Emerging Properties in Self-Supervised
Vision Transformers").

A student network (encoder + projection head) learns to match the output distribution of a teacher, a
momentum (EMA) copy of itself, across views of the same frame:

    P_s(x) = softmax(g_s(x) / tau_s)                       student, every crop (2 global + n_local local)
    P_t(x) = softmax((g_t(x) - c) / tau_t)                 teacher, the 2 global crops only, no gradient
    loss   = mean over pairs (i in global, v in all crops, v != i) of  H(P_t(x_i), P_s(x_v))
             with H(a, b) = -sum_k a_k log b_k
    theta_t <- m theta_t + (1 - m) theta_s                 after every step, m: 0.996 -> 1 on a cosine
    c <- m_c c + (1 - m_c) mean_batch g_t(x)               after every step (centering)

Nothing but the teacher's two tricks keeps the outputs from collapsing: centering (subtracting c) stops
one prototype from dominating but pushes towards the uniform distribution; sharpening (tau_t < tau_s)
pushes the other way. The head is a 3-layer MLP (no batch norm, GELU) to an L2-normalised bottleneck,
then a weight-normalised linear layer onto K prototypes whose norm g is fixed to 1.

Metrics: `teacher_entropy` (mean entropy of the teacher's P_t: 0 when it puts everything on one prototype,
log K when uniform), `teacher_batch_entropy` (entropy of P_t averaged over the batch: 0 when one prototype
takes the whole batch), `std` (mean per-dimension std of the L2-normalised student features of the global
crops across the batch: 0 when the encoder has collapsed). Healthy: teacher_entropy well below
teacher_batch_entropy. Early in training both sit near log K (the teacher's outputs barely differ between
frames while the center catches up); on small synthetic videos a few hundred CPU steps do not leave that phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.errors import ConfigError
from video2reward.objectives.base import Objective, feature_std, to_float
from video2reward.objectives.momentum import cosine_momentum, ema_update, frozen_copy
from video2reward.video.frame_sampler import FrameBatch
from video2reward.video.views import MultiCrop

MIN_LOCAL_SIZE = 16  # the CNN encoder's smallest input


@dataclass
class DINOConfig:
    """Hyper-parameters of `DINO`; every field is JSON-able (tuples come back as lists)."""

    out_dim: int = field(default=1024, metadata={"help": "Number K of prototypes (head output size; 65536 in "
                                                          "the paper, small here for the CPU)."})
    hidden_dim: int = field(default=512, metadata={"help": "Width of the head's hidden layers."})
    bottleneck_dim: int = field(default=128, metadata={"help": "Width of the L2-normalised bottleneck before "
                                                                "the prototype layer."})
    head_layers: int = field(default=3, metadata={"help": "Linear layers of the head's MLP (before the "
                                                           "prototype layer)."})
    norm_last_layer: bool = field(default=True, metadata={"help": "Fix the norm g of the weight-normalised "
                                                                   "prototype layer to 1 (more stable)."})
    student_temp: float = field(default=0.1, metadata={"help": "Student softmax temperature tau_s."})
    teacher_temp: float = field(default=0.04, metadata={"help": "Teacher softmax temperature tau_t (after "
                                                                 "the warm-up); < student_temp sharpens."})
    warmup_teacher_temp: float = field(default=0.04, metadata={"help": "Teacher temperature at step 0; it "
                                                                        "rises linearly to teacher_temp."})
    teacher_temp_warmup: float = field(default=0.0, metadata={"help": "Fraction of training over which the "
                                                                       "teacher temperature warms up (0: none)."})
    center_momentum: float = field(default=0.9, metadata={"help": "EMA momentum of the center c (1: the "
                                                                   "center stays 0, i.e. no centering)."})
    momentum_start: float = field(default=0.996, metadata={"help": "Teacher EMA momentum at step 0; rises to "
                                                                    "momentum_end on a cosine."})
    momentum_end: float = field(default=1.0, metadata={"help": "Teacher EMA momentum at the last step."})
    n_local: int = field(default=4, metadata={"help": "Local (small) crops per frame, besides the 2 global."})
    local_size: int = field(default=0, metadata={"help": "Side of local crops in pixels; 0: half the image "
                                                          "size (rounded down to a multiple of a ViT's patch)."})
    global_scale: tuple[float, float] = field(default=(0.4, 1.0), metadata={"help": "Area range of the global "
                                                                                      "crops (fraction)."})
    local_scale: tuple[float, float] = field(default=(0.1, 0.4), metadata={"help": "Area range of the local "
                                                                                     "crops (fraction)."})
    flip: bool = field(default=False, metadata={"help": "Random horizontal flips (off: a mirrored task video "
                                                         "can show another task)."})

    def __post_init__(self) -> None:
        self.global_scale = tuple(float(s) for s in self.global_scale)
        self.local_scale = tuple(float(s) for s in self.local_scale)
        if min(self.out_dim, self.hidden_dim, self.bottleneck_dim, self.head_layers) < 1:
            raise ConfigError("DINO: out_dim, hidden_dim, bottleneck_dim and head_layers must be >= 1")
        if min(self.student_temp, self.teacher_temp, self.warmup_teacher_temp) <= 0:
            raise ConfigError("DINO: temperatures must be > 0")
        if not 0.0 <= self.center_momentum <= 1.0 or not 0.0 <= self.momentum_start <= 1.0:
            raise ConfigError("DINO: center_momentum and momentum_start must be in [0, 1]")
        if self.n_local < 0 or self.local_size < 0 or self.teacher_temp_warmup < 0:
            raise ConfigError("DINO: n_local, local_size and teacher_temp_warmup must be >= 0")


class DINOHead(nn.Module):
    """(B, in_dim) -> (B, K): MLP (GELU, no batch norm) -> L2-normalise -> weight-normalised linear (no bias)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 512, bottleneck_dim: int = 128,
                 layers: int = 3, norm_last_layer: bool = True) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (layers - 1) + [bottleneck_dim]
        mlp: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            mlp.append(nn.Linear(a, b))
            if i < layers - 1:
                mlp.append(nn.GELU())
        self.mlp = nn.Sequential(*mlp)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        # Weight norm by hand: W = g * V / ||V|| row-wise (one row per prototype); V keeps nn.Linear's init.
        self.last_v = nn.Parameter(nn.Linear(bottleneck_dim, out_dim, bias=False).weight.detach().clone())
        self.last_g = nn.Parameter(torch.ones(out_dim, 1), requires_grad=not norm_last_layer)

    def prototypes(self) -> torch.Tensor:
        """The prototype matrix W (K, bottleneck) = g * V / ||V||."""
        return self.last_g * F.normalize(self.last_v, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.mlp(x), dim=-1)  # (B, bottleneck), unit norm
        return z @ self.prototypes().t()  # (B, K)


def dino_loss(student: list[torch.Tensor], teacher_probs: list[torch.Tensor]) -> torch.Tensor:
    """Mean over pairs (i, v), v != i, of the batch-mean cross-entropy H(teacher_probs[i], softmax(student[v])).
    `student`: logits already divided by the student temperature; the teacher views are student views 0.."""
    total, terms = 0.0, 0
    for i, q in enumerate(teacher_probs):
        for v, s in enumerate(student):
            if v == i:
                continue
            total = total + torch.sum(-q * F.log_softmax(s, dim=-1), dim=-1).mean()
            terms += 1
    return total / max(terms, 1)


def default_local_size(image_size: int, patch_size: int | None = None) -> int:
    """Half the image size, rounded down to a multiple of the patch size (ViT), at least 16 px (CNN) or one
    patch, and never more than the image size."""
    size = image_size // 2
    if patch_size:
        size = max(patch_size, size // patch_size * patch_size)
    else:
        size = max(size, min(MIN_LOCAL_SIZE, image_size))
    return size


class DINO(Objective):
    """DINO self-distillation on single frames: `objective.encoder` is the student's backbone."""

    def __init__(self, encoder: nn.Module, config: DINOConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DINOConfig()
        self.encoder = encoder
        self.head = DINOHead(encoder.dim, config.out_dim, config.hidden_dim, config.bottleneck_dim,
                             config.head_layers, config.norm_last_layer)
        self.teacher_encoder = frozen_copy(encoder)
        self.teacher_head = frozen_copy(self.head)
        self.register_buffer("center", torch.zeros(1, config.out_dim))
        self.register_buffer("progress", torch.zeros(()))  # fraction of training done (teacher temp warm-up)
        image_size = int(encoder.config.image_size)
        patch = getattr(encoder, "patch_size", None)
        local_size = config.local_size or default_local_size(image_size, patch)
        if patch and local_size % patch:
            raise ConfigError(f"DINO: local_size {local_size} must be a multiple of the ViT patch size {patch}")
        self.crops = MultiCrop(image_size, local_size, config.n_local, config.global_scale, config.local_scale,
                               config.flip)
        self._batch_center: torch.Tensor | None = None  # teacher output mean of the last training forward
        self.teacher_encoder.eval()
        self.teacher_head.eval()

    def train(self, mode: bool = True) -> "DINO":
        super().train(mode)
        self.teacher_encoder.eval()  # the teacher never drops out
        self.teacher_head.eval()
        return self

    def teacher_temperature(self) -> float:
        c = self.config
        if c.teacher_temp_warmup <= 0:
            return c.teacher_temp
        t = min(float(self.progress) / c.teacher_temp_warmup, 1.0)
        return c.warmup_teacher_temp + (c.teacher_temp - c.warmup_teacher_temp) * t

    def make_batch(self, batch: FrameBatch, generator: torch.Generator) -> dict[str, Any]:
        """{"global": (2N, 3, S, S), "local": (n_local N, 3, s, s)} float views, view-major (view 0's N frames
        first); "local" is empty when n_local is 0."""
        views = self.crops(to_float(batch.frames), generator)
        size = self.crops.local_size
        local = torch.cat(views[2:]) if len(views) > 2 else views[0].new_zeros(0, 3, size, size)
        return {"global": torch.cat(views[:2]), "local": local}

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        glob, local = batch["global"], batch["local"]
        n = glob.shape[0] // 2
        feats = self.encoder(glob)  # (2N, D): one encoder call per crop size
        outs = [feats]
        if local.shape[0] > 0:
            outs.append(self.encoder(local))  # (n_local N, D)
        student = self.head(torch.cat(outs)) / self.config.student_temp  # (V N, K)
        with torch.no_grad():
            teacher = self.teacher_head(self.teacher_encoder(glob))  # (2N, K)
            temp = self.teacher_temperature()
            probs = F.softmax((teacher - self.center) / temp, dim=-1)  # (2N, K)
            if self.training:
                self._batch_center = teacher.mean(dim=0, keepdim=True)
        loss = dino_loss(list(student.split(n)), list(probs.split(n)))
        with torch.no_grad():
            entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=-1).mean()
            marginal = probs.mean(dim=0)  # (K,): how much of the batch each prototype takes
            batch_entropy = -(marginal * torch.log(marginal.clamp_min(1e-12))).sum()
            std = feature_std(feats)
        return loss, {"loss": float(loss.detach()), "teacher_entropy": float(entropy), "std": float(std),
                      "teacher_batch_entropy": float(batch_entropy), "teacher_temp": temp}

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """EMA of the teacher towards the student, then of the center towards the last batch's teacher mean."""
        m = cosine_momentum(step, total_steps, self.config.momentum_start, self.config.momentum_end)
        ema_update(self.teacher_encoder, self.encoder, m)
        ema_update(self.teacher_head, self.head, m)
        if self._batch_center is not None:
            c = self.config.center_momentum
            self.center.mul_(c).add_(self._batch_center.to(self.center), alpha=1 - c)
            self._batch_center = None
        self.progress.fill_((step + 1) / max(total_steps, 1))


__all__ = ["DINO", "DINOConfig", "DINOHead", "dino_loss", "default_local_size"]
