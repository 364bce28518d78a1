"""Batched augmented *views* for self-supervised pretraining, in plain torch (no torchvision here).

SimCLR, MoCo and DINO learn by making two (or more) random views of a frame agree, so their augmentations
are strong: random resized crops, colour jitter, grayscale, blur, solarize, and flips where a mirrored
task is still the same task. Every function takes (B, 3, H, W) float frames in [0, 1] and a
torch.Generator, draws its parameters per frame, and works on the whole batch at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from video2reward.video.augment import color_jitter


def _uniform(b: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(b, generator=generator, device=device)


def _chance(b: int, p: float, generator: torch.Generator, device) -> torch.Tensor:
    """(B, 1, 1, 1) bool: True with probability p, per frame."""
    return (torch.rand(b, generator=generator, device=device) < p).view(b, 1, 1, 1)


def random_resized_crop(
    frames: torch.Tensor, generator: torch.Generator, size: int,
    scale: tuple[float, float] = (0.2, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Crop a random box covering `scale` of the area with aspect `ratio` (log-uniform), resize to `size`.
    (B, 3, H, W) -> (B, 3, size, size); one bilinear grid_sample for the whole batch."""
    b, dev = frames.shape[0], frames.device
    area = _uniform(b, scale[0], scale[1], generator, dev)
    log_r = _uniform(b, math.log(ratio[0]), math.log(ratio[1]), generator, dev)
    aspect = torch.exp(log_r)
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # box width as a fraction of the frame width
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (1 - w) * torch.rand(b, generator=generator, device=dev) + w / 2  # box centre in [0, 1]
    cy = (1 - h) * torch.rand(b, generator=generator, device=dev) + h / 2
    theta = torch.zeros(b, 2, 3, device=dev)  # affine map from output to input in [-1, 1] coordinates
    theta[:, 0, 0] = w
    theta[:, 0, 2] = 2 * cx - 1
    theta[:, 1, 1] = h
    theta[:, 1, 2] = 2 * cy - 1
    grid = F.affine_grid(theta, (b, frames.shape[1], size, size), align_corners=False)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)


def light_crop(frames: torch.Tensor, generator: torch.Generator, size: int, min_scale: float) -> torch.Tensor:
    """The reconstruction objectives' only augmentation (MAE, JEPA, VAE): a random resized crop covering
    [min_scale, 1] of the frame, or with min_scale 1 no crop, only a resize to `size` when the frames differ.
    (B, C, H, W) float in [0, 1] -> (B, C, size, size), clamped to [0, 1]."""
    if min_scale < 1.0:
        return random_resized_crop(frames, generator, size, (min_scale, 1.0)).clamp(0, 1)
    if frames.shape[-2:] != (size, size):
        return F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    return frames


def horizontal_flip(frames: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    return torch.where(_chance(frames.shape[0], p, generator, frames.device), frames.flip(-1), frames)


def random_grayscale(frames: torch.Tensor, generator: torch.Generator, p: float = 0.2) -> torch.Tensor:
    gray = (0.299 * frames[:, 0:1] + 0.587 * frames[:, 1:2] + 0.114 * frames[:, 2:3]).expand_as(frames)
    return torch.where(_chance(frames.shape[0], p, generator, frames.device), gray, frames)


def gaussian_blur(
    frames: torch.Tensor, generator: torch.Generator, p: float = 0.5, sigma: tuple[float, float] = (0.1, 2.0),
    kernel_fraction: float = 0.1,
) -> torch.Tensor:
    """Blur with a per-frame sigma (in pixels at 224 px, scaled to the frame size, as in SimCLR) using a
    separable kernel of about `kernel_fraction` of the frame size."""
    b, c, h, w = frames.shape
    k = max(3, int(kernel_fraction * h) // 2 * 2 + 1)  # odd kernel size
    s = _uniform(b, sigma[0], sigma[1], generator, frames.device) * h / 224  # (B,)
    x = torch.arange(k, device=frames.device, dtype=frames.dtype) - k // 2
    kernel = torch.exp(-(x[None, :] ** 2) / (2 * s[:, None].clamp(min=1e-3) ** 2))  # (B, k)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    # Depthwise conv with one kernel per (frame, channel): fold the batch into the channels.
    kern = kernel.repeat_interleave(c, dim=0)  # (B*C, k)
    flat = frames.reshape(1, b * c, h, w)
    flat = F.conv2d(F.pad(flat, (k // 2, k // 2, 0, 0), mode="reflect"), kern[:, None, None, :], groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, k // 2, k // 2), mode="reflect"), kern[:, None, :, None], groups=b * c)
    return torch.where(_chance(b, p, generator, frames.device), flat.reshape(b, c, h, w), frames)


def solarize(frames: torch.Tensor, generator: torch.Generator, p: float = 0.2, threshold: float = 0.5) -> torch.Tensor:
    """Invert the pixels above `threshold` (BYOL/DINO's asymmetric augmentation)."""
    inverted = torch.where(frames >= threshold, 1 - frames, frames)
    return torch.where(_chance(frames.shape[0], p, generator, frames.device), inverted, frames)


def random_color_jitter(
    frames: torch.Tensor, generator: torch.Generator, p: float = 0.8, strength: float = 0.4
) -> torch.Tensor:
    jittered = color_jitter(frames, generator, strength, strength, strength)
    return torch.where(_chance(frames.shape[0], p, generator, frames.device), jittered, frames)


@dataclass
class ViewAugment:
    """One SimCLR-style random view per frame: crop -> (flip) -> colour jitter -> grayscale -> blur -> solarize.

    `flip` is off by default: a mirrored task video can show another task (reach left vs reach right)."""

    size: int = 64  # output side in pixels
    scale: tuple[float, float] = (0.2, 1.0)  # crop area range (fraction of the frame)
    flip: bool = False
    jitter_p: float = 0.8
    jitter_strength: float = 0.4
    gray_p: float = 0.2
    blur_p: float = 0.5
    solarize_p: float = 0.0

    def __call__(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = random_resized_crop(frames, generator, self.size, self.scale)
        if self.flip:
            x = horizontal_flip(x, generator)
        x = random_color_jitter(x, generator, self.jitter_p, self.jitter_strength)
        x = random_grayscale(x, generator, self.gray_p)
        if self.blur_p > 0:
            x = gaussian_blur(x, generator, self.blur_p)
        if self.solarize_p > 0:
            x = solarize(x, generator, self.solarize_p)
        return x.clamp(0, 1)


@dataclass
class MultiCrop:
    """DINO's multi-crop: 2 global views (large crops at full size) and `n_local` local views (small crops
    at a smaller size). Global views: the first blurs always, the second rarely and solarizes sometimes."""

    global_size: int = 64
    local_size: int = 32
    n_local: int = 4
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.1, 0.4)
    flip: bool = False

    def __call__(self, frames: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        g1 = ViewAugment(self.global_size, self.global_scale, self.flip, blur_p=1.0)
        g2 = ViewAugment(self.global_size, self.global_scale, self.flip, blur_p=0.1, solarize_p=0.2)
        local = ViewAugment(self.local_size, self.local_scale, self.flip, blur_p=0.5)
        return [g1(frames, generator), g2(frames, generator)] + [local(frames, generator) for _ in range(self.n_local)]
