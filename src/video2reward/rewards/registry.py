"""The reward heads by name: what `v2r train --head` takes and what a model file's config.json records, and how
a head is rebuilt from that config."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch.nn as nn

from video2reward.encoders import encoder_from_config
from video2reward.errors import ModelFileError
from video2reward.rewards.ensemble import COMBINED_HEADS, HeadEnsemble
from video2reward.rewards.goal_distance import GoalDistanceConfig, GoalDistanceHead
from video2reward.rewards.pixel_ridge import PixelRidge, PixelRidgeConfig
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.rewards.rank import RankConfig, RankHead
from video2reward.rewards.success import SuccessConfig, SuccessHead
from video2reward.rewards.temporal import TemporalConfig, TemporalProgressHead
from video2reward.rewards.temporal_distance import TemporalDistanceConfig, TemporalDistanceHead


# Reward heads on a frame encoder: name -> (config dataclass, head class taking (encoder, config)).
ENCODER_HEADS: dict[str, tuple[type, type[nn.Module]]] = {
    "progress": (ProgressConfig, ProgressHead),
    "temporal": (TemporalConfig, TemporalProgressHead),
    "rank": (RankConfig, RankHead),
    "goal-distance": (GoalDistanceConfig, GoalDistanceHead),
    "temporal-distance": (TemporalDistanceConfig, TemporalDistanceHead),
    "success": (SuccessConfig, SuccessHead),
}


def build_head(config: dict[str, Any]) -> nn.Module:
    """Rebuild an (untrained) head from a model config; raises ModelFileError for unknown heads."""
    kind = config.get("head")
    if kind in COMBINED_HEADS:  # one member per kind, each with its own head_config (config["members"])
        entries = config.get("members") or []
        if [e.get("head") for e in entries] != list(COMBINED_HEADS[kind]):
            raise ModelFileError(f"a {kind!r} model config must list its members {COMBINED_HEADS[kind]}")
        return HeadEnsemble([build_head({**config, "head": e["head"], "head_config": e.get("head_config", {}),
                                         "members": None}) for e in entries])
    members = int(config.get("ensemble", 1))
    if members > 1:
        if kind not in ENCODER_HEADS:
            raise ModelFileError(f"the model config asks for an ensemble of {kind!r} heads, which v2r cannot build")
        return HeadEnsemble([build_head({**config, "ensemble": 1}) for _ in range(members)])
    if kind in ENCODER_HEADS:
        config_cls, head_cls = ENCODER_HEADS[kind]
        encoder = encoder_from_config(config["encoder"]["name"], config["encoder"]["config"])
        return head_cls(encoder, config_cls(**config.get("head_config", {})))
    if kind == "pixel-ridge":
        return PixelRidge(PixelRidgeConfig(**config.get("head_config", {})))
    known = ", ".join([*ENCODER_HEADS, *COMBINED_HEADS, "pixel-ridge"])
    raise ModelFileError(f"unknown reward head {kind!r} in the model config (known: {known})")


def head_config_dict(head: nn.Module) -> dict[str, Any]:
    """What a model file records of a head's options (its config dataclass as a dict)."""
    return asdict(head.config)
