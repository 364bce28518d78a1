"""MoCo v2 (He et al. 2020; Chen et al. 2020): contrast each view against a queue of past keys.

A query q = g(f(view)) from the trained encoder f and head g must match its key k+ = g'(f'(other view)) from
a *momentum* copy (f', g') that follows (f, g) by an exponential moving average, and not the K keys of
earlier batches kept in a FIFO queue. With unit vectors and temperature tau, the InfoNCE loss is

    L_q = -log exp(q . k+ / tau) / (exp(q . k+ / tau) + sum_{k in queue} exp(q . k / tau)),

a (1 + K)-way cross entropy with the positive at index 0. The queue decouples the number of negatives from
the batch size, which is what a small CPU batch needs. Both views act as queries (symmetrised loss) and the
keys of both views are enqueued, as in the official MoCo CIFAR demo.

The encoders here use GroupNorm (and the head has no BatchNorm), so a frame's vector never depends on its
batch: MoCo's shuffle-BN, which stops BatchNorm from leaking the positive through batch statistics, is not
needed.

The keys of a forward are enqueued in `after_step`, after the optimizer step, together with the momentum
update: a forward that is not followed by a step (an evaluation) changes neither the queue nor the keys.
The queue is a registered buffer, so `state_dict()` checkpoints it and a resumed run continues with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from video2reward.errors import ConfigError
from video2reward.objectives.base import Objective, feature_std, to_float
from video2reward.objectives.momentum import cosine_momentum, ema_update, frozen_copy
from video2reward.objectives.projection import ProjectionHead
from video2reward.objectives.simclr import ViewConfig
from video2reward.video.frame_sampler import FrameBatch


def info_nce(q: Tensor, k_pos: Tensor, negatives: Tensor, temperature: float) -> Tensor:
    """MoCo's InfoNCE loss, mean over the queries.

    q: (B, P) queries, k_pos: (B, P) their positive keys, negatives: (K, P) queue keys (K may be 0).
    All are L2-normalised here.
    """
    q, k_pos = F.normalize(q, dim=1), F.normalize(k_pos, dim=1)  # (B, P), (B, P)
    negatives = F.normalize(negatives, dim=1)  # (K, P)
    l_pos = (q * k_pos).sum(dim=1, keepdim=True)  # (B, 1): q . k+
    l_neg = q @ negatives.T  # (B, K): q . k for k in the queue
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature  # (B, 1 + K)
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)  # the positive is class 0
    # L_q = -log exp(q.k+/tau) / (exp(q.k+/tau) + sum_k exp(q.k/tau))
    return F.cross_entropy(logits, labels)


@dataclass
class MoCoConfig(ViewConfig):
    """Hyper-parameters of `MoCo`."""

    temperature: float = field(default=0.2, metadata={"help": "Softmax temperature tau of the InfoNCE loss."})
    queue_size: int = field(
        default=4096, metadata={"help": "Number K of past keys kept as negatives (a FIFO queue)."}
    )
    momentum: float = field(
        default=0.99, metadata={"help": "Momentum of the key encoder at the start (EMA: m*key + (1-m)*query)."}
    )
    momentum_end: float = field(
        default=1.0, metadata={"help": "Momentum at the end of training (reached on a cosine schedule)."}
    )
    proj_hidden: int = field(default=512, metadata={"help": "Hidden width of the projection head."})
    proj_dim: int = field(default=128, metadata={"help": "Output size of the projection head (key size)."})
    proj_layers: int = field(
        default=2, metadata={"help": "Linear layers of the projection head (2: one hidden layer, as in MoCo v2)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.queue_size < 1:
            raise ConfigError(f"queue_size must be >= 1, got {self.queue_size}")
        if not 0 <= self.momentum <= 1 or not 0 <= self.momentum_end <= 1:
            raise ConfigError(f"momentum and momentum_end must be in [0, 1], got {self.momentum}, {self.momentum_end}")
        if min(self.proj_hidden, self.proj_dim, self.proj_layers) < 1:
            raise ConfigError("proj_hidden, proj_dim and proj_layers must all be >= 1")


class MoCo(Objective):
    """Query encoder + head (trained), momentum key encoder + head (EMA), and a queue of keys."""

    queue: Tensor
    queue_ptr: Tensor
    queue_filled: Tensor

    def __init__(self, encoder: nn.Module, config: MoCoConfig | None = None) -> None:
        super().__init__()
        self.config = c = config if config is not None else MoCoConfig()
        self.encoder = encoder
        self.head = ProjectionHead(encoder.dim, c.proj_hidden, c.proj_dim, c.proj_layers)
        self.key_encoder = frozen_copy(encoder)
        self.key_head = frozen_copy(self.head)
        self.view = c.augment(encoder.config.image_size)
        self.register_buffer("queue", torch.zeros(c.queue_size, c.proj_dim))  # (K, P) unit keys once filled
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))  # next slot to write
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))  # slots written so far (<= K)
        self.momentum = c.momentum  # the momentum of the last update (for logging)
        self._pending: Tensor | None = None  # keys of the last training forward, enqueued in after_step

    def negatives(self) -> Tensor:
        """The filled part of the queue (K', P): slots are written from 0 up, so until the queue first
        wraps around the filled ones are [0, queue_filled); after that, all of them."""
        return self.queue[: int(self.queue_filled)]

    def make_batch(self, batch: FrameBatch, generator: torch.Generator) -> dict[str, Any]:
        frames = to_float(batch.frames)  # (N, 3, S, S) in [0, 1]
        return {"view1": self.view(frames, generator), "view2": self.view(frames, generator)}  # 2 x (N, 3, s, s)

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        v1, v2 = batch["view1"], batch["view2"]
        n = v1.shape[0]
        views = torch.cat([v1, v2])  # (2N, 3, s, s)
        h = self.encoder(views)  # (2N, D): both views in one encoder call
        q = F.normalize(self.head(h), dim=1)  # (2N, P) queries
        with torch.no_grad():
            k = F.normalize(self.key_head(self.key_encoder(views)), dim=1)  # (2N, P) keys
        k_pos = torch.cat([k[n:], k[:n]])  # (2N, P): each query's key is the *other* view of its frame
        loss = info_nce(q, k_pos, self.negatives(), self.config.temperature)  # symmetrised: both views query
        if torch.is_grad_enabled():  # a training forward: its keys join the queue after the optimizer step
            self._pending = k.detach()
        with torch.no_grad():
            pos_sim = (q * k_pos).sum(dim=1).mean().item()
        return loss, {"loss": loss.item(), "pos_sim": pos_sim, "std": feature_std(h),
                      "queue": int(self.queue_filled) / self.config.queue_size, "momentum": self.momentum}

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write (M, P) keys into the ring buffer at the pointer (the oldest entries are overwritten)."""
        size = self.queue.shape[0]
        keys = keys[-size:]  # more keys than slots: only the newest fit
        m = keys.shape[0]
        slots = (self.queue_ptr + torch.arange(m, device=self.queue.device)) % size  # (M,), wraps around
        self.queue[slots] = F.normalize(keys.to(self.queue), dim=1)
        self.queue_ptr.copy_((self.queue_ptr + m) % size)
        self.queue_filled.copy_(torch.clamp(self.queue_filled + m, max=size))

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        c = self.config
        self.momentum = cosine_momentum(step, total_steps, c.momentum, c.momentum_end)
        # theta_k <- m * theta_k + (1 - m) * theta_q
        ema_update(self.key_encoder, self.encoder, self.momentum)
        ema_update(self.key_head, self.head, self.momentum)
        if self._pending is not None:
            self.enqueue(self._pending)
            self._pending = None
