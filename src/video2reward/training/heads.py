"""How `v2r train` fits a reward head: the head and its sampler from the head's registry entry (rewards/), built
with the options of a TrainConfig; the failed videos of --negatives; and what a head needs once trained (the
goal embedding, a calibration on the demonstrations). Every learned head, progress included, trains through
the one `train_loop` with these.

    head               batch                                   loss
    progress           TripletSampler (+ failed triplets)      KL to the target progress Normal (+ push-back)
    temporal           WindowSampler (+ failed windows)        progress KL over K-frame windows (+ push-back)
    rank               ClipSampler (+ failed clips)            Bradley-Terry over later-vs-earlier pairs
    goal-distance      VIPSampler (o_0, o_k, o_k+1, g)         VIP value-implicit objective
    temporal-distance  ClipSampler                             cross-entropy over time-gap bins
    success            ClipSampler (+ failed clips)            pos-weighted BCE, last frames positive
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from video2reward.errors import ConfigError
from video2reward.rewards.registry import (
    HEAD_NAMES,
    HEADS,
    head_options,
    learns_from_negatives,
    new_head,
)
from video2reward.training.config import TrainConfig
from video2reward.video.dataset import (
    Demonstration,
    even_subsample,
    load_demonstrations,
)
from video2reward.video.io import VideoSource, find_videos

CALIBRATION_FRAMES = 32  # frames per demonstration (evenly spread, first and last included) for calibration
CALIBRATION_VIDEOS = 100  # at most this many demonstrations (evenly spread) for calibration


def check_negatives(config: TrainConfig) -> None:
    """--negatives with a head that cannot use them is an error, not silently ignored."""
    if config.negatives and not learns_from_negatives(config.head):
        able = ", ".join(name for name in HEAD_NAMES if learns_from_negatives(name))
        raise ConfigError(f"--negatives: the {config.head} head does not learn from failed videos (only {able} "
                          f"do); drop --negatives or choose one of those heads")


def options_of(config: TrainConfig, kind: str) -> Any:
    """The options dataclass of head `kind` as `config` sets it (its --KIND-OPTION flags, else the defaults)."""
    return head_options(kind, config.head_options.get(kind))


def make_head(config: TrainConfig, encoder: nn.Module | None) -> nn.Module:
    """A fresh head `config.head` (a single head) with its options from `config`, on `encoder`."""
    return new_head(config.head, options_of(config, config.head), encoder)


def make_sampler(config: TrainConfig, head: nn.Module, demos: Sequence[Demonstration],
                 negatives: Sequence[Demonstration]):
    """The batch sampler of `head` (its registry entry's): `.sample(generator)` gives a batch with uint8 frames."""
    return HEADS[config.head].sampler(head.config, config.plan(), demos, negatives)


def load_negatives(
    config: TrainConfig, paths: Sequence[str | os.PathLike], skip_bad: bool, progress: bool,
) -> tuple[list[Demonstration], list]:
    """The failed videos of --negatives, decoded like the demonstrations ([] without --negatives). A failed
    video that is also under the demonstration folders is an error: it would be trained on as both."""
    if not config.negatives:
        return [], []
    def identity(source: VideoSource) -> tuple:  # an episode of a dataset shares its mp4 with others
        segment = source.segment
        return source.path.resolve(), segment and (segment.camera_key, segment.episode_index)

    demo_files = {identity(s) for s in find_videos(paths, config.selection())}
    negative_selection = config.selection(outcome="failed")
    both = [s.name for s in find_videos([config.negatives], negative_selection) if identity(s) in demo_files]
    if both:
        raise ConfigError(f"--negatives {config.negatives}: {len(both)} failed video(s) are also under the "
                          f"demonstration folders (e.g. {both[0]}); keep failed videos out of the DIRs you train on")
    try:
        return load_demonstrations([config.negatives], config.image_size, config.max_frames_per_video, skip_bad,
                                   progress, config.frame_fit, negative_selection)
    except ConfigError as exc:
        raise ConfigError(f"--negatives {config.negatives}: {exc}") from exc


def calibration_videos(demos: Sequence[Demonstration], device: torch.device,
                       frames_per_video: int = CALIBRATION_FRAMES, max_videos: int = CALIBRATION_VIDEOS,
                       run: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per demonstration (at most `max_videos`, evenly spread): up to `frames_per_video` evenly spread frames,
    float in [0, 1] on `device`, and their normalised times. With `run` > 1 (a head that calibrates on
    transitions, `calibration_run`), frames_per_video // run (at least 4) evenly spread frames, each with the run - 1
    frames before it (the first frame stands in before the video's start): frames (A, run, 3, S, S), times (A,)."""
    picked = [demos[i] for i in even_subsample(len(demos), max_videos)]
    out = []
    for demo in picked:
        anchors = frames_per_video if run == 1 else max(4, frames_per_video // run)
        idx = torch.from_numpy(even_subsample(demo.frames.shape[0], anchors).astype(np.int64))  # (A,)
        runs = (idx[:, None] + torch.arange(1 - run, 1)[None, :]).clamp(min=0)  # (A, run), oldest first
        frames = demo.frames[runs if run > 1 else idx].float().div_(255.0).to(device)
        out.append((frames, demo.progress[idx].float()))
    return out


@torch.no_grad()
def finish_head(head: nn.Module, demos: Sequence[Demonstration], device: torch.device) -> None:
    """After training: store the goal embedding (heads with `set_goal`), then calibrate the reward on the
    demonstrations (heads with `calibrate`)."""
    head.eval()
    if hasattr(head, "set_goal"):
        goal_frames = torch.stack([d.frames[-1] for d in demos])  # (V, 3, S, S): the task done, per demo
        head.set_goal(goal_frames.float().div_(255.0).to(device))
    if hasattr(head, "calibrate"):
        head.calibrate(calibration_videos(demos, device, run=getattr(head, "calibration_run", 1)))
