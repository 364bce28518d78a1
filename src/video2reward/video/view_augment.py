"""Strong, label-preserving augmentation for rewards that survive a camera move (`--view-augment`).

A camera moved to another place sees the scene scaled, shifted, turned and in perspective, under other light
and through other optics. Each frame here gets, with its own random parameters drawn from a torch.Generator:

* geometry, one homography per frame applied with one `grid_sample` call for the whole batch: a random
  resized crop (area `crop_scale`, aspect ratio `crop_ratio`), a rotation (+-`rotate` degrees), a shear
  (+-`shear` degrees), a perspective tilt (+-`perspective` in the projective row) and a horizontal flip
  (probability `flip_p`; a mirrored scene is still the same task at the same moment);
* photometry: brightness, contrast and saturation factors in [1 - s, 1 + s], a hue rotation about the grey
  axis (+-`hue` of a half turn), grey-scale with probability `gray_p`;
* optics: a Gaussian blur (sigma in `blur_sigma`, probability `blur_p`) and pixel noise.

None of these changes *when* a frame was taken, so progress targets (normalised time) are unchanged; the
test `tests/video/test_view_augment.py` checks that for the training batches of every head. Plain torch,
(B, 3, H, W) float in [0, 1] in and out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from video2reward.video.augment import color_jitter, gaussian_noise


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def random_homographies(
    n: int, generator: torch.Generator, device, crop_scale: tuple[float, float], crop_ratio: tuple[float, float],
    rotate: float, shear: float, perspective: float, flip_p: float,
) -> torch.Tensor:
    """(n, 3, 3) maps from output to input coordinates, both in grid_sample's [-1, 1] units:
    H = T(crop centre) . R(rotate) . Sh(shear) . S(crop size, flip) with the projective row (p_x, p_y, 1)."""
    area = _uniform(n, *crop_scale, generator, device)  # fraction of the frame the crop covers
    log_ratio = _uniform(n, math.log(crop_ratio[0]), math.log(crop_ratio[1]), generator, device)
    ratio = log_ratio.exp()
    sx = (area * ratio).sqrt().clamp(max=1.0)  # half-widths of the crop in [-1, 1] units (1 = whole frame)
    sy = (area / ratio).sqrt().clamp(max=1.0)
    cx = (1 - sx) * _uniform(n, -1, 1, generator, device)  # crop centre, kept inside the frame
    cy = (1 - sy) * _uniform(n, -1, 1, generator, device)
    flip = torch.where(torch.rand(n, generator=generator, device=device) < flip_p, -1.0, 1.0)
    angle = torch.deg2rad(_uniform(n, -rotate, rotate, generator, device))
    sh = torch.tan(torch.deg2rad(_uniform(n, -shear, shear, generator, device)))
    cos, sin = angle.cos(), angle.sin()
    zero, one = torch.zeros(n, device=device), torch.ones(n, device=device)
    scale = torch.stack([torch.stack([sx * flip, zero, zero]), torch.stack([zero, sy, zero]),
                         torch.stack([zero, zero, one])]).permute(2, 0, 1)  # (n, 3, 3)
    shear_m = torch.stack([torch.stack([one, sh, zero]), torch.stack([zero, one, zero]),
                           torch.stack([zero, zero, one])]).permute(2, 0, 1)
    rot = torch.stack([torch.stack([cos, -sin, zero]), torch.stack([sin, cos, zero]),
                       torch.stack([zero, zero, one])]).permute(2, 0, 1)
    move = torch.stack([torch.stack([one, zero, cx]), torch.stack([zero, one, cy]),
                        torch.stack([zero, zero, one])]).permute(2, 0, 1)
    h = move @ rot @ shear_m @ scale  # (n, 3, 3)
    h[:, 2, 0] = _uniform(n, -perspective, perspective, generator, device)
    h[:, 2, 1] = _uniform(n, -perspective, perspective, generator, device)
    return h


def warp(frames: torch.Tensor, homographies: torch.Tensor) -> torch.Tensor:
    """Frame i resampled through homography i (output -> input, [-1, 1] units); border pixels extend outward."""
    b, _, h, w = frames.shape
    ys = (torch.arange(h, device=frames.device) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=frames.device) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1).reshape(1, -1, 3)  # (1, H*W, 3)
    mapped = points @ homographies.transpose(1, 2)  # (B, H*W, 3)
    grid = mapped[..., :2] / mapped[..., 2:].clamp(min=1e-3)  # (B, H*W, 2)
    return F.grid_sample(frames, grid.reshape(b, h, w, 2), mode="bilinear", padding_mode="border",
                         align_corners=False)


def hue_rotate(frames: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Rotate each frame's colours about the grey axis (1, 1, 1) by an angle in +-strength * pi (Rodrigues)."""
    b = frames.shape[0]
    theta = _uniform(b, -strength * math.pi, strength * math.pi, generator, frames.device)
    k = torch.full((3,), 1 / math.sqrt(3), device=frames.device)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=frames.device) / math.sqrt(3)
    outer = torch.outer(k, k)
    eye = torch.eye(3, device=frames.device)
    m = (theta.cos()[:, None, None] * eye + theta.sin()[:, None, None] * cross
         + (1 - theta.cos())[:, None, None] * outer)  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", m, frames).clamp(0, 1)


def random_gray(frames: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    pick = torch.rand(frames.shape[0], 1, 1, 1, generator=generator, device=frames.device) < p
    gray = (0.299 * frames[:, 0:1] + 0.587 * frames[:, 1:2] + 0.114 * frames[:, 2:3]).expand_as(frames)
    return torch.where(pick, gray, frames)


def random_blur(frames: torch.Tensor, generator: torch.Generator, p: float, sigma: tuple[float, float]) -> torch.Tensor:
    """Separable Gaussian blur, its sigma (pixels) drawn per frame; frames not picked (probability 1 - p) pass."""
    b, c, h, w = frames.shape
    s = _uniform(b, *sigma, generator, frames.device)
    pick = torch.rand(b, generator=generator, device=frames.device) < p
    if not pick.any():
        return frames
    n = int(pick.sum())
    radius = max(1, math.ceil(2 * sigma[1]))
    x = torch.arange(-radius, radius + 1, device=frames.device, dtype=frames.dtype)
    kernel = torch.exp(-0.5 * (x[None, :] / s[pick][:, None]) ** 2)  # (n, K): only the picked frames are blurred
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (n*C, K)
    flat = F.pad(frames[pick].reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(flat, kernel[:, None, None, :], groups=n * c)  # along W
    blurred = F.conv2d(blurred, kernel[:, None, :, None], groups=n * c)  # along H
    out = frames.clone()
    out[pick] = blurred.reshape(n, c, h, w)
    return out


@dataclass
class ViewAugment:
    """`--view-augment`: random camera geometry, light and optics per frame (see the module docstring)."""

    crop_scale: tuple[float, float] = (0.55, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    rotate: float = 12.0  # degrees
    shear: float = 8.0  # degrees
    perspective: float = 0.15  # projective row entries (0.15: one side of the frame about 30% taller than the other)
    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.5
    hue: float = 0.15  # of a half turn
    gray_p: float = 0.1
    blur_p: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.5)  # pixels
    noise_std: float = 0.02

    def __call__(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        h = random_homographies(frames.shape[0], generator, frames.device, self.crop_scale, self.crop_ratio,
                                self.rotate, self.shear, self.perspective, self.flip_p)
        x = warp(frames, h)  # (B, 3, H, W)
        x = color_jitter(x, generator, self.brightness, self.contrast, self.saturation)
        x = hue_rotate(x, generator, self.hue)
        x = random_gray(x, generator, self.gray_p)
        x = random_blur(x, generator, self.blur_p, self.blur_sigma)
        return gaussian_noise(x, generator, self.noise_std)
