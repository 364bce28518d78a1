"""What every reward head shares: its registry entry (`HeadEntry`) and the batch sizes a sampler is built with
(`BatchPlan`).

A reward head is an `nn.Module` with
    embed(frames (B, 3, S, S) float in [0, 1]) -> (B, D)                 features, once per frame
    predict(current (B, D), initial, goal=None, previous=None) -> (mu (B,), sigma (B,))
    forward(batch) -> (loss, metrics)                                     one training step's loss
    distill_output(current, initial, goal=None, previous=None)            what a distilled student matches
and optionally predict_success, set_goal (a goal embedding stored after training) and calibrate (a map of its
score onto [0, 1] fitted after training). Adding a head means writing one file with the head, its config
dataclass (every field with its help: `v2r train --NAME-FIELD`), its sampler and its entry, and registering
the entry in rewards/registry.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

DISTILL_KINDS = ("normal", "value", "logit", "bins")


@dataclass(frozen=True)
class BatchPlan:
    """How many frames a training step reads (the sampler-independent part of `v2r train`'s options)."""

    batch_size: int = 128  # demonstration frames encoded per step
    frames_per_video: int = 16  # frames drawn from each sampled video
    items_per_video: int = 48  # triplets (progress) or quadruples (goal-distance) formed per sampled video
    negative_videos: int = 2  # failed videos (--negatives) drawn per step


@dataclass(frozen=True)
class HeadEntry:
    """One reward head: everything training, model files and distillation need to know of it."""

    name: str  # what `--head` takes and config.json records
    head: type[nn.Module]  # head(encoder, config), or head(config) for a head without an encoder
    config: type  # its options: a dataclass whose fields carry their help
    # sampler(options, plan, demos, negatives) -> an object whose .sample(generator) gives one training batch
    sampler: Callable[[Any, BatchPlan, Sequence, Sequence], Any] | None
    negatives: bool  # it learns from failed videos (--negatives)
    distill: str | None  # what a student matches (one of DISTILL_KINDS; training/distill.py), None: not distilled
    summary: str  # one line for `v2r train --help`
    encoder: bool = True  # it reads frames through a learned encoder (pixel-ridge does not)
    # the values mu can take, (low, high), or None when mu is unbounded (a regression or a distance): reward plots
    # and the report draw every video of a model on one fixed axis chosen from it (inference/reward_axis.py)
    reward_range: tuple[float, float] | None = (0.0, 1.0)
    # what mu is, in words, for the one-line caption under every reward plot
    reward_meaning: str = "predicted progress, 0 = start, 1 = task done"


def earlier_frames(t: torch.Tensor, motion_gap: int, context: int) -> torch.Tensor | None:
    """Which earlier frames the reward of frame t reads, besides t itself (the rule, written once):
    with a motion gap, frame t - gap, (B,); with a temporal context K > 1, frames t-K+1 .. t-1, oldest first,
    (B, K-1); else None. Negative indices stand for frames before the first one, which are the first frame."""
    if motion_gap > 0:
        return t - motion_gap
    if context > 1:
        return t[:, None] + torch.arange(1 - context, 0, device=t.device)
    return None
