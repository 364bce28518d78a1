"""Self-supervised objectives that learn a frame encoder from unlabelled video frames.

Each wraps an encoder and returns (loss, metrics) (see `base.Objective`); one training loop serves them
all. Look them up by the name `v2r pretrain --method` takes:

    objective = build_objective("dino", encoder, teacher_temp=0.05)
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from torch import nn

from video2reward.errors import ConfigError

# name -> (module, config class, objective class); imported on first use so `v2r --help` stays fast
OBJECTIVES: dict[str, tuple[str, str, str]] = {
    "simclr": ("simclr", "SimCLRConfig", "SimCLR"),
    "dcl": ("simclr", "DCLConfig", "SimCLR"),
    "moco": ("moco", "MoCoConfig", "MoCo"),
    "dino": ("dino", "DINOConfig", "DINO"),
    "mae": ("mae", "MAEConfig", "MAE"),
    "tcn": ("tcn", "TCNConfig", "TCN"),
    "rotation": ("rotation", "RotationConfig", "Rotation"),
    "ijepa": ("jepa", "JEPAConfig", "IJEPA"),
    "vjepa": ("jepa", "JEPAConfig", "VJEPA"),
    "vae": ("vae", "VAEConfig", "VAE"),
    "imagenet": ("imagenet", "ImageNetDistillConfig", "ImageNetDistill"),
}
PRETRAIN_METHODS: tuple[str, ...] = tuple(OBJECTIVES)  # what `--method` and `v2r train --pretrain` accept


def objective_classes(name: str) -> tuple[type, type[nn.Module]]:
    """(config class, objective class) of method `name`."""
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown pretraining method {name!r}; choose one of: {', '.join(OBJECTIVES)}")
    module_name, config_name, class_name = OBJECTIVES[name]
    module = importlib.import_module(f"video2reward.objectives.{module_name}")
    return getattr(module, config_name), getattr(module, class_name)


def objective_fields(name: str) -> dict[str, dataclasses.Field]:
    """Field name -> dataclass field of method `name`'s config (type, default, help text)."""
    config_cls, _ = objective_classes(name)
    return {f.name: f for f in dataclasses.fields(config_cls)}


def build_objective(name: str, encoder: nn.Module, **overrides: Any) -> nn.Module:
    """Method `name` wrapped around `encoder`, its config fields overridden by `overrides`."""
    config_cls, objective_cls = objective_classes(name)
    unknown = sorted(set(overrides) - set(objective_fields(name)))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for --method {name}; valid: "
                          f"{', '.join(objective_fields(name))}")
    try:
        config = config_cls(**overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad options for --method {name}: {exc}") from exc
    return objective_cls(encoder, config)


__all__ = ["OBJECTIVES", "PRETRAIN_METHODS", "build_objective", "objective_classes", "objective_fields"]
