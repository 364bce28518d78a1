"""The floor baseline: PCA of downscaled raw pixels, then ridge regression of normalised time.

No learning of features, no goal, no augmentation: every table shows it beside the learned reward so a
reader sees how far above a trivial reward the learned one is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.core.options import option
from video2reward.rewards.base import HeadEntry


@dataclass
class PixelRidgeConfig:
    """Options of the pixel-ridge floor (`v2r train --pixel-ridge-FIELD`)."""

    pixels: int = option(16, "frames are area-downscaled to pixels x pixels before PCA")
    components: int = option(32, "principal components of the downscaled pixels")
    alpha: float = option(1.0, "L2 penalty of the ridge regression")


class PixelRidge(nn.Module):
    """reward(frame) = w . PCA(downscale(frame)) + b, fitted in closed form on (frame, t / (T - 1)) pairs."""

    def __init__(self, config: PixelRidgeConfig | None = None):
        super().__init__()
        self.config = config or PixelRidgeConfig()
        n_in = 3 * self.config.pixels**2
        k = self.config.components
        self.register_buffer("mean", torch.zeros(n_in))
        self.register_buffer("components", torch.zeros(k, n_in))
        self.register_buffer("weight", torch.zeros(k))
        self.register_buffer("bias", torch.zeros(()))
        self.register_buffer("residual_std", torch.ones(()))
        self.register_buffer("goal", torch.zeros(k))  # kept for the common head interface; unused

    @property
    def dim(self) -> int:
        return self.config.components

    def _pixels(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float -> (B, 3 * p * p) flattened downscaled pixels."""
        small = F.adaptive_avg_pool2d(frames, self.config.pixels)  # (B, 3, p, p)
        return small.flatten(1)

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float -> (B, K) principal-component scores."""
        return (self._pixels(frames) - self.mean) @ self.components.T

    def predict(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reads the current frame alone: initial, goal and previous are accepted and ignored."""
        mu = current @ self.weight + self.bias  # (B,)
        return mu, self.residual_std.expand_as(mu)

    @torch.no_grad()
    def fit(self, frames: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """frames (N, 3, S, S) float in [0, 1], targets (N,) normalised time. Closed form, no iterations."""
        x = self._pixels(frames).double()  # (N, P)
        mean = x.mean(dim=0)
        xc = x - mean
        k = min(self.config.components, xc.shape[0], xc.shape[1])
        # PCA: the top right-singular vectors of the centred data.
        _, _, vh = torch.linalg.svd(xc, full_matrices=False)
        comps = torch.zeros_like(self.components, dtype=torch.float64)
        comps[:k] = vh[:k]
        z = xc @ comps.T  # (N, K)
        y = targets.double()
        y_mean = y.mean()
        # Ridge: w = (Z^T Z + alpha I)^-1 Z^T (y - mean(y))   (Z is centred, so the bias is mean(y))
        gram = z.T @ z + self.config.alpha * torch.eye(z.shape[1], dtype=torch.float64)
        w = torch.linalg.solve(gram, z.T @ (y - y_mean))
        residual = y - (z @ w + y_mean)
        self.mean.copy_(mean.float())
        self.components.copy_(comps.float())
        self.weight.copy_(w.float())
        self.bias.fill_(float(y_mean))
        self.residual_std.fill_(float(residual.std().clamp(min=1e-3)))
        return {"train_rmse": float(residual.pow(2).mean().sqrt()), "components": float(k)}


ENTRY = HeadEntry("pixel-ridge", PixelRidge, PixelRidgeConfig, None, negatives=False, distill=None,
                  summary="PCA of raw pixels + ridge on time, fitted in closed form: the floor baseline",
                  encoder=False, reward_range=None,  # a linear regression: unbounded
                  reward_meaning="regressed progress, 0 = start, 1 = task done")
