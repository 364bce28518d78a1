"""A small Vision Transformer frame encoder, as in Dosovitskiy et al. 2021, "An Image is Worth 16x16
Words" (the ViT paper; equation numbers below are theirs).

    z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos          (1)  patch embedding + class token + positions
    z'_l = MSA(LN(z_{l-1})) + z_{l-1},      l = 1..L        (2)  pre-LN self-attention block
    z_l = MLP(LN(z'_l)) + z'_l,             l = 1..L        (3)  pre-LN MLP block
    y = LN(z_L^0)                                           (4)  output: the class token

The patch embedding E is a Conv2d with kernel = stride = patch size, which is exactly flattening each
P x P x 3 patch and multiplying by a (3 P^2, D) matrix. `forward_tokens` returns every token (a masked
autoencoder needs the patch tokens); `forward` returns the class token. Frames of another size than
the config's are handled by interpolating the learned position embedding over the patch grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from video2reward.errors import ConfigError

POS_INITS = ("trunc_normal", "sincos")


@dataclass
class ViTConfig:
    """Hyper-parameters of `ViTEncoder`; every field is JSON-able."""

    image_size: int = field(
        default=64, metadata={"help": "Side of the square input frames in pixels; a multiple of patch_size."}
    )
    patch_size: int = field(default=8, metadata={"help": "Side P of the square patches (tokens) in pixels."})
    dim: int = field(default=128, metadata={"help": "Token width D, which is also the output vector size."})
    depth: int = field(default=4, metadata={"help": "Number L of transformer blocks."})
    heads: int = field(default=4, metadata={"help": "Attention heads per block; must divide dim."})
    mlp_ratio: float = field(default=2.0, metadata={"help": "MLP hidden width as a multiple of dim."})
    dropout: float = field(
        default=0.0,
        metadata={"help": "Dropout after every dense layer but qkv, and after adding position embeddings."},
    )
    pos_init: str = field(
        default="sincos",
        metadata={
            "help": "Initial value of the learned position embedding: 'trunc_normal' (std 0.02, as in the "
            "ViT paper's code) or 'sincos' (2D sine-cosine, as in MAE; learns object positions ~2x faster)."
        },
    )

    def __post_init__(self) -> None:
        if self.patch_size < 1 or self.image_size < self.patch_size or self.image_size % self.patch_size:
            raise ConfigError(
                f"ViT encoder: image_size {self.image_size} must be a positive multiple of patch_size "
                f"{self.patch_size}; change one of them"
            )
        if self.dim < 1 or self.heads < 1 or self.dim % self.heads:
            raise ConfigError(f"ViT encoder: dim {self.dim} must be a positive multiple of heads {self.heads}")
        if self.depth < 0 or self.mlp_ratio <= 0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError("ViT encoder: need depth >= 0, mlp_ratio > 0 and 0 <= dropout < 1")
        if self.pos_init not in POS_INITS:
            raise ConfigError(f"ViT encoder: pos_init {self.pos_init!r} is not one of {', '.join(POS_INITS)}")
        if self.pos_init == "sincos" and self.dim % 4:
            raise ConfigError(f"ViT encoder: pos_init 'sincos' needs dim divisible by 4, got {self.dim}")

    @property
    def grid(self) -> int:
        """Patches per side, S / P."""
        return self.image_size // self.patch_size


class PatchEmbed(nn.Module):
    """(B, 3, H, W) -> (B, N, D) with N = (H/P)(W/P): each P x P patch, flattened, times E (3 P^2, D)."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)  # (B, D, H/P, W/P)
        return x.flatten(2).transpose(1, 2)  # (B, N, D), patches in row-major order


class Attention(nn.Module):
    """Multi-head self-attention: softmax(Q K^T / sqrt(d_head)) V per head, heads concatenated, projected."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim)  # (B, N, 3, heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, head_dim), scaled by 1/sqrt(head_dim)
        out = out.transpose(1, 2).reshape(B, N, D)  # (B, N, D): heads concatenated
        return self.drop(self.proj(out))  # (B, N, D)


class MLP(nn.Module):
    """Two dense layers with a GELU between them."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(F.gelu(self.fc1(x)))  # (B, N, hidden)
        return self.drop(self.fc2(x))  # (B, N, D)


class Block(nn.Module):
    """Pre-LN transformer block, eqs. (2) and (3)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(round(dim * mlp_ratio)), dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))  # z'_l = MSA(LN(z_{l-1})) + z_{l-1}      (2)
        return x + self.mlp(self.norm2(x))  # z_l = MLP(LN(z'_l)) + z'_l             (3)


def _trunc_normal(t: Tensor, std: float = 0.02) -> None:
    """Normal(0, std) cut at +-2 std. (timm's `trunc_normal_(t, std=.02)` cuts at +-2 absolute, i.e.
    not at all; the truncation it means is this one.)"""
    nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)


def sincos_pos_embed(dim: int, grid: int) -> Tensor:
    """2D sine-cosine position embedding (1, 1 + grid^2, dim), zeros in the class slot (as in MAE):
    the first half of the dims encodes the row, the second half the column, each as
    [sin(pos * w_k), cos(pos * w_k)] with w_k = 10000^(-k / (dim/4)), k = 0 .. dim/4 - 1."""
    omega = 10000.0 ** -(torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))  # (dim/4,)
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")  # (g, g) each
    parts = []
    for pos in (rows.flatten(), cols.flatten()):
        angles = pos[:, None].double() * omega[None]  # (g*g, dim/4)
        parts += [angles.sin(), angles.cos()]
    table = torch.cat(parts, dim=1).float()  # (g*g, dim)
    return torch.cat([torch.zeros(1, dim), table], dim=0)[None]  # (1, 1 + g*g, dim)


def interpolate_pos_embed(pos_embed: Tensor, grid_from: int, grid_hw: tuple[int, int]) -> Tensor:
    """Resample a (1, 1 + g*g, D) position embedding (class slot first) to a (gh, gw) patch grid.

    The class token's embedding is kept; the patch embeddings are treated as a (D, g, g) image and
    resized bicubically, as in the ViT paper's fine-tuning at higher resolution (section 3.2).
    """
    if (grid_from, grid_from) == tuple(grid_hw):
        return pos_embed
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]  # (1, 1, D), (1, g*g, D)
    D = pos_embed.shape[-1]
    grid = patch_pos.reshape(1, grid_from, grid_from, D).permute(0, 3, 1, 2)  # (1, D, g, g)
    grid = F.interpolate(grid, size=grid_hw, mode="bicubic", align_corners=False)  # (1, D, gh, gw)
    patch_pos = grid.permute(0, 2, 3, 1).reshape(1, grid_hw[0] * grid_hw[1], D)  # (1, gh*gw, D)
    return torch.cat([cls_pos, patch_pos], dim=1)  # (1, 1 + gh*gw, D)


class ViTEncoder(nn.Module):
    """Frames (B, 3, H, W) in [0, 1] -> class-token vectors (B, dim). H and W must be multiples of P."""

    def __init__(self, config: ViTConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ViTConfig()
        self.dim: int = config.dim
        self.patch_size = config.patch_size
        self.num_patches = config.grid**2  # N = (S/P)^2
        self.patch_embed = PatchEmbed(config.patch_size, config.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))  # x_class
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.num_patches, config.dim))  # E_pos
        self.pos_drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(config.dim, config.heads, config.mlp_ratio, config.dropout) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim)
        self._init_weights()

    def _init_weights(self) -> None:
        """Reference-ViT init: trunc-normal(0.02) for positions (unless pos_init is 'sincos'), class
        token and dense weights; zero biases; unit LayerNorms; the patch projection like the (3 P^2, D)
        linear map it is (xavier-uniform, as in MAE)."""
        if self.config.pos_init == "sincos":
            with torch.no_grad():
                self.pos_embed.copy_(sincos_pos_embed(self.dim, self.config.grid))
        else:
            _trunc_normal(self.pos_embed)
        _trunc_normal(self.cls_token)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                _trunc_normal(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.proj.bias)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid (H/P, W/P) for a frame size; ValueError if it does not divide into patches."""
        P = self.patch_size
        if height % P or width % P or height < P or width < P:
            raise ValueError(
                f"frame size {height}x{width} is not divisible by the ViT patch size {P}; "
                f"resize frames to a multiple of {P} (e.g. {max(1, round(height / P)) * P}x{max(1, round(width / P)) * P})"
            )
        return height // P, width // P

    def pos_embed_for(self, height: int, width: int) -> Tensor:
        """E_pos (1, 1 + N, D) for a frame size, interpolated when it differs from the config's."""
        return interpolate_pos_embed(self.pos_embed, self.config.grid, self.grid_size(height, width))

    def embed(self, frames: Tensor) -> Tensor:
        """Eq. (1): frames (B, 3, H, W) -> z_0 (B, 1 + N, D), before any transformer block."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected frames of shape (B, 3, H, W), got {tuple(frames.shape)}")
        H, W = frames.shape[-2:]
        pos = self.pos_embed_for(H, W)  # (1, 1 + N, D); also checks the size
        x = self.patch_embed((frames - 0.5) * 4.0)  # (B, N, D): [0, 1] pixels -> about unit variance
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        z = torch.cat([cls, x], dim=1) + pos  # z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos   (1)
        return self.pos_drop(z)  # (B, 1 + N, D)

    def forward_tokens(self, frames: Tensor) -> Tensor:
        """All tokens after the final LayerNorm: (B, 1 + N, D); index 0 is the class token."""
        z = self.embed(frames)  # (B, 1 + N, D)
        for block in self.blocks:
            z = block(z)  # (B, 1 + N, D), eqs. (2)-(3)
        return self.norm(z)  # (B, 1 + N, D)

    def forward(self, frames: Tensor) -> Tensor:
        """Frames (B, 3, H, W) float in [0, 1] -> (B, dim)."""
        return self.forward_tokens(frames)[:, 0]  # y = LN(z_L^0)   (4)


def num_tokens(image_size: int, patch_size: int) -> int:
    """Tokens the encoder produces for a square frame: 1 + (S/P)^2."""
    return 1 + (image_size // patch_size) ** 2


__all__ = [
    "ViTConfig",
    "ViTEncoder",
    "PatchEmbed",
    "Attention",
    "Block",
    "interpolate_pos_embed",
    "sincos_pos_embed",
    "num_tokens",
]
