"""Batched, label-preserving frame augmentations in plain torch (no torchvision here).

Each transform takes (B, 3, H, W) float frames in [0, 1] and a torch.Generator, draws its own parameters
per frame, and returns a tensor of the same shape. None of them changes when a frame happened, so the
progress target of a frame is the same before and after.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def random_shift(frames: torch.Tensor, generator: torch.Generator, pad: int) -> torch.Tensor:
    """DrQ-style shift: replicate-pad by `pad` pixels, then crop back at a random offset per frame."""
    if pad <= 0:
        return frames
    b, _, h, w = frames.shape
    padded = F.pad(frames, (pad, pad, pad, pad), mode="replicate")  # (B, 3, H+2p, W+2p)
    # Integer shifts expressed as a sampling grid, so the whole batch is one grid_sample call.
    shift = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator, device=frames.device).float()
    ys = torch.arange(h, device=frames.device).float()
    xs = torch.arange(w, device=frames.device).float()
    grid_y = (ys[None, :, None] + shift[:, 0, None, None] + 0.5) / (h + 2 * pad) * 2 - 1  # (B, H, 1)
    grid_x = (xs[None, None, :] + shift[:, 1, None, None] + 0.5) / (w + 2 * pad) * 2 - 1  # (B, 1, W)
    grid = torch.stack(torch.broadcast_tensors(grid_x, grid_y), dim=-1)  # (B, H, W, 2)
    return F.grid_sample(padded, grid, mode="nearest", align_corners=False)


def color_jitter(
    frames: torch.Tensor, generator: torch.Generator, brightness: float, contrast: float, saturation: float
) -> torch.Tensor:
    """Per-frame random brightness, contrast and saturation factors in [1 - s, 1 + s]."""
    b = frames.shape[0]

    def factor(strength: float) -> torch.Tensor:
        u = torch.rand(b, 1, 1, 1, generator=generator, device=frames.device)
        return 1 + strength * (2 * u - 1)  # (B, 1, 1, 1)

    out = frames * factor(brightness)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * factor(contrast) + mean
    gray = (0.299 * out[:, 0:1] + 0.587 * out[:, 1:2] + 0.114 * out[:, 2:3])  # (B, 1, H, W)
    out = (out - gray) * factor(saturation) + gray
    return out.clamp(0, 1)


def gaussian_noise(frames: torch.Tensor, generator: torch.Generator, std: float) -> torch.Tensor:
    noise = torch.randn(frames.shape, generator=generator, device=frames.device) * std
    return (frames + noise).clamp(0, 1)


@dataclass
class FrameAugment:
    """The default training augmentation of the reward heads: shift, color jitter, pixel noise."""

    shift_fraction: float = 1 / 16  # pad = this * image size (4 px at 64 px)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    noise_std: float = 0.02

    def __call__(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        pad = int(round(self.shift_fraction * frames.shape[-1]))
        frames = random_shift(frames, generator, pad)
        frames = color_jitter(frames, generator, self.brightness, self.contrast, self.saturation)
        return gaussian_noise(frames, generator, self.noise_std)
