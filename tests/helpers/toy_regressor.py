"""The smallest trainable thing with the interface of every objective and head, forward(batch) -> (loss,
metrics), and its batches: what the training-loop and checkpoint-fault tests train."""

from __future__ import annotations

import torch
import torch.nn as nn


class Regressor(nn.Module):
    """An MLP regressing sin(sum(x)) from x in R^4; forward(batch) -> (loss, metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, batch):
        x, y = batch
        loss = (self.net(x).squeeze(-1) - y).pow(2).mean()
        return loss, {"loss": loss.item()}


def regression_batch(generator: torch.Generator, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(size, 4, generator=generator)  # (size, 4)
    return x, x.sum(dim=1).sin()
