"""`v2r pretrain`: learn a frame encoder from the user's own videos with a self-supervised objective.

    demos -> FrameSampler -> objective.make_batch (augmented views) -> objective(batch) -> (loss, metrics)
          -> the one training loop (training_loop.fit_resumable: AdamW, warm-up + cosine, checkpoints, --resume)
          -> objective.encoder saved as ENCODER_DIR/encoder.safetensors + config.json

Only the encoder is kept; projection heads, teachers and queues are thrown away. `v2r train --encoder
ENCODER_DIR` then puts a reward head on it (fine-tuned, or frozen with --freeze).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from video2reward.core.precision import autocast_dtype
from video2reward.encoders import build_encoder
from video2reward.encoders.pretrained import save_encoder
from video2reward.errors import ConfigError
from video2reward.objectives import OBJECTIVES, build_objective
from video2reward.objectives.base import batch_to
from video2reward.training import distributed
from video2reward.training.config import PretrainConfig, resolve_device
from video2reward.training.loop import CHECKPOINT_DIR, check_writable, fit_resumable
from video2reward.video.dataset import Demonstration, load_demonstrations
from video2reward.video.frame_sampler import FrameSampler
from video2reward.video.multiview import MultiViewSampler, group_views
from video2reward.video.view_augment import ViewAugment


@dataclass
class PretrainResult:
    encoder: torch.nn.Module
    seconds: float
    num_videos: int
    num_frames: int
    skipped: list[tuple[str, str]]
    metrics: dict[str, float]


def pretrain_encoder(
    paths: Sequence[str | os.PathLike], out: str | os.PathLike, config: PretrainConfig | None = None,
    method_options: Mapping[str, Any] | None = None, resume: bool = False, skip_bad: bool = False,
    progress: bool = True, views: Sequence[str | os.PathLike] = (), demos: Sequence[Demonstration] | None = None,
) -> PretrainResult:
    """Pretrain `config.encoder` on every video under `paths` with `config.method`; save it to `out`.
    `method_options` override fields of the method's config (e.g. {"teacher_temp": 0.07} for DINO).
    `views` (tcn only): two or more folders of the same episodes seen by other cameras (matched by file name),
    for multi-view TCN (video/multiview.py); `paths` is then ignored. `demos`: the videos of `paths` already
    decoded at `config.image_size` / `frame_fit` / `max_frames_per_video` (as `v2r train --pretrain` has them),
    used instead of decoding `paths` again."""
    config = config or PretrainConfig()
    method_options = dict(method_options or {})
    out = Path(out)
    if config.method not in OBJECTIVES:
        raise ConfigError(f"--method {config.method}: unknown (known: {', '.join(OBJECTIVES)})")
    if config.batch_size < config.frames_per_video or config.frames_per_video < 1:
        raise ConfigError(f"--batch-size {config.batch_size} must be at least --frames-per-video "
                          f"{config.frames_per_video} (>= 1)")
    check_writable(out)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = distributed.place(resolve_device(config.device))  # cuda:LOCAL_RANK under torchrun
    t0 = time.perf_counter()
    if views and config.method != "tcn":
        raise ConfigError(f"--views: synchronised views train multi-view TCN; use --method tcn (not {config.method})")
    encoder = build_encoder(config.encoder, config.image_size)
    objective = build_objective(config.method, encoder, **method_options).to(device)
    window = getattr(objective, "neighbour_window", 0)
    per_step_videos = max(1, config.batch_size // config.frames_per_video // (2 if window > 0 or views else 1))
    if views:  # one moment seen by two cameras is the positive pair (Sermanet et al.'s multi-view TCN)
        per_view = [load_demonstrations([v], config.image_size, config.max_frames_per_video, skip_bad, progress,
                                        config.frame_fit, config.selection()) for v in views]
        demos = [d for view_demos, _ in per_view for d in view_demos]
        skipped = [s for _, view_skipped in per_view for s in view_skipped]
        sampler = MultiViewSampler(group_views([d for d, _ in per_view], views),
                                   frames_per_video=config.frames_per_video, videos_per_batch=per_step_videos)
    else:
        if demos is None:
            demos, skipped = load_demonstrations(paths, config.image_size, config.max_frames_per_video, skip_bad,
                                                 progress, config.frame_fit, config.selection())
        else:
            skipped = []  # whoever decoded them reports what it skipped
        sampler = FrameSampler(list(demos), frames_per_video=config.frames_per_video,
                               videos_per_batch=per_step_videos, neighbour_window=window)

    view_augment = ViewAugment() if config.view_augment else None

    def sample(generator: torch.Generator):
        batch = sampler.sample(generator)
        if view_augment is not None:  # uint8 frames in and out, so every method's make_batch reads them as before
            batch.frames = view_augment(batch.frames.float().div(255.0), generator).mul(255.0).round().to(torch.uint8)
        return batch_to(objective.make_batch(batch, generator), device)

    run_config = {"pretrain": asdict(config), "method_options": method_options}
    metrics = fit_resumable(objective, sample, steps=config.steps, lr=config.lr, weight_decay=config.weight_decay,
                            seed=config.seed, warmup=config.warmup_steps, out=out,
                            checkpoint_every=config.checkpoint_every, run_config=run_config, resume=resume,
                            progress=progress, desc=f"pretraining ({config.method})",
                            amp_dtype=autocast_dtype(config.precision, device))
    seconds = time.perf_counter() - t0
    encoder = objective.encoder.cpu().eval()
    method_config = dataclasses.asdict(objective.config) if dataclasses.is_dataclass(objective.config) else {}
    if not distributed.is_main():  # every rank ends with the same encoder; rank 0 writes it
        return PretrainResult(encoder, seconds, len(demos), int(sum(d.num_frames for d in demos)), skipped, metrics)
    save_encoder(out, encoder, config.encoder, extra={"pretraining": {
        "method": config.method, "method_config": method_config, "config": asdict(config),
        **({"views": [str(v) for v in views]} if views else {}),
        "seconds": round(seconds, 2), "videos": [d.name for d in demos],
        "num_frames": int(sum(d.num_frames for d in demos)), "skipped": skipped, "final_metrics": metrics,
    }})
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)  # finished: nothing left to resume
    return PretrainResult(encoder, seconds, len(demos), int(sum(d.num_frames for d in demos)), skipped, metrics)
