"""Joint-embedding predictive architectures: I-JEPA (Assran et al. 2023, "Self-Supervised Learning from Images
with a Joint-Embedding Predictive Architecture") and V-JEPA (Bardes et al. 2024, "Revisiting Feature Prediction
for Learning Visual Representations from Video").

Predict, in feature space, what a slowly moving copy of the encoder says about the hidden parts of a picture
from what the encoder says about the visible part; no pixels are reconstructed and no two augmented views are
pulled together:

    x = patch tokens of the frame (I-JEPA) or of a clip of frames (V-JEPA), N per frame
    targets:  M blocks of patches, one size per batch (scale s ~ U(0.15, 0.2) of the grid, aspect ~ U(0.75, 1.5)),
              placed at random per sample; V-JEPA masks the same blocks in every frame of the clip ("tubes"),
              so a hidden patch cannot be copied from the neighbouring frame
    context:  one large block (scale ~ U(0.85, 1)) minus every target patch
    s_y = LN(f_target(x))[targets]              target encoder: an EMA copy, sees every patch, no gradient
    s_x = f_context(x[context])                 the encoder itself, the context tokens (and its class token) only
    s^_y = g(s_x, positions of the targets)     a narrow transformer: context tokens + one mask token per target
                                                patch (carrying its position), one pass per target block
    loss = mean |s^_y - s_y|^p                  I-JEPA: smooth L1 (its reference code); V-JEPA: L1
    theta_target <- m theta_target + (1 - m) theta   after every step, m rising linearly 0.996 -> 1

The encoder's class token takes part in the context and the predictor reads it, so the vector `v2r train`
keeps (the class token) is trained too. Here a "clip" is a frame and its temporal neighbour (the frame
sampler's pairs, `neighbour_window` kept frames apart), each frame tokenised alone (tubelets one frame deep)
with a learned embedding of its place in the clip: V-JEPA on 16-frame clips does not fit a CPU step.
Only a `ViTEncoder` can be trained this way (it needs patch tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from video2reward.encoders.vit import (
    Block,
    ViTEncoder,
    interpolate_pos_embed,
    sincos_pos_embed,
)
from video2reward.errors import ConfigError
from video2reward.objectives.base import Objective, feature_std, to_float
from video2reward.objectives.momentum import ema_update, frozen_copy
from video2reward.video.frame_sampler import FrameBatch
from video2reward.video.views import light_crop


@dataclass
class JEPAConfig:
    """Hyper-parameters of `IJEPA` / `VJEPA`; every field is JSON-able (tuples come back as lists)."""

    targets: int = field(default=4, metadata={"help": "Target blocks M per sample (the paper: 4)."})
    target_scale: tuple[float, float] = field(
        default=(0.15, 0.2), metadata={"help": "Each target block's share of the patch grid, drawn per batch."})
    target_aspect: tuple[float, float] = field(
        default=(0.75, 1.5), metadata={"help": "Aspect ratio (height / width) range of the target blocks."})
    context_scale: tuple[float, float] = field(
        default=(0.85, 1.0), metadata={"help": "The context block's share of the grid, before the targets are cut "
                                                "out of it."})
    predictor_dim: int = field(default=64, metadata={"help": "Token width of the (discarded) predictor."})
    predictor_depth: int = field(default=2, metadata={"help": "Transformer blocks of the predictor."})
    predictor_heads: int = field(default=4, metadata={"help": "Attention heads of the predictor; divides its width."})
    momentum_start: float = field(default=0.996, metadata={"help": "EMA momentum of the target encoder at step 0."})
    momentum_end: float = field(default=1.0, metadata={"help": "EMA momentum at the last step (linear schedule)."})
    min_crop_scale: float = field(
        default=0.5, metadata={"help": "Random resized crop covering [min_crop_scale, 1] of the frame (the same "
                                       "crop for every frame of a clip); 1 turns it off. No colour jitter."})
    neighbour_window: int = field(
        default=4, metadata={"help": "V-JEPA: the clip's second frame is at most this many kept frames away."})

    def __post_init__(self) -> None:
        self.target_scale = tuple(float(v) for v in self.target_scale)
        self.target_aspect = tuple(float(v) for v in self.target_aspect)
        self.context_scale = tuple(float(v) for v in self.context_scale)
        for name in ("target_scale", "context_scale"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi <= 1.0:
                raise ConfigError(f"JEPA: {name} must be 0 < low <= high <= 1, got {(lo, hi)}")
        if not 0.0 < self.target_aspect[0] <= self.target_aspect[1]:
            raise ConfigError(f"JEPA: target_aspect must be 0 < low <= high, got {self.target_aspect}")
        if self.targets < 1 or self.predictor_depth < 1 or self.neighbour_window < 1:
            raise ConfigError("JEPA: targets, predictor_depth and neighbour_window must be >= 1")
        if self.predictor_dim % 4 or self.predictor_dim % self.predictor_heads:
            raise ConfigError(f"JEPA: predictor_dim {self.predictor_dim} must be a multiple of 4 and of "
                              f"predictor_heads {self.predictor_heads}")
        if not 0.0 <= self.momentum_start <= self.momentum_end <= 1.0:
            raise ConfigError("JEPA: need 0 <= momentum_start <= momentum_end <= 1")
        if not 0.0 < self.min_crop_scale <= 1.0:
            raise ConfigError(f"JEPA: min_crop_scale must be in (0, 1], got {self.min_crop_scale}")


def _block_size(scale: float, aspect: float, gh: int, gw: int) -> tuple[int, int]:
    """(h, w) patches of a block covering `scale` of a gh x gw grid with height / width = aspect."""
    area = scale * gh * gw
    h = max(1, min(gh, int(round(math.sqrt(area * aspect)))))
    w = max(1, min(gw, int(round(math.sqrt(area / aspect)))))
    return h, w


def _block(h: int, w: int, gh: int, gw: int, generator: torch.Generator) -> Tensor:
    """(gh * gw,) bool: an h x w block at a random place of the grid."""
    top = int(torch.randint(0, gh - h + 1, (1,), generator=generator))
    left = int(torch.randint(0, gw - w + 1, (1,), generator=generator))
    mask = torch.zeros(gh, gw, dtype=torch.bool)
    mask[top : top + h, left : left + w] = True
    return mask.flatten()


def sample_masks(batch: int, gh: int, gw: int, config: JEPAConfig, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """I-JEPA's multi-block masks for a batch: (context (B, n_ctx) long, targets (B, M, n_tgt) long) patch indices.

    The target block size and the context block size are drawn once per batch, their places per sample;
    the context loses every target patch, then every sample keeps the batch's smallest context count (a
    random subset of its own), so the batch stacks. A context that would be empty keeps one patch outside the
    targets, or any one patch."""
    u = torch.rand(3, generator=generator)
    lo, hi = config.target_scale
    a_lo, a_hi = config.target_aspect
    th, tw = _block_size(lo + (hi - lo) * float(u[0]), a_lo + (a_hi - a_lo) * float(u[1]), gh, gw)
    c_lo, c_hi = config.context_scale
    ch, cw = _block_size(c_lo + (c_hi - c_lo) * float(u[2]), 1.0, gh, gw)
    targets, contexts = [], []
    for _ in range(batch):
        blocks = [_block(th, tw, gh, gw, generator) for _ in range(config.targets)]  # M x (N,)
        hidden = torch.stack(blocks).any(0)  # (N,)
        context = _block(ch, cw, gh, gw, generator) & ~hidden
        if not context.any():
            context = ~hidden if (~hidden).any() else torch.zeros_like(hidden).index_fill_(0, torch.tensor([0]), True)
        targets.append(torch.stack([b.nonzero().squeeze(1) for b in blocks]))  # (M, th * tw)
        contexts.append(context.nonzero().squeeze(1))
    keep = min(len(c) for c in contexts)
    contexts = [c[torch.randperm(len(c), generator=generator)[:keep].sort().values] for c in contexts]
    return torch.stack(contexts), torch.stack(targets)


class Predictor(nn.Module):
    """Context tokens (B, 1 + n, D) + target positions -> predicted target features (B, M, n_tgt, D)."""

    def __init__(self, encoder_dim: int, grid: int, frames: int, config: JEPAConfig) -> None:
        super().__init__()
        d = config.predictor_dim
        self.grid = grid
        self.embed = nn.Linear(encoder_dim, d)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        self.frame_embed = nn.Parameter(torch.zeros(1, frames, 1, d))  # which frame of the clip a token is from
        self.register_buffer("pos_embed", sincos_pos_embed(d, grid), persistent=False)  # (1, 1 + g*g, d)
        self.blocks = nn.ModuleList(Block(d, config.predictor_heads, 4.0, 0.0) for _ in range(config.predictor_depth))
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, encoder_dim)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.frame_embed, std=0.02)

    def positions(self, grid_hw: tuple[int, int]) -> Tensor:
        """(F, N, d): every patch's position embedding, plus its frame's."""
        pos = interpolate_pos_embed(self.pos_embed, self.grid, grid_hw)[:, 1:]  # (1, N, d)
        return pos + self.frame_embed[0]  # (F, N, d)

    def forward(self, context: Tensor, ctx_ids: Tensor, tgt_ids: Tensor, grid_hw: tuple[int, int]) -> Tensor:
        """context (B, 1 + F*n_ctx, D): the class token then the context tokens frame by frame; ctx_ids
        (B, n_ctx) and tgt_ids (B, M, n_tgt) patch indices (the same in every frame) -> (B, M, F*n_tgt, D)."""
        B, M, n_tgt = tgt_ids.shape
        pos = self.positions(grid_hw)  # (F, N, d)
        frames = pos.shape[0]
        x = self.embed(context)  # (B, 1 + F*n_ctx, d)
        ctx_pos = pos[:, ctx_ids].permute(1, 0, 2, 3).reshape(B, -1, pos.shape[-1])  # (B, F*n_ctx, d)
        x = torch.cat([x[:, :1], x[:, 1:] + ctx_pos], dim=1)
        tgt_pos = pos[:, tgt_ids].permute(1, 2, 0, 3, 4).reshape(B * M, frames * n_tgt, -1)  # (B*M, F*n_tgt, d)
        queries = self.mask_token + tgt_pos  # one mask token per target patch, at its place
        x = torch.cat([x.repeat_interleave(M, dim=0), queries], dim=1)  # (B*M, 1 + F*n_ctx + F*n_tgt, d)
        for block in self.blocks:
            x = block(x)
        out = self.out(self.norm(x[:, -frames * n_tgt :]))  # (B*M, F*n_tgt, D)
        return out.reshape(B, M, frames * n_tgt, -1)


class IJEPA(Objective):
    """I-JEPA pretraining of a `ViTEncoder` on single frames; the predictor and target encoder are discarded."""

    clip_frames = 1
    loss_name = "smooth_l1"

    def __init__(self, encoder: nn.Module, config: JEPAConfig | None = None) -> None:
        super().__init__()
        if not isinstance(encoder, ViTEncoder):
            raise ConfigError(f"{type(self).__name__} needs --encoder vit: it predicts the features of hidden patch "
                              f"tokens, and a {type(encoder).__name__} has no patch tokens; pass --encoder vit or "
                              f"pick another objective")
        self.config = config = config or JEPAConfig()
        self.encoder = encoder
        self.target_encoder = frozen_copy(encoder)
        self.predictor = Predictor(encoder.dim, encoder.config.grid, self.clip_frames, config)
        self.momentum = config.momentum_start

    # -- batches -------------------------------------------------------------------------------------------

    def clips(self, batch: FrameBatch) -> Tensor:
        """uint8 (B, F, 3, S, S): each sample's frames (I-JEPA: the frame alone)."""
        return batch.frames[:, None]

    def make_batch(self, batch: FrameBatch, generator: torch.Generator) -> dict[str, Any]:
        """{"clips": (B, F, 3, S, S) float in [0, 1], "context": (B, n_ctx) long, "targets": (B, M, n_tgt) long}."""
        clips = to_float(self.clips(batch))
        B, frames = clips.shape[:2]
        S = self.encoder.config.image_size
        flat = clips.permute(1, 0, 2, 3, 4).reshape(frames, B, -1)  # one crop per clip: frames side by side
        flat = flat.permute(1, 0, 2).reshape(B, frames * 3, *clips.shape[-2:])  # (B, F*3, H, W)
        flat = light_crop(flat, generator, S, self.config.min_crop_scale)
        gh, gw = self.encoder.grid_size(S, S)
        context, targets = sample_masks(B, gh, gw, self.config, generator)
        return {"clips": flat.reshape(B, frames, 3, S, S), "context": context, "targets": targets}

    # -- model ---------------------------------------------------------------------------------------------

    def patch_tokens(self, encoder: ViTEncoder, frames: Tensor) -> Tensor:
        """(B*F, 3, H, W) -> patch embeddings + positions (B*F, N, D), before any block."""
        pos = encoder.pos_embed_for(*frames.shape[-2:])  # (1, 1 + N, D)
        return encoder.patch_embed((frames - 0.5) * 4.0) + pos[:, 1:]  # as ViTEncoder.embed scales pixels

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        clips, ctx_ids, tgt_ids = batch["clips"], batch["context"], batch["targets"]
        B, frames = clips.shape[:2]
        enc = self.encoder
        grid_hw = enc.grid_size(*clips.shape[-2:])
        with torch.no_grad():  # s_y = LN(f_target(x)) at the target patches, per frame
            full = self.target_encoder.forward_tokens(clips.flatten(0, 1))[:, 1:]  # (B*F, N, D)
            full = F.layer_norm(full, full.shape[-1:]).reshape(B, frames, *full.shape[1:])  # (B, F, N, D)
            idx = tgt_ids.reshape(B, 1, -1, 1).expand(-1, frames, -1, full.shape[-1])  # (B, F, M*n_tgt, D)
            target = torch.gather(full, 2, idx).reshape(B, frames, *tgt_ids.shape[1:], -1)  # (B, F, M, n_tgt, D)
            target = target.permute(0, 2, 1, 3, 4).flatten(2, 3)  # (B, M, F*n_tgt, D): frame-major, as predicted
        tokens = self.patch_tokens(enc, clips.flatten(0, 1)).reshape(B, frames, -1, enc.dim)  # (B, F, N, D)
        idx = ctx_ids[:, None, :, None].expand(-1, frames, -1, enc.dim)
        visible = torch.gather(tokens, 2, idx).flatten(1, 2)  # (B, F*n_ctx, D)
        pos = enc.pos_embed_for(*clips.shape[-2:])
        cls = (enc.cls_token + pos[:, :1]).expand(B, -1, -1)  # (B, 1, D)
        x = enc.pos_drop(torch.cat([cls, visible], dim=1))  # (B, 1 + F*n_ctx, D)
        for block in enc.blocks:
            x = block(x)
        context = enc.norm(x)  # s_x, the class token first
        predicted = self.predictor(context, ctx_ids, tgt_ids, grid_hw)  # (B, M, F*n_tgt, D)
        if self.loss_name == "l1":
            loss = (predicted - target).abs().mean()
        else:
            loss = F.smooth_l1_loss(predicted, target)
        with torch.no_grad():
            std = feature_std(context[:, 0])
        return loss, {"loss": loss.item(), "std": std, "momentum": self.momentum}

    def after_step(self, step: int, total_steps: int) -> None:
        """theta_target <- m theta_target + (1 - m) theta, m linear from momentum_start to momentum_end."""
        c = self.config
        self.momentum = c.momentum_start + (c.momentum_end - c.momentum_start) * min(step / max(total_steps, 1), 1.0)
        ema_update(self.target_encoder, self.encoder, self.momentum)


class VJEPA(IJEPA):
    """V-JEPA pretraining on two-frame clips (a frame and its temporal neighbour), tube masks, L1 loss."""

    clip_frames = 2
    loss_name = "l1"

    def __init__(self, encoder: nn.Module, config: JEPAConfig | None = None) -> None:
        super().__init__(encoder, config)
        self.neighbour_window = self.config.neighbour_window  # the frame sampler draws the clips' second frames

    def clips(self, batch: FrameBatch) -> Tensor:
        """uint8 (B, 2, 3, S, S): each frame then its neighbour, in time order (itself when it has none)."""
        other = batch.frames[batch.neighbour]
        later = (batch.time[batch.neighbour] >= batch.time)[:, None, None, None]
        first = torch.where(later, batch.frames, other)
        second = torch.where(later, other, batch.frames)
        return torch.stack([first, second], dim=1)


__all__ = ["IJEPA", "JEPAConfig", "Predictor", "VJEPA", "sample_masks"]
