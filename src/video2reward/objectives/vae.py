"""Variational autoencoder (Kingma & Welling 2013, "Auto-Encoding Variational Bayes"): the generative baseline
beside the masked autoencoder. The frame encoder's output is the posterior mean, so the vector `v2r train` keeps
is the VAE's code of the frame:

    mu = f(x)                                     the frame encoder (any: cnn, vit, efficientnet-lite0), (B, D)
    log sigma^2 = W mu + b                        a linear head, thrown away after pretraining
    z = mu + sigma * eps,  eps ~ N(0, I)          reparameterisation: the sample is differentiable in mu, sigma
    x^ = g(z)                                     a transposed-conv decoder to the frame size, in [0, 1]
    ELBO = E_q[log p(x | z)] - KL(q(z | x) || N(0, I))
    -log p(x | z) = ||x - x^||^2 / (2 s^2) + const   Gaussian pixels with a fixed std s (`pixel_std`)
    KL = -1/2 sum_d (1 + log sigma_d^2 - mu_d^2 - sigma_d^2)
    loss = (-log p(x | z) + beta * KL) / (3 H W)   the negative ELBO (beta = 1), per pixel value

The encoders end in a LayerNorm, which fixes ||mu||^2 to about D: the KL then acts through the variances and
the codes spread over a sphere rather than shrinking to the origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from video2reward.errors import ConfigError
from video2reward.objectives.base import Objective, feature_std, to_float
from video2reward.video.frame_sampler import FrameBatch
from video2reward.video.views import light_crop

UPSAMPLINGS = 4  # the decoder doubles a (S / 16) x (S / 16) map four times


@dataclass
class VAEConfig:
    """Hyper-parameters of `VAE`; every field is JSON-able."""

    beta: float = field(default=1.0, metadata={"help": "Weight of the KL term (1: the ELBO; > 1: beta-VAE)."})
    pixel_std: float = field(
        default=0.1, metadata={"help": "Std s of the Gaussian pixel likelihood: the reconstruction term is "
                                       "||x - x^||^2 / (2 s^2); smaller s trades KL for sharper reconstructions."})
    decoder_channels: int = field(default=128, metadata={"help": "Channels of the decoder's first map (halved at "
                                                                  "each of its four upsamplings, at least 16)."})
    min_crop_scale: float = field(
        default=0.8, metadata={"help": "Light augmentation: random resized crop covering [min_crop_scale, 1] of "
                                       "the frame; 1 turns it off."})

    def __post_init__(self) -> None:
        if self.beta < 0 or self.pixel_std <= 0 or self.decoder_channels < 16:
            raise ConfigError("VAE: need beta >= 0, pixel_std > 0 and decoder_channels >= 16")
        if not 0.0 < self.min_crop_scale <= 1.0:
            raise ConfigError(f"VAE: min_crop_scale must be in (0, 1], got {self.min_crop_scale}")


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per sample, summed over dimensions: (B, D), (B, D) -> (B,)."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)


class Decoder(nn.Module):
    """Codes (B, D) -> frames (B, 3, S, S) in [0, 1]: a linear map to (C, S/16, S/16), four stride-2 transposed
    convolutions (kernel 4), GroupNorm + SiLU between them, a sigmoid at the end."""

    def __init__(self, dim: int, image_size: int, channels: int) -> None:
        super().__init__()
        self.image_size = image_size
        self.start = max(1, image_size // 2**UPSAMPLINGS)
        self.channels = channels
        self.fc = nn.Linear(dim, channels * self.start**2)
        layers: list[nn.Module] = []
        c = channels
        for i in range(UPSAMPLINGS):
            last = i == UPSAMPLINGS - 1
            c_out = 3 if last else max(c // 2, 16)
            layers.append(nn.ConvTranspose2d(c, c_out, 4, stride=2, padding=1))
            if not last:
                layers += [nn.GroupNorm(8 if c_out % 8 == 0 else 1, c_out), nn.SiLU()]
            c = c_out
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        x = self.fc(z).view(z.shape[0], self.channels, self.start, self.start)  # (B, C, S/16, S/16)
        x = torch.sigmoid(self.net(x))  # (B, 3, 16 * start, 16 * start)
        if x.shape[-1] != self.image_size:  # a frame side that is not a multiple of 16
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return x


class VAE(Objective):
    """VAE pretraining of any frame encoder (its output is the posterior mean); the decoder is discarded."""

    def __init__(self, encoder: nn.Module, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or VAEConfig()
        self.encoder = encoder
        self.image_size = int(encoder.config.image_size)
        self.logvar = nn.Linear(encoder.dim, encoder.dim)
        nn.init.zeros_(self.logvar.weight)
        nn.init.constant_(self.logvar.bias, -4.0)  # start with a narrow posterior: sigma ~ 0.14
        self.decoder = Decoder(encoder.dim, self.image_size, config.decoder_channels)

    def make_batch(self, batch: FrameBatch, generator: torch.Generator) -> dict[str, Any]:
        """{"frames": (B, 3, S, S) float in [0, 1], "eps": (B, D) standard normal noise (drawn here: deterministic)}."""
        frames = to_float(batch.frames)
        S = self.image_size
        frames = light_crop(frames, generator, S, self.config.min_crop_scale)
        return {"frames": frames, "eps": torch.randn(frames.shape[0], self.encoder.dim, generator=generator)}

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        x = batch["frames"]  # (B, 3, S, S)
        mu = self.encoder(x)  # (B, D)
        logvar = self.logvar(mu).clamp(-10.0, 10.0)  # (B, D)
        z = mu + (0.5 * logvar).exp() * batch["eps"]  # reparameterisation
        x_hat = self.decoder(z)  # (B, 3, S, S)
        nll = (x - x_hat).pow(2).flatten(1).sum(-1) / (2 * self.config.pixel_std**2)  # (B,)
        kl = gaussian_kl(mu, logvar)  # (B,)
        loss = (nll + self.config.beta * kl).mean() / x[0].numel()
        with torch.no_grad():
            mse = (x - x_hat).pow(2).mean().item()
            std = feature_std(mu)
        return loss, {"loss": loss.item(), "mse": mse, "kl": kl.mean().item(), "std": std}

    @torch.no_grad()
    def reconstruct(self, frames: Tensor) -> Tensor:
        """For inspection: frames (B, 3, S, S) in [0, 1] (or uint8) -> the decoder's picture of their means."""
        x = to_float(frames) if frames.dtype == torch.uint8 else frames.float()
        return self.decoder(self.encoder(x))


__all__ = ["VAE", "VAEConfig", "Decoder", "gaussian_kl"]
