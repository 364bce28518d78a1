"""Projection heads for the contrastive objectives, and the collapse monitor they all report.

SimCLR (Chen et al. 2020) found that the contrastive loss is better applied to z = g(h), a small MLP on
top of the encoder's vector h, than to h itself: g can throw away what the loss makes invariant (colour,
crop) while h keeps it. The head is discarded after pretraining; only the encoder is kept.

    head = ProjectionHead(encoder.dim, hidden=512, out_dim=128)   # Linear-GELU-Linear (SimCLR's g)
    z = head(encoder(frames))                                      # (B, 128)

Shared by SimCLR, DCL and MoCo. The head has no BatchNorm on purpose: like the GroupNorm encoders, a frame's
projection never depends on the other frames of its batch (so MoCo needs no shuffle-BN).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ProjectionHead(nn.Module):
    """MLP `in_dim -> hidden -> ... -> out_dim` with `layers` Linear layers and GELU between them.

    layers=1 is a plain linear map; layers=2 (default) is SimCLR's g with one hidden layer.
    norm_last=True L2-normalises the output (unit vectors, as the contrastive losses use them).
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int = 2, norm_last: bool = False) -> None:
        super().__init__()
        if layers < 1 or min(in_dim, hidden, out_dim) < 1:
            raise ValueError(f"ProjectionHead needs layers >= 1 and positive sizes, got "
                             f"in_dim={in_dim} hidden={hidden} out_dim={out_dim} layers={layers}")
        self.in_dim, self.hidden, self.out_dim, self.norm_last = in_dim, hidden, out_dim, norm_last
        sizes = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        modules: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            modules.append(nn.Linear(a, b))
            if i < layers - 1:
                modules.append(nn.GELU())
        self.mlp = nn.Sequential(*modules)  # PyTorch's default Linear init

    def forward(self, h: Tensor) -> Tensor:
        """(B, in_dim) -> (B, out_dim)."""
        z = self.mlp(h)  # (B, out_dim)
        return F.normalize(z, dim=-1) if self.norm_last else z
