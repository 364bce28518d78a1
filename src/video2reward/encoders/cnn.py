"""A small ResNet-style CNN frame encoder, sized for a 2-core laptop CPU.

Layout (default config, 64x64 input):

    input  RGB + 2 coordinate channels (x, y)  5 x 64 x 64
    stem   conv3x3 stride 2, 5 -> 32        64x64 -> 32x32
    stage  residual block, 32  -> 32,  s2   32x32 -> 16x16
    stage  residual block, 32  -> 64,  s2   16x16 -> 8x8
    stage  residual block, 64  -> 128, s2   8x8   -> 4x4
    stage  residual block, 128 -> 256, s2   4x4   -> 2x2
    global average + max pool -> linear -> LayerNorm     (B, dim)

Each residual block is He et al.'s "basic block" (conv-norm-act, conv-norm, add, act); a block that
changes shape gets a 1x1 strided conv + norm on its skip path. The norm is GroupNorm, which computes
its statistics per sample: train and eval behave the same, batch size 1 works, and a frame's vector
never depends on the other frames in its batch. Global pooling makes the network size-agnostic: any
image of at least 16 px works; `image_size` only records what the model was trained on.

Where things are must survive global pooling, because progress is often a position. Zero padding at
the borders carries some of it; the coordinate channels (CoordConv) carry it explicitly, and the max
pool keeps a small object's response from being averaged away by a large static background (with
average pooling alone, a 4 px car on a letterboxed MountainCar frame was never picked up: the encoder
collapsed to a constant).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from video2reward.errors import ConfigError

MIN_IMAGE_SIZE = 16

# Named CNNConfig overrides: the small students of `v2r distill --student NAME`. "tiny" was sized by measurement
# (bench/speed.py, torch 2.13 CPU, 1 thread on a loaded 2-core AMD EPYC): embed + progress predict of 64 px frames
# at batch 64 ran at 9,400 frames/s against 3,200 for the default CNN (0.25 M parameters with the head against
# 1.56 M), so 64 px input already clears 3,000 frames/s with room; a smaller input was not needed. Its
# convolutions run faster in NCHW than in channels-last at batch 64 (9,400 vs 7,700 frames/s); the default CNN
# keeps channels-last, which is about even at batch 64 but 1.1 against 1.9 ms a frame at batch 1.
CNN_PRESETS: dict[str, dict] = {
    "tiny": {"stem_channels": 16, "channels": (16, 32, 64), "dim": 64, "channels_last": False},
}


@dataclass
class CNNConfig:
    """Hyper-parameters of `CNNEncoder`; every field is JSON-able (tuples come back as lists)."""

    image_size: int = field(
        default=64, metadata={"help": "Side of the square input frames in pixels (any size >= 16 works)."}
    )
    stem_channels: int = field(
        default=32, metadata={"help": "Channels of the stride-2 3x3 stem convolution."}
    )
    channels: tuple[int, ...] = field(
        default=(32, 64, 128, 256),
        metadata={"help": "Channels of each stage; every stage halves the resolution (stride 2)."},
    )
    blocks_per_stage: int = field(
        default=1, metadata={"help": "Residual blocks per stage (the first one downsamples)."}
    )
    groups: int = field(
        default=8,
        metadata={"help": "GroupNorm groups (lowered to the largest divisor of a layer's channels)."},
    )
    dim: int = field(default=128, metadata={"help": "Size D of the output frame vector."})
    coords: bool = field(
        default=True,
        metadata={"help": "Append two coordinate channels (x, y in [-1, 1]) to the input (CoordConv, Liu et al. "
                  "2018), so where a thing is survives global pooling: progress is often a position."},
    )
    pool: str = field(
        default="avgmax",
        metadata={"help": "Global pooling of the last feature map: 'avg', or 'avgmax' (average and max side by "
                  "side: a small object's strong response is not diluted by a large static background)."},
    )
    out_norm: bool = field(
        default=True, metadata={"help": "Apply a LayerNorm to the output vector."}
    )
    channels_last: bool = field(
        default=True,
        metadata={"help": "Run convolutions in channels-last memory format (faster on CPU)."},
    )

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)  # JSON gives lists back
        if self.image_size < MIN_IMAGE_SIZE:
            raise ConfigError(f"CNN encoder: image_size {self.image_size} is too small; use >= {MIN_IMAGE_SIZE}")
        if not self.channels or min(self.channels) < 1 or self.stem_channels < 1:
            raise ConfigError(f"CNN encoder: channels must be a non-empty list of positive ints, got {self.channels}")
        if self.pool not in ("avg", "avgmax"):
            raise ConfigError(f"CNN encoder: pool must be 'avg' or 'avgmax', got {self.pool!r}")
        if self.blocks_per_stage < 1 or self.dim < 1 or self.groups < 1:
            raise ConfigError("CNN encoder: blocks_per_stage, dim and groups must all be >= 1")


class GroupNorm(nn.GroupNorm):
    """nn.GroupNorm that normalises small bfloat16 / float16 maps in float32 and hands back their dtype.

    torch's channels-last GroupNorm kernel has a slow low-precision path for small maps with few channels per
    group: on a 2-core AVX-512 BF16 CPU (torch 2.13, one thread) a (64, 32, 16, 16) bf16 map took 3.6 ms against
    0.9 ms for convert + float32 norm + convert back, and (64, 64, 8, 8) 0.88 against 0.23 ms; on 32 x 32 maps the
    bf16 kernel is as fast as float32 and converting would only add two passes. Scoring the default model in
    bf16 ran ~15% faster end to end with this than with either kernel alone (bench/speed.py)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype in (torch.bfloat16, torch.float16) and x.shape[-2] * x.shape[-1] < 32 * 32:
            weight = None if self.weight is None else self.weight.float()
            bias = None if self.bias is None else self.bias.float()
            return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).to(x.dtype)
        return super().forward(x)


def group_norm(channels: int, groups: int) -> GroupNorm:
    """GroupNorm with the largest group count <= `groups` that divides `channels`."""
    g = max(d for d in range(1, min(groups, channels) + 1) if channels % d == 0)
    return GroupNorm(g, channels)


class ResidualBlock(nn.Module):
    """Basic residual block: act(norm(conv(act(norm(conv(x))))) + skip(x)), optionally strided."""

    def __init__(self, c_in: int, c_out: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = group_norm(c_out, groups)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = group_norm(c_out, groups)
        self.act = nn.ReLU(inplace=True)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), group_norm(c_out, groups))
        # Zero-init the last norm's scale: each block starts as (almost) the identity (Goyal et al. 2017).
        nn.init.zeros_(self.norm2.weight)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.norm1(self.conv1(x)))  # (B, C_out, H', W')
        h = self.norm2(self.conv2(h))  # (B, C_out, H', W')
        return self.act(h + self.skip(x))


class CNNEncoder(nn.Module):
    """Frames (B, 3, H, W) in [0, 1] -> vectors (B, dim). See the module docstring for the layout."""

    def __init__(self, config: CNNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or CNNConfig()
        self.dim: int = config.dim
        self.stem = nn.Sequential(
            nn.Conv2d(5 if config.coords else 3, config.stem_channels, 3, stride=2, padding=1, bias=False),
            group_norm(config.stem_channels, config.groups),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        c_in = config.stem_channels
        for c_out in config.channels:
            for i in range(config.blocks_per_stage):
                blocks.append(ResidualBlock(c_in, c_out, stride=2 if i == 0 else 1, groups=config.groups))
                c_in = c_out
        self.stages = nn.Sequential(*blocks)
        self.proj = nn.Linear(c_in * (2 if config.pool == "avgmax" else 1), config.dim)
        self.out_norm: nn.Module = nn.LayerNorm(config.dim) if config.out_norm else nn.Identity()
        self._init_weights()
        if config.channels_last:  # weights in the same layout as the activations: no per-call reorder
            self.to(memory_format=torch.channels_last)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.trunc_normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    @staticmethod
    def _coords(h: int, w: int, like: Tensor) -> Tensor:
        """(2, H, W): x then y, each in [-1, 1] (the CoordConv channels)."""
        ys = torch.linspace(-1, 1, h, device=like.device, dtype=like.dtype)
        xs = torch.linspace(-1, 1, w, device=like.device, dtype=like.dtype)
        return torch.stack(torch.meshgrid(xs, ys, indexing="xy"))

    def _folded_stem_conv(self, frames: Tensor) -> Tensor:
        """The stem convolution of (4 x - 2, coords) computed as conv(x; 4 W_rgb) + M, for inference.

        The stem conv is linear and its zero padding is fixed, so with W = [W_rgb | W_xy]
            conv([4x - 2 | coords]; W) = conv(x; 4 W_rgb) + conv([-2 * ones | coords]; W)
        and the second term M (C_stem, H/2, W/2) depends only on the frame size: it is computed once per size and
        weight version, and each frame then costs a 3-channel conv and an add instead of a normalise, a
        concatenation of two coordinate channels and a 5-channel conv (~15% of the encoder's time at 64 px).
        """
        conv = self.stem[0]
        h, w = frames.shape[-2:]
        weight = conv.weight
        version = -1 if weight.is_inference() else weight._version  # inference tensors keep no version counter
        key = (h, w, frames.dtype, frames.device, version, weight.data_ptr())
        cached = getattr(self, "_stem_fold", None)
        if cached is None or cached[0] != key:
            weight = weight.detach().float()  # (C_stem, 5 or 3, 3, 3)
            constant = torch.full((1, 3, h, w), -2.0, device=frames.device)  # the -2 of 4x - 2, zero-padded
            if self.config.coords:
                constant = torch.cat([constant, self._coords(h, w, constant)[None]], dim=1)  # (1, 5, H, W)
            offset = F.conv2d(constant, weight, stride=conv.stride, padding=conv.padding)  # (1, C_stem, H/2, W/2)
            scaled = (4.0 * weight[:, :3]).to(frames.dtype)  # (C_stem, 3, 3, 3)
            offset = offset.to(frames.dtype)
            if self.config.channels_last:  # the same layout as the conv's output: a plain add, no reorder
                scaled = scaled.contiguous(memory_format=torch.channels_last)
                offset = offset.contiguous(memory_format=torch.channels_last)
            cached = self._stem_fold = (key, scaled, offset)
        _, scaled, offset = cached
        x = frames.contiguous(memory_format=torch.channels_last) if self.config.channels_last else frames
        return F.conv2d(x, scaled, stride=conv.stride, padding=conv.padding) + offset  # (B, C_stem, H/2, W/2)

    def feature_map(self, frames: Tensor) -> Tensor:
        """The last stage's feature map (B, C, H/2^(1+stages), W/2^(1+stages)), before pooling."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected frames of shape (B, 3, H, W), got {tuple(frames.shape)}")
        if min(frames.shape[-2:]) < MIN_IMAGE_SIZE:
            raise ValueError(f"frames of {tuple(frames.shape[-2:])} px are too small; need >= {MIN_IMAGE_SIZE}")
        if not self.training and not torch.is_grad_enabled():
            x = self._folded_stem_conv(frames)  # the same numbers as below, without the 5-channel input
        else:
            x = (frames - 0.5) * 4.0  # (B, 3, H, W), [0, 1] -> [-2, 2]: roughly unit variance for natural images
            if self.config.coords:
                b, _, h, w = x.shape
                x = torch.cat([x, self._coords(h, w, x).expand(b, -1, -1, -1)], dim=1)  # (B, 5, H, W)
            if self.config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x = self.stem[0](x)  # (B, C_stem, H/2, W/2)
        x = self.stem[2](self.stem[1](x))  # norm, act
        return self.stages(x)  # (B, C_last, h, w)

    def forward(self, frames: Tensor) -> Tensor:
        """Frames (B, 3, H, W) float in [0, 1] -> (B, dim)."""
        fmap = self.feature_map(frames)  # (B, C_last, h, w)
        x = fmap.mean(dim=(2, 3))  # (B, C_last): global average pool
        if self.config.pool == "avgmax":
            x = torch.cat([x, fmap.amax(dim=(2, 3))], dim=1)  # (B, 2 C_last)
        return self.out_norm(self.proj(x))  # (B, dim)
