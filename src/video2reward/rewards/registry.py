"""The reward heads by name: what `v2r train --head` takes and a model file's config.json records. One entry per
head (`HeadEntry`, rewards/base.py), defined in the head's own file beside its config and sampler; combined
heads (an ensemble of heads of different kinds, rewards/ensemble.py) are listed in COMBINED_HEADS.

    entry = HEADS["progress"]
    head = new_head("progress", head_options("progress", {"motion_gap": 2}), encoder)
    sampler = entry.sampler(head.config, BatchPlan(), demos, negatives)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import torch.nn as nn

from video2reward.encoders import encoder_from_config
from video2reward.errors import ConfigError, ModelFileError
from video2reward.rewards import (
    goal_distance,
    pixel_ridge,
    progress,
    rank,
    success,
    temporal,
    temporal_distance,
    video_likelihood,
)
from video2reward.rewards.base import HeadEntry
from video2reward.rewards.ensemble import COMBINED_HEADS, HeadEnsemble

HEADS: dict[str, HeadEntry] = {entry.name: entry for entry in (
    progress.ENTRY, temporal.ENTRY, rank.ENTRY, goal_distance.ENTRY, temporal_distance.ENTRY, success.ENTRY,
    video_likelihood.ENTRY, pixel_ridge.ENTRY,
)}
# The heads on a frame encoder: name -> (config dataclass, head class taking (encoder, config)).
ENCODER_HEADS: dict[str, tuple[type, type[nn.Module]]] = {
    name: (entry.config, entry.head) for name, entry in HEADS.items() if entry.encoder}
HEAD_NAMES: tuple[str, ...] = ("progress", *COMBINED_HEADS, *(name for name in HEADS if name != "progress"))


def member_kinds(kind: str) -> tuple[str, ...]:
    """The single heads a `--head` trains: its members for a combined head, else itself."""
    return COMBINED_HEADS.get(kind, (kind,))


def learns_from_negatives(kind: str) -> bool:
    """Whether `--head kind` learns from failed videos (--negatives): every member does."""
    return all(HEADS[k].negatives for k in member_kinds(kind))


def distill_kind(kind: str) -> str | None:
    """What a student of a `kind` teacher matches (rewards/base.py DISTILL_KINDS); a combined head's mean Normal."""
    return "normal" if kind in COMBINED_HEADS else HEADS[kind].distill


def reward_range(kind: str) -> tuple[float, float] | None:
    """The values the reward mu of `--head kind` can take (HeadEntry.reward_range), None when unbounded; for a
    combined head (the mean of its members) the span of its members' ranges."""
    ranges = [HEADS[k].reward_range for k in member_kinds(kind)]
    if any(r is None for r in ranges):
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def reward_meaning(kind: str) -> str:
    """What the reward mu of `--head kind` is, in words (HeadEntry.reward_meaning; a combined head's members')."""
    meanings = list(dict.fromkeys(HEADS[k].reward_meaning for k in member_kinds(kind)))
    return meanings[0] if len(meanings) == 1 else "mean of " + " and ".join(meanings)


def head_options(kind: str, given: Mapping[str, Any] | None = None) -> Any:
    """The options dataclass of head `kind`, its fields overridden by `given` (field name -> value)."""
    entry = HEADS[kind]
    given = dict(given or {})
    fields = {f.name for f in dataclasses.fields(entry.config)}
    unknown = sorted(set(given) - fields)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for the {kind} head; its options: "
                          f"{', '.join(sorted(fields))}")
    return entry.config(**given)


def new_head(kind: str, options: Any, encoder: nn.Module | None = None) -> nn.Module:
    """A fresh (untrained) head `kind` with `options` (its config dataclass) on `encoder`."""
    entry = HEADS[kind]
    return entry.head(encoder, options) if entry.encoder else entry.head(options)


def build_head(config: dict[str, Any]) -> nn.Module:
    """Rebuild an (untrained) head from a model config; raises ModelFileError for unknown heads."""
    kind = config.get("head")
    if kind in COMBINED_HEADS:  # one member per kind, each with its own head_config (config["members"])
        entries = config.get("members") or []
        if [e.get("head") for e in entries] != list(COMBINED_HEADS[kind]):
            raise ModelFileError(f"a {kind!r} model config must list its members {COMBINED_HEADS[kind]}")
        return HeadEnsemble([build_head({**config, "head": e["head"], "head_config": e.get("head_config", {}),
                                         "members": None}) for e in entries])
    if kind not in HEADS:
        raise ModelFileError(f"unknown reward head {kind!r} in the model config (known: {', '.join(HEAD_NAMES)})")
    members = int(config.get("ensemble", 1))
    if members > 1:
        if not HEADS[kind].encoder:
            raise ModelFileError(f"the model config asks for an ensemble of {kind!r} heads, which v2r cannot build")
        return HeadEnsemble([build_head({**config, "ensemble": 1}) for _ in range(members)])
    options = HEADS[kind].config(**config.get("head_config", {}))
    encoder = None
    if HEADS[kind].encoder:
        encoder = encoder_from_config(config["encoder"]["name"], config["encoder"]["config"])
    return new_head(kind, options, encoder)


def head_config_dict(head: nn.Module) -> dict[str, Any]:
    """What a model file records of a head's options (its config dataclass as a dict)."""
    return asdict(head.config)
