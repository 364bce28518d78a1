"""Momentum (EMA) targets for MoCo and DINO: the update and its schedule.

MoCo's key encoder and DINO's teacher are never trained by gradients; after every optimizer step they move
towards the online network:  theta_t <- m * theta_t + (1 - m) * theta_s, with m rising from `start` to
`end` over training on a cosine (DINO: 0.996 -> 1).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of `module` that gradients never reach (the momentum target)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """theta_t <- m * theta_t + (1 - m) * theta_s for every parameter; buffers are copied."""
    for t, s in zip(target.parameters(), online.parameters()):
        t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)
    for t, s in zip(target.buffers(), online.buffers()):
        t.copy_(s)


def cosine_momentum(step: int, total: int, start: float, end: float = 1.0) -> float:
    """m(step) = end - (end - start) * (cos(pi * step / total) + 1) / 2: `start` at step 0, `end` at `total`."""
    progress = min(max(step / max(total, 1), 0.0), 1.0)
    return end - (end - start) * (math.cos(math.pi * progress) + 1) / 2
