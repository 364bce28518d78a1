"""Masked autoencoder (He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners").

    x = patchify(frame)                            the frame as N patches of P*P*3 pixels, row-major
    keep 1 - mask_ratio of the patches at random   per frame: argsort of uniform noise (drawn in make_batch)
    z = ViT([cls; visible patches] + E_pos)        the encoder's own blocks + LayerNorm, visible tokens only
    u = unshuffle([W z; mask token x masked])      decoder: linear embed, one shared learned mask token
    y = Linear(LN(Blocks(u + sincos pos)))         a small transformer predicts every patch's P*P*3 pixels
    loss = mean over masked patches of ||y - t||^2 / (P*P*3),  t = the patch, normalised by its own mean
                                                   and std when norm_pix_loss

The design is asymmetric: the encoder never sees mask tokens (75% fewer tokens, so it is cheap), and the
decoder is thrown away after pretraining. Only a `ViTEncoder` can be trained this way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from video2reward.encoders.vit import (
    Block,
    ViTEncoder,
    interpolate_pos_embed,
    sincos_pos_embed,
)
from video2reward.errors import ConfigError
from video2reward.objectives.base import Objective, feature_std, to_float
from video2reward.video.frame_sampler import FrameBatch
from video2reward.video.views import light_crop


@dataclass
class MAEConfig:
    """Hyper-parameters of `MAE`; every field is JSON-able."""

    mask_ratio: float = field(
        default=0.75, metadata={"help": "Fraction of each frame's patches hidden from the encoder, in (0, 1)."}
    )
    decoder_dim: int = field(default=64, metadata={"help": "Token width of the (discarded) decoder."})
    decoder_depth: int = field(default=2, metadata={"help": "Transformer blocks in the decoder."})
    decoder_heads: int = field(default=4, metadata={"help": "Attention heads per decoder block; divides decoder_dim."})
    decoder_mlp_ratio: float = field(default=4.0, metadata={"help": "Decoder MLP hidden width / decoder_dim."})
    norm_pix_loss: bool = field(
        default=True,
        metadata={"help": "Predict every patch normalised by its own pixel mean and std (better features)."},
    )
    min_crop_scale: float = field(
        default=0.5,
        metadata={"help": "Light augmentation: random resized crop covering [min_crop_scale, 1] of the frame; "
                  "1 turns cropping off. No colour jitter."},
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"MAE: mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.decoder_dim < 4 or self.decoder_dim % 4 or self.decoder_heads < 1 or self.decoder_dim % self.decoder_heads:
            raise ConfigError(
                f"MAE: decoder_dim {self.decoder_dim} must be a multiple of 4 (sincos positions) and of "
                f"decoder_heads {self.decoder_heads}"
            )
        if self.decoder_depth < 0 or self.decoder_mlp_ratio <= 0:
            raise ConfigError("MAE: need decoder_depth >= 0 and decoder_mlp_ratio > 0")
        if not 0.0 < self.min_crop_scale <= 1.0:
            raise ConfigError(f"MAE: min_crop_scale must be in (0, 1], got {self.min_crop_scale}")


def patchify(imgs: Tensor, p: int) -> Tensor:
    """(B, 3, H, W) -> (B, N, p*p*3), patches row-major (as PatchEmbed orders its tokens), pixels (row, col, channel)."""
    B, C, H, W = imgs.shape
    if H % p or W % p:
        raise ValueError(f"image size {H}x{W} is not divisible by the patch size {p}")
    h, w = H // p, W // p
    x = imgs.reshape(B, C, h, p, w, p)
    x = torch.einsum("bchpwq->bhwpqc", x)  # (B, h, w, p, p, C)
    return x.reshape(B, h * w, p * p * C)


def unpatchify(x: Tensor, p: int, grid: tuple[int, int] | None = None) -> Tensor:
    """(B, N, p*p*3) -> (B, 3, H, W); the inverse of `patchify`. `grid` (h, w) defaults to square."""
    B, N, _ = x.shape
    if grid is None:
        h = w = int(round(N**0.5))
    else:
        h, w = grid
    if h * w != N:
        raise ValueError(f"{N} patches do not form a {h}x{w} grid")
    x = x.reshape(B, h, w, p, p, 3)
    x = torch.einsum("bhwpqc->bchpwq", x)  # (B, 3, h, p, w, p)
    return x.reshape(B, 3, h * p, w * p)


def num_visible(num_patches: int, mask_ratio: float) -> int:
    """Patches the encoder sees: round(N * (1 - mask_ratio)), at least 1 and at most N - 1."""
    return min(max(int(round(num_patches * (1.0 - mask_ratio))), 1), num_patches - 1)


def shuffle_ids(batch: int, num_patches: int, generator: torch.Generator | None = None, device=None) -> Tensor:
    """(B, N) long: a random permutation per frame (argsort of uniform noise); its first patches are kept."""
    noise = torch.rand(batch, num_patches, generator=generator, device=device)
    return torch.argsort(noise, dim=1)


def mask_from_ids(ids_shuffle: Tensor, len_keep: int) -> Tensor:
    """(B, N) float: 0 for the visible patches ids_shuffle[:, :len_keep], 1 for the masked ones."""
    mask = torch.ones(ids_shuffle.shape, device=ids_shuffle.device)
    mask[:, :len_keep] = 0
    return torch.gather(mask, 1, torch.argsort(ids_shuffle, dim=1))  # back to patch order


def patch_targets(patches: Tensor, norm_pix_loss: bool, eps: float = 1e-6) -> Tensor:
    """Targets (B, N, K): the pixels, or each patch as (x - mean) / sqrt(var + eps) over its K pixels
    (unbiased var, as in the MAE reference code)."""
    if not norm_pix_loss:
        return patches
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps) ** 0.5


def masked_patch_loss(pred: Tensor, patches: Tensor, mask: Tensor, norm_pix_loss: bool, eps: float = 1e-6) -> Tensor:
    """Mean squared error per patch (mean over its pixels), averaged over the masked patches (mask == 1) only."""
    err = (pred - patch_targets(patches, norm_pix_loss, eps)).pow(2).mean(dim=-1)  # (B, N)
    return (err * mask).sum() / mask.sum().clamp(min=1.0)


class MAEDecoder(nn.Module):
    """Encoder tokens (B, 1 + n_vis, D) + ids_restore -> predicted patches (B, N, P*P*3)."""

    def __init__(self, encoder_dim: int, grid: int, patch_size: int, config: MAEConfig) -> None:
        super().__init__()
        d = config.decoder_dim
        self.grid = grid
        self.embed = nn.Linear(encoder_dim, d)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        self.register_buffer("pos_embed", sincos_pos_embed(d, grid), persistent=False)  # (1, 1 + g*g, d), fixed
        self.blocks = nn.ModuleList(
            Block(d, config.decoder_heads, config.decoder_mlp_ratio, 0.0) for _ in range(config.decoder_depth)
        )
        self.norm = nn.LayerNorm(d)
        self.pred = nn.Linear(d, patch_size * patch_size * 3)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, latent: Tensor, ids_restore: Tensor, grid_hw: tuple[int, int]) -> Tensor:
        x = self.embed(latent)  # (B, 1 + n_vis, d)
        B, N = ids_restore.shape
        masks = self.mask_token.expand(B, N - (x.shape[1] - 1), -1)  # (B, N - n_vis, d)
        x_ = torch.cat([x[:, 1:], masks], dim=1)  # (B, N, d) in shuffled order
        x_ = torch.gather(x_, 1, ids_restore[..., None].expand(-1, -1, x.shape[2]))  # (B, N, d) patch order
        x = torch.cat([x[:, :1], x_], dim=1) + interpolate_pos_embed(self.pos_embed, self.grid, grid_hw)
        for block in self.blocks:
            x = block(x)  # (B, 1 + N, d)
        return self.pred(self.norm(x))[:, 1:]  # (B, N, P*P*3), class token dropped


class MAE(Objective):
    """Masked-autoencoder pretraining of a `ViTEncoder`; the decoder is thrown away afterwards."""

    def __init__(self, encoder: nn.Module, config: MAEConfig | None = None) -> None:
        super().__init__()
        if not isinstance(encoder, ViTEncoder):
            raise ConfigError(
                f"MAE needs --encoder vit: it hides patch tokens from a Vision Transformer, and a "
                f"{type(encoder).__name__} has no patch tokens; pass --encoder vit or pick another objective"
            )
        self.config = config = config or MAEConfig()
        self.encoder = encoder
        self.patch_size = encoder.patch_size
        self.image_size = encoder.config.image_size
        self.decoder = MAEDecoder(encoder.dim, encoder.config.grid, encoder.patch_size, config)

    # -- batches -------------------------------------------------------------------------------------------

    def make_batch(self, batch: FrameBatch, generator: torch.Generator) -> dict[str, Any]:
        """{"frames": (B, 3, S, S) float crops in [0, 1], "ids_shuffle": (B, N) long, a permutation per frame}."""
        frames = to_float(batch.frames)
        S = self.image_size
        frames = light_crop(frames, generator, S, self.config.min_crop_scale)
        gh, gw = self.encoder.grid_size(S, S)
        return {"frames": frames, "ids_shuffle": shuffle_ids(frames.shape[0], gh * gw, generator)}

    # -- model ---------------------------------------------------------------------------------------------

    def forward_encoder(self, frames: Tensor, ids_shuffle: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Frames (B, 3, H, W) -> (latent (B, 1 + n_vis, D), mask (B, N), ids_restore (B, N)).
        Only the class token and the visible patch tokens go through the encoder's blocks."""
        enc = self.encoder
        H, W = frames.shape[-2:]
        pos = enc.pos_embed_for(H, W)  # (1, 1 + N, D)
        x = enc.patch_embed((frames - 0.5) * 4.0) + pos[:, 1:]  # (B, N, D), same scaling as ViTEncoder.embed
        B, N, D = x.shape
        if ids_shuffle.shape != (B, N):
            raise ValueError(f"ids_shuffle has shape {tuple(ids_shuffle.shape)}, expected {(B, N)}")
        len_keep = num_visible(N, self.config.mask_ratio)
        ids_keep = ids_shuffle[:, :len_keep]
        x = torch.gather(x, 1, ids_keep[..., None].expand(-1, -1, D))  # (B, n_vis, D)
        cls = (enc.cls_token + pos[:, :1]).expand(B, -1, -1)  # (B, 1, D)
        x = enc.pos_drop(torch.cat([cls, x], dim=1))  # (B, 1 + n_vis, D)
        for block in enc.blocks:
            x = block(x)
        return enc.norm(x), mask_from_ids(ids_shuffle, len_keep), torch.argsort(ids_shuffle, dim=1)

    def predict(self, frames: Tensor, ids_shuffle: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(latent (B, 1 + n_vis, D), pred (B, N, P*P*3), mask (B, N))."""
        latent, mask, ids_restore = self.forward_encoder(frames, ids_shuffle)
        grid_hw = self.encoder.grid_size(*frames.shape[-2:])
        return latent, self.decoder(latent, ids_restore, grid_hw), mask

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        frames = batch["frames"]
        latent, pred, mask = self.predict(frames, batch["ids_shuffle"])
        loss = masked_patch_loss(pred, patchify(frames, self.patch_size), mask, self.config.norm_pix_loss)
        with torch.no_grad():
            std = feature_std(latent[:, 0])  # class tokens (B, D)
        return loss, {"loss": loss.item(), "std": std}

    @torch.no_grad()
    def reconstruct(
        self, frames: Tensor, generator: torch.Generator | None = None, ids_shuffle: Tensor | None = None
    ) -> dict[str, Tensor]:
        """For inspection: frames (B, 3, H, W) uint8 or float in [0, 1] ->
        {"pred": (B, 3, H, W) every patch predicted, "mask": (B, 1, H, W) 1 where hidden,
         "composite": visible patches from the input, hidden ones predicted}, all in [0, 1].
        With norm_pix_loss the predictions are un-normalised with each true patch's mean and std."""
        x = to_float(frames) if frames.dtype == torch.uint8 else frames.float()
        p = self.patch_size
        grid_hw = self.encoder.grid_size(*x.shape[-2:])
        if ids_shuffle is None:
            ids_shuffle = shuffle_ids(x.shape[0], grid_hw[0] * grid_hw[1], generator, device=x.device)
        _, pred, mask = self.predict(x, ids_shuffle)
        patches = patchify(x, p)
        if self.config.norm_pix_loss:
            mean = patches.mean(dim=-1, keepdim=True)
            var = patches.var(dim=-1, keepdim=True)
            pred = pred * (var + 1e-6) ** 0.5 + mean
        composite = torch.where(mask[..., None].bool(), pred, patches)
        mask_img = unpatchify(mask[..., None].expand(-1, -1, p * p * 3), p, grid_hw)[:, :1]
        return {
            "pred": unpatchify(pred, p, grid_hw).clamp(0, 1),
            "mask": mask_img,
            "composite": unpatchify(composite, p, grid_hw).clamp(0, 1),
        }


__all__ = [
    "MAE",
    "MAEConfig",
    "MAEDecoder",
    "patchify",
    "unpatchify",
    "num_visible",
    "shuffle_ids",
    "mask_from_ids",
    "patch_targets",
    "masked_patch_loss",
]
