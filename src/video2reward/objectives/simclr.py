"""SimCLR (Chen et al. 2020) and DCL (Yeh et al. 2022): two random views of a frame should agree.

Every frame of a batch of N gives two augmented views; the encoder f and projection head g map the 2N views
to z = g(f(view)). For each view i, its positive is the other view j of the same frame and its negatives are
the other 2N - 2 views of the batch. The NT-Xent loss (normalised temperature-scaled cross entropy) is

    l_{i,j} = -log exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau),   sim = cosine,

averaged over all 2N views. DCL (decoupled contrastive learning) drops the positive from the denominator,
which removes the "negative-positive coupling" that makes small batches learn slowly:

    l_{i,j} = -sim(z_i, z_j) / tau + log sum_{k != i, j} exp(sim(z_i, z_k) / tau).

Only the encoder is kept after pretraining; the head g is thrown away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from video2reward.errors import ConfigError
from video2reward.objectives.base import Objective, feature_std, to_float
from video2reward.objectives.projection import ProjectionHead
from video2reward.video.frame_sampler import FrameBatch
from video2reward.video.views import ViewAugment


def nt_xent(z1: Tensor, z2: Tensor, temperature: float, decoupled: bool = False) -> Tensor:
    """NT-Xent loss of the positive pairs (z1[n], z2[n]) against the other 2N - 2 views; mean over 2N views.

    z1, z2: (N, P) projections (normalised here). decoupled=True gives DCL's loss (needs N >= 2).
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"nt_xent needs two (N, P) tensors of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    if n < (2 if decoupled else 1):
        raise ValueError(f"nt_xent{' (decoupled)' if decoupled else ''} needs more frames in the batch, got {n}")
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, P): unit vectors, so z @ z.T is the cosine
    logits = z @ z.T / temperature  # (2N, 2N): sim(z_i, z_k) / tau
    idx = torch.arange(2 * n, device=z.device)  # (2N,)
    pos = (idx + n) % (2 * n)  # (2N,): view i's positive is the other view of its frame
    eye = idx[:, None] == idx[None, :]  # (2N, 2N)
    logits = logits.masked_fill(eye, float("-inf"))  # k != i
    if not decoupled:
        # l_{i,j} = -log exp(sim(z_i,z_j)/tau) / sum_{k != i} exp(sim(z_i,z_k)/tau)
        return F.cross_entropy(logits, pos)
    positive = logits[idx, pos]  # (2N,): sim(z_i, z_j) / tau
    negatives = logits.masked_fill(idx[None, :] == pos[:, None], float("-inf"))  # (2N, 2N): k != i, j
    # DCL: l_{i,j} = -sim(z_i,z_j)/tau + log sum_{k != i,j} exp(sim(z_i,z_k)/tau)
    return (torch.logsumexp(negatives, dim=1) - positive).mean()


@dataclass
class ViewConfig:
    """The random views of the contrastive objectives (see video2reward.video.views.ViewAugment)."""

    crop_scale: tuple[float, float] = field(
        default=(0.2, 1.0),
        metadata={"help": "Area range (fraction of the frame) of the random resized crops, as min,max."},
    )
    flip: bool = field(
        default=False,
        metadata={"help": "Random horizontal flips (off: a mirrored task video can show another task)."},
    )
    jitter_p: float = field(default=0.8, metadata={"help": "Probability of colour jitter per view."})
    jitter_strength: float = field(
        default=0.4, metadata={"help": "Colour jitter strength (brightness, contrast, saturation)."}
    )
    gray_p: float = field(default=0.2, metadata={"help": "Probability of turning a view grayscale."})
    blur_p: float = field(default=0.5, metadata={"help": "Probability of a Gaussian blur per view."})

    def __post_init__(self) -> None:
        self.crop_scale = tuple(float(s) for s in self.crop_scale)  # JSON gives lists back
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(f"crop_scale must be two numbers 0 < min <= max <= 1, got {self.crop_scale}")
        for name in ("jitter_p", "gray_p", "blur_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.jitter_strength < 0:
            raise ConfigError(f"jitter_strength must be >= 0, got {self.jitter_strength}")

    def augment(self, size: int) -> ViewAugment:
        """The view maker for frames of `size` pixels."""
        return ViewAugment(size=size, scale=self.crop_scale, flip=self.flip, jitter_p=self.jitter_p,
                           jitter_strength=self.jitter_strength, gray_p=self.gray_p, blur_p=self.blur_p)


@dataclass
class SimCLRConfig(ViewConfig):
    """Hyper-parameters of `SimCLR` (and of DCL, which only changes `decoupled`)."""

    temperature: float = field(default=0.2, metadata={"help": "Softmax temperature tau of the NT-Xent loss."})
    proj_hidden: int = field(default=512, metadata={"help": "Hidden width of the projection head g."})
    proj_dim: int = field(default=128, metadata={"help": "Output size of the projection head g."})
    proj_layers: int = field(
        default=2, metadata={"help": "Linear layers of the projection head (2: one hidden layer, as in SimCLR)."}
    )
    decoupled: bool = field(
        default=False,
        metadata={"help": "Leave the positive out of the loss's denominator (DCL, Yeh et al. 2022)."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if min(self.proj_hidden, self.proj_dim, self.proj_layers) < 1:
            raise ConfigError("proj_hidden, proj_dim and proj_layers must all be >= 1")


@dataclass
class DCLConfig(SimCLRConfig):
    """SimCLR with the decoupled loss: the same fields, `decoupled` on."""

    decoupled: bool = field(
        default=True,
        metadata={"help": "Leave the positive out of the loss's denominator (DCL, Yeh et al. 2022)."},
    )


class SimCLR(Objective):
    """Encoder + projection head trained with NT-Xent (or DCL's loss) on two views of every frame."""

    default_config = SimCLRConfig

    def __init__(self, encoder: nn.Module, config: SimCLRConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else self.default_config()
        self.encoder = encoder
        self.head = ProjectionHead(encoder.dim, self.config.proj_hidden, self.config.proj_dim, self.config.proj_layers)
        self.view = self.config.augment(encoder.config.image_size)

    def make_batch(self, batch: FrameBatch, generator: torch.Generator) -> dict[str, Any]:
        frames = to_float(batch.frames)  # (N, 3, S, S) in [0, 1]
        return {"view1": self.view(frames, generator), "view2": self.view(frames, generator)}  # 2 x (N, 3, s, s)

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        v1, v2 = batch["view1"], batch["view2"]
        n = v1.shape[0]
        h = self.encoder(torch.cat([v1, v2]))  # (2N, D): both views in one encoder call
        z = self.head(h)  # (2N, P)
        loss = nt_xent(z[:n], z[n:], self.config.temperature, self.config.decoupled)
        with torch.no_grad():
            pos_sim = F.cosine_similarity(z[:n], z[n:], dim=1).mean().item()
        return loss, {"loss": loss.item(), "pos_sim": pos_sim, "std": feature_std(h)}


class DCL(SimCLR):
    """SimCLR with the decoupled loss (DCLConfig by default)."""

    default_config = DCLConfig
