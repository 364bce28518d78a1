"""What each learned reward head other than progress trains on: the head built from a TrainConfig, the sampler
of its batches, the failed videos of --negatives (progress uses them too), and what a head needs once trained
(the goal embedding, a calibration on the demonstrations).

`train.py` runs them all through the one `train_loop`; the progress head keeps its own `_fit_progress` there.

    head               batch                                   loss
    rank               ClipSampler (+ failed clips)            Bradley-Terry over later-vs-earlier pairs
    goal-distance      VIPSampler (o_0, o_k, o_k+1, g)         VIP value-implicit objective
    temporal-distance  ClipSampler                             cross-entropy over time-gap bins
    success            ClipSampler (+ failed clips)            pos-weighted BCE, last frames positive
    temporal           WindowSampler (+ failed windows)        progress KL over K-frame windows (+ push-back)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from video2reward.training.config import NEGATIVE_HEADS, TrainConfig
from video2reward.errors import ConfigError
from video2reward.rewards.goal_distance import GoalDistanceConfig, GoalDistanceHead
from video2reward.rewards.rank import RankConfig, RankHead
from video2reward.rewards.success import SuccessConfig, SuccessHead
from video2reward.rewards.temporal import TemporalConfig, TemporalProgressHead
from video2reward.rewards.temporal_distance import TemporalDistanceConfig, TemporalDistanceHead
from video2reward.video.dataset import Demonstration, even_subsample, load_demonstrations
from video2reward.video.head_sampling import ClipSampler, VIPSampler
from video2reward.video.io import find_videos
from video2reward.video.window_sampling import WindowSampler

CLIP_HEADS = ("rank", "temporal-distance", "success")
CALIBRATION_FRAMES = 32  # frames per demonstration (evenly spread, first and last included) for calibration
CALIBRATION_VIDEOS = 100  # at most this many demonstrations (evenly spread) for calibration


def check_negatives(config: TrainConfig) -> None:
    """--negatives with a head that cannot use them is an error, not silently ignored."""
    if config.negatives and config.head not in NEGATIVE_HEADS:
        raise ConfigError(f"--negatives: the {config.head} head does not learn from failed videos (only "
                          f"{', '.join(NEGATIVE_HEADS)} do); drop --negatives or choose one of those heads")


def load_negatives(
    config: TrainConfig, paths: Sequence[str | os.PathLike], skip_bad: bool, progress: bool,
) -> tuple[list[Demonstration], list]:
    """The failed videos of --negatives, decoded like the demonstrations ([] without --negatives). A failed
    video that is also under the demonstration folders is an error: it would be trained on as both."""
    if not config.negatives:
        return [], []
    demo_files = {s.path.resolve() for s in find_videos(paths)}
    both = [s.name for s in find_videos([config.negatives]) if s.path.resolve() in demo_files]
    if both:
        raise ConfigError(f"--negatives {config.negatives}: {len(both)} failed video(s) are also under the "
                          f"demonstration folders (e.g. {both[0]}); keep failed videos out of the DIRs you train on")
    try:
        return load_demonstrations([config.negatives], config.image_size, config.max_frames_per_video, skip_bad,
                                   progress, config.frame_fit)
    except ConfigError as exc:
        raise ConfigError(f"--negatives {config.negatives}: {exc}") from exc


def make_head(config: TrainConfig, encoder: nn.Module) -> nn.Module:
    """A fresh rank / goal-distance / temporal-distance / success head on `encoder`."""
    if config.head == "rank":
        return RankHead(encoder, RankConfig(late_fraction=config.rank_late_fraction,
                                            negative_weight=config.negative_weight))
    if config.head == "goal-distance":
        return GoalDistanceHead(encoder, GoalDistanceConfig(gamma=config.vip_gamma))
    if config.head == "temporal-distance":
        return TemporalDistanceHead(encoder, TemporalDistanceConfig(bins=config.time_bins))
    if config.head == "success":
        return SuccessHead(encoder, SuccessConfig(success_fraction=config.success_fraction))
    if config.head == "temporal":
        return TemporalProgressHead(encoder, TemporalConfig(
            context=config.context, sequence=config.sequence, sigma_min=config.sigma_min, pushback=config.pushback,
            negative_weight=config.negative_weight))
    raise ConfigError(f"--head {config.head}: not a head trained here")


def make_sampler(config: TrainConfig, demos: Sequence[Demonstration], negatives: Sequence[Demonstration]):
    """The batch sampler of `config.head`: `.sample(generator)` gives a batch with uint8 `frames`."""
    if config.head == "goal-distance":
        per_video = 2 * config.frames_per_video  # each sampled frame and the frame after it
        return VIPSampler(list(demos), frames_per_video=config.frames_per_video,
                          videos_per_batch=max(1, config.batch_size // per_video),
                          quadruples_per_video=config.triplets_per_video)
    if config.head in CLIP_HEADS:
        return ClipSampler(list(demos), list(negatives), frames_per_video=config.frames_per_video,
                           videos_per_batch=max(1, config.batch_size // config.frames_per_video),
                           negative_videos_per_batch=config.negative_videos)
    if config.head == "temporal":
        return window_sampler(config, demos, negatives)
    raise ConfigError(f"--head {config.head}: not a head trained here")


def window_sampler(config: TrainConfig, demos: Sequence[Demonstration], negatives: Sequence[Demonstration]
                   ) -> WindowSampler:
    """Windows of `config.context` frames for the temporal head: per video two clips of frames_per_video / 2
    consecutive windows (each clip's frames encoded once), as many videos as fit in batch_size frames."""
    if not 0 < config.speed_min <= config.speed_max:
        raise ConfigError(f"--speed-min {config.speed_min} / --speed-max {config.speed_max}: need 0 < min <= max")
    sampler = WindowSampler(list(demos), list(negatives), context=config.context, clips_per_video=2,
                            windows_per_clip=max(1, config.frames_per_video // 2),
                            negative_videos_per_batch=config.negative_videos, speed_min=config.speed_min,
                            speed_max=config.speed_max)
    sampler.videos_per_batch = max(1, config.batch_size // sampler.frames_per_video)
    return sampler


def calibration_videos(demos: Sequence[Demonstration], device: torch.device,
                       frames_per_video: int = CALIBRATION_FRAMES, max_videos: int = CALIBRATION_VIDEOS,
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per demonstration (at most `max_videos`, evenly spread): up to `frames_per_video` evenly spread frames,
    float in [0, 1] on `device`, and their normalised times."""
    picked = [demos[i] for i in even_subsample(len(demos), max_videos)]
    out = []
    for demo in picked:
        idx = torch.from_numpy(even_subsample(demo.frames.shape[0], frames_per_video).astype(np.int64))
        out.append((demo.frames[idx].float().div_(255.0).to(device), demo.progress[idx].float()))
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
        head.calibrate(calibration_videos(demos, device))
