"""What every self-supervised objective is: a module that wraps an encoder and returns (loss, metrics).

    objective = SimCLR(encoder, SimCLRConfig())
    batch = objective.make_batch(frame_batch, generator)   # augmented views, on the CPU, deterministic
    loss, metrics = objective(batch)                       # the one training loop backpropagates `loss`
    objective.after_step(step, total_steps)                # momentum targets, queues: after optimizer.step()
    objective.encoder                                      # the trained encoder, all that is kept

The projection heads, predictors, teachers and queues an objective needs live inside it and are thrown
away after pretraining; only `.encoder` is saved. Optimizers live outside (in `pretrain.py`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.video.frame_sampler import FrameBatch


class Objective(nn.Module):
    """Base class: subclasses set `self.encoder` and implement `make_batch` and `forward`."""

    encoder: nn.Module
    neighbour_window: int = 0  # > 0: the frame sampler must draw temporal neighbours (see FrameSampler)

    def make_batch(self, batch: FrameBatch, generator: torch.Generator) -> dict[str, Any]:
        """Views of `batch.frames` (uint8) for `forward`: a dict of tensors (moved to the device as a whole)."""
        raise NotImplementedError

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def after_step(self, step: int, total_steps: int) -> None:
        """Called after every optimizer step (EMA updates). Default: nothing."""


@torch.no_grad()
def feature_std(features: torch.Tensor) -> float:
    """Collapse monitor: mean over dimensions of the std across the batch of the L2-normalised features.

    About 1/sqrt(D) for healthy, spread-out features; 0 when every frame maps to the same vector
    (SimSiam, Chen & He 2021). features: (B, D); NaN for B < 2.
    """
    if features.shape[0] < 2:
        return float("nan")
    return F.normalize(features.detach().float(), dim=-1).std(dim=0).mean().item()


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, S, S) -> float in [0, 1]."""
    return frames.float().div_(255.0)


def batch_to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move every tensor (or list of tensors) of a `make_batch` dict to `device`."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device)
        elif isinstance(value, (list, tuple)):
            out[key] = [v.to(device) if isinstance(v, torch.Tensor) else v for v in value]
        else:
            out[key] = value
    return out
